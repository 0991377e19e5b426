"""BlobProto dicts to NumPy arrays, and Caffe's legacy-shape rules.

Caffe's ``Blob::FromProto``: if any of the legacy fields num/channels/height/width is
present the shape is that 4-tuple, otherwise ``shape.dim``; the values come from
``double_data`` when it is non-empty, else ``data``; the element count must equal the
shape's product.  Old (V0/V1) models store a bias as (1,1,1,N) and an InnerProduct weight as
(1,1,M,K); Caffe accepts those for a modern (N,) / (M,K) blob by comparing right-aligned
(CAFFE_FACTS 1.3), which :func:`fit_shape` reproduces.
"""

from __future__ import annotations

import numpy as np

from .errors import FormatError

LEGACY_FIELDS = ("num", "channels", "height", "width")
INDEX_MAX = np.iinfo(np.intp).max


def is_legacy(blob: dict) -> bool:
    """True when the BlobProto dict carries the deprecated 4-D shape fields."""
    return any(k in blob for k in LEGACY_FIELDS)


def blob_shape(blob: dict, where: str = "blob") -> tuple[int, ...]:
    """The shape Caffe gives a BlobProto (legacy 4-tuple or ``shape.dim``)."""
    if is_legacy(blob):
        shape = tuple(int(blob.get(k, 0)) for k in LEGACY_FIELDS)
    else:
        shape = tuple(int(d) for d in blob.get("shape", {}).get("dim", []))
    if any(d < 0 for d in shape):
        raise FormatError(f"{where} has a negative dimension {shape}", None,
                          "non-negative dimensions")
    if len(shape) > 32:
        raise FormatError(f"{where} has {len(shape)} axes", None, "at most 32 (kMaxBlobAxes)")
    nonzero = 1
    for d in shape:
        nonzero *= max(d, 1)
    if nonzero > INDEX_MAX:
        # NumPy cannot even describe such a shape (its non-zero dims' product must fit in intp),
        # even when a zero dim makes it empty; Caffe's count_ is an int (CHECK_LE INT_MAX).
        raise FormatError(f"{where} has shape {shape}, whose non-zero dimensions multiply to "
                          f"{nonzero}", None, f"a product of at most {INDEX_MAX}")
    return shape


def blob_to_array(blob: dict, where: str = "blob") -> np.ndarray:
    """A BlobProto dict as an array: float64 from ``double_data``, else float32 from ``data``.

    Legacy blobs come back 4-D (num, channels, height, width).  Raises FormatError when the
    number of values does not match the shape.
    """
    shape = blob_shape(blob, where)
    values = blob.get("double_data")
    if values is None or len(values) == 0:
        values = blob.get("data")
    if values is None:
        values = np.zeros(0, np.float32)
    count = 1
    for d in shape:
        count *= d
    if count != values.size:
        hint = ""
        if values.size == 0:
            hint = " (no data or double_data; forks' raw_data, e.g. NVCaffe fp16, is not read)"
        raise FormatError(f"{where} has {values.size} values but its shape {shape} needs "
                          f"{count}{hint}", None, "as many values as the shape's product")
    return values.reshape(shape)


def _expected_rank(layer: dict, index: int) -> int | None:
    """The rank a parameter blob has in a modern Caffe net, from the layer's type."""
    ltype = layer.get("type")
    if ltype in ("Convolution", "Deconvolution"):
        return 4 if index == 0 else 1
    if ltype == "InnerProduct":
        return 2 if index == 0 else 1
    if ltype == "Embed":
        return 2 if index == 0 else 1
    if ltype == "BatchNorm":
        return 1
    if ltype in ("PReLU",):
        return 1
    if ltype in ("Scale", "Bias"):
        key = "scale_param" if ltype == "Scale" else "bias_param"
        num_axes = layer.get(key, {}).get("num_axes", 1)
        return num_axes if num_axes >= 0 else None
    return None


def modern_shape(layer: dict, index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The N-D shape Caffe would give legacy blob ``index`` of ``layer`` once in a net.

    Drops leading 1s down to the rank the layer type implies (conv bias (1,1,1,N) -> (N,),
    InnerProduct weight (1,1,M,K) -> (M,K)); keeps the 4-D shape for layer types whose
    blob ranks are not fixed, or when the dropped axes would not all be 1.
    """
    rank = _expected_rank(layer, index)
    if rank is None or rank >= len(shape):
        return tuple(shape)
    if any(d != 1 for d in shape[:len(shape) - rank]):
        return tuple(shape)
    return tuple(shape[len(shape) - rank:])


def fit_shape(array: np.ndarray, expected, where: str) -> np.ndarray:
    """``array`` reshaped to ``expected`` by Caffe's right-aligned rule, or ValueError.

    Exact matches pass.  A source with more axes matches when, compared right-aligned, its
    extra leading axes are all 1 — Caffe's ``Blob::ShapeEquals`` rule for legacy 4-D blobs
    (bias (1,1,1,N) -> (N,), InnerProduct weight (1,1,M,K) -> (M,K)).  This package applies
    it to any source, which only ever drops singleton axes, never reorders values.  Anything
    else raises ValueError naming ``where`` (the layer and blob) and both shapes.
    """
    src = tuple(int(d) for d in array.shape)
    expected = tuple(int(d) for d in expected)
    if src == expected:
        return array
    extra = len(src) - len(expected)
    if extra > 0 and src[extra:] == expected and all(d == 1 for d in src[:extra]):
        return array.reshape(expected)
    raise ValueError(f"{where}: shape mismatch: the weights have shape {src}, "
                     f"the net expects {expected}")
