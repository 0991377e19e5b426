"""Images as Caffe's OpenCV calls see them, read with Pillow: (C, H, W) uint8, colour in BGR order.

Caffe reads images with ``cv::imread`` (``ReadImageToCVMat``, ``src/caffe/util/io.cpp`` lines
73-89) and decodes encoded Datums with ``cv::imdecode`` (``DecodeDatumToCVMat*``, same file):

- colour (``is_color``, ``force_color``): 3 channels in **BGR** order (OpenCV's), alpha dropped;
- grayscale (``is_color: false``, ``force_gray``): 1 channel;
- native (an encoded Datum without force_*): 1 channel for a grayscale file, else 3 (BGR).

Resizing (``new_height``/``new_width``) is ``cv::resize`` with its default ``INTER_LINEAR``: the
source coordinate of destination pixel ``x`` is ``(x + 0.5) * in / out - 0.5``, clamped to the image,
each output the bilinear mix of its two (four) neighbours, rounded to uint8.  OpenCV computes the
weights in 11-bit fixed point, this module in float64: results may differ from a given OpenCV build
by one grey level (the tests measure it against ``cv2`` when it is installed).

Worked example: the row ``[0, 100]`` resized to 4 columns: sources -0.25 (clamped to 0), 0.25, 0.75,
1.25 (clamped to 1) -> ``[0, 25, 75, 100]``.
"""

from __future__ import annotations

import io

import numpy as np


def _pillow():
    try:
        from PIL import Image
    except ImportError:             # pragma: no cover - Pillow is a core dependency
        raise ValueError("reading images needs Pillow: pip install pillow") from None
    return Image


def decode(data, color: bool | None, what: str) -> np.ndarray:
    """An image file's bytes (or a path) as (C, H, W) uint8: ``color`` True -> 3 channels BGR,
    False -> 1 channel, None -> the file's own (gray stays 1 channel, anything else BGR)."""
    Image = _pillow()
    try:
        src = io.BytesIO(bytes(data)) if isinstance(data, (bytes, bytearray, memoryview)) else data
        with Image.open(src) as im:
            gray = im.mode in ("1", "L", "I", "I;16", "F")
            if color is False or (color is None and gray):
                arr = np.asarray(im.convert("L"), dtype=np.uint8)[None]
            else:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)[:, :, ::-1].transpose(2, 0, 1)
    except (OSError, ValueError) as e:
        raise ValueError(f"{what}: cannot decode the image ({e})") from None
    return np.ascontiguousarray(arr)


def _axis_weights(n_in: int, n_out: int):
    """Per output index: the two source indices and the weight of the second (OpenCV's rule)."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, n_in - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, src - lo


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a (C, H, W) uint8 image to (C, height, width) (see the module docstring)."""
    y0, y1, fy = _axis_weights(image.shape[1], height)
    x0, x1, fx = _axis_weights(image.shape[2], width)
    img = image.astype(np.float64)
    rows = img[:, y0, :] * (1 - fy)[None, :, None] + img[:, y1, :] * fy[None, :, None]
    out = rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
