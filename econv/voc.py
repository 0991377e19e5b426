"""PASCAL VOC for FCN: the classes, the palette, FCN's preprocessing, the dataset layout, label PNGs.

- Classes: 21, background first (``VOC_CLASSES``), as FCN's voc-fcn8s predicts them.
- Palette: VOC's colour map, built by spreading the bits of the class index over R, G and B from the
  most significant bit down (``voc_palette()[1] == (128, 0, 0)``, ``[15] == (192, 128, 128)``,
  ``[255] == (224, 224, 192)``: the ignore colour of the VOC ground truth).
- Preprocessing (shelhamer/fcn.berkeleyvision.org ``infer.py`` / ``voc_layers.py``): RGB to BGR, minus
  the ILSVRC mean ``(104.00698793, 116.66876762, 122.67891434)`` (BGR), HWC to CHW, any size; the
  net's ``pad: 100`` on conv1_1 and the final Crop make the score map the image's size.
- Layout: ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` (palette PNGs holding class indices,
  255 = ignore), ``ImageSets/Segmentation/<split>.txt`` (one id per line).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from caffe_import.atomic import atomic_output
from caffe_import.errors import FormatError

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
MEAN_BGR = (104.00698793, 116.66876762, 122.67891434)
IGNORE = 255


def voc_palette() -> np.ndarray:
    """The (256, 3) uint8 VOC colour map (module docstring)."""
    out = np.zeros((256, 3), np.uint8)
    for index in range(256):
        c, rgb = index, [0, 0, 0]
        for bit in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((c >> channel) & 1) << bit
            c >>= 3
        out[index] = rgb
    return out


def preprocess(image) -> np.ndarray:
    """FCN's input for a PIL image or an (H, W, 3) uint8 RGB array: (3, H, W) float32, BGR, mean off."""
    rgb = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"an image must be (H, W, 3) RGB, got shape {rgb.shape}")
    bgr = rgb[:, :, ::-1] - np.asarray(MEAN_BGR, np.float32)
    return np.ascontiguousarray(bgr.transpose(2, 0, 1))


def read_image(path):
    """A PIL RGB image; FormatError naming the file when Pillow cannot read it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise FormatError(f"{path}: not a readable image ({e})") from None


def read_label(path) -> np.ndarray:
    """An (H, W) uint8 class-index map from a VOC ``SegmentationClass`` PNG (palette or gray mode)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise FormatError(f"{path}: a VOC label must be a palette (P) or gray (L) PNG of class "
                                  f"indices, got mode {im.mode}")
            return np.array(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, FormatError):
            raise
        raise FormatError(f"{path}: not a readable label PNG ({e})") from None


def write_label(labels, path) -> str:
    """Write an (H, W) class-index map as a palette PNG with the VOC colours (atomically)."""
    from PIL import Image

    a = np.asarray(labels)
    if a.ndim != 2 or a.min(initial=0) < 0 or a.max(initial=0) > 255:
        raise ValueError(f"a label map must be 2-D with indices 0..255, got shape {a.shape}")
    im = Image.fromarray(a.astype(np.uint8), mode="P")
    im.putpalette(voc_palette().ravel().tolist())
    with atomic_output(path) as tmp:
        im.save(tmp, format="PNG")
    return str(path)


def overlay(image, labels, path, classes=VOC_CLASSES, title: str | None = None) -> str:
    """Write the image with its label map blended in (half and half where a class other than the
    background is predicted), next to the bare label map, above a legend naming every class present."""
    from PIL import Image, ImageDraw, ImageFont

    rgb = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, np.float64)
    a = np.asarray(labels)
    palette = voc_palette()
    colours = palette[a].astype(np.float64)
    blend = np.where((a > 0)[..., None] & (a != IGNORE)[..., None], 0.5 * rgb + 0.5 * colours, rgb)
    h, w = a.shape
    present = [int(c) for c in np.unique(a) if c != IGNORE]
    font = ImageFont.load_default()
    line = 14
    band = line * (1 + (len(present) + 2) // 3) + (line if title else 0)
    picture = Image.new("RGB", (2 * w + 4, h + band + 4), (255, 255, 255))
    picture.paste(Image.fromarray(blend.round().astype(np.uint8)), (0, 0))
    picture.paste(Image.fromarray(colours.astype(np.uint8)), (w + 4, 0))
    draw = ImageDraw.Draw(picture)
    y = h + 4
    if title:
        draw.text((2, y), title, fill=(0, 0, 0), font=font)
        y += line
    for i, c in enumerate(present):
        x, yy = 2 + (i % 3) * ((2 * w + 4) // 3), y + (i // 3) * line
        draw.rectangle([x, yy + 2, x + 9, yy + 11], fill=tuple(int(v) for v in palette[c]),
                       outline=(0, 0, 0))
        name = classes[c] if c < len(classes) else f"class {c}"
        draw.text((x + 13, yy), name, fill=(0, 0, 0), font=font)
    with atomic_output(path) as tmp:
        picture.save(tmp, format="PNG")
    return str(path)


def voc_split(root, split: str = "val") -> list[str]:
    """The image ids of ``ImageSets/Segmentation/<split>.txt`` under ``root``, checked against the
    layout: a FormatError names the first missing file."""
    root = Path(root)
    listing = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not listing.is_file():
        raise FormatError(f"{listing}: no such split file (a PASCAL VOC layout has "
                          f"ImageSets/Segmentation/<split>.txt, JPEGImages/, SegmentationClass/)")
    ids = [line.strip() for line in listing.read_text(errors="replace").splitlines() if line.strip()]
    if not ids:
        raise FormatError(f"{listing}: the split lists no image")
    for i in ids:
        for p in voc_paths(root, i):
            if not p.is_file():
                raise FormatError(f"{p}: listed in {listing.name} but missing")
    return ids


def voc_paths(root, image_id: str) -> tuple[Path, Path]:
    """``(JPEGImages/<id>.jpg, SegmentationClass/<id>.png)``."""
    root = Path(root)
    return root / "JPEGImages" / f"{image_id}.jpg", root / "SegmentationClass" / f"{image_id}.png"
