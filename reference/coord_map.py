"""Coordinate maps: for every blob, the receptive field, stride and offset of its units in input pixels.

A unit ``i`` of a blob sees input pixels centred at ``offset + stride * i`` over a window of ``rf``
pixels (per axis).  Composition (Long et al., FCN, section 3: ``f_ks o g_k's' = (f o g)_{k'+(k-1)s', ss'}``):

- Convolution / Im2col / Pooling (kernel extent ``ext = est*(k-1) + 1``, stride s, pad p), InnerProduct (kernel =
  its input's size): ``rf' = rf + (ext - 1) * stride``, ``stride' = stride * s``,
  ``offset' = offset + stride * ((ext - 1) / 2 - p)``.
- Deconvolution (ext, s, p): output ``y`` is centred on input ``(y + p - (ext - 1) / 2) / s``:
  ``stride' = stride / s``, ``offset' = offset + stride * (p - (ext - 1) / 2) / s``; the receptive field
  is reported as the input's (an upsampling adds no new context).
- EDeconvolution (the dense net's equivalent deconvolution, grid E): the dense grid keeps its
  spacing, ``offset' = offset + stride * E * (p - (ext - 1) / 2)`` (fragment ``q``'s output ``o`` sits
  at position ``q + E*o``).
- Crop (offsets o): ``offset' = offset + stride * o``.
- Interp (the PSPNet / DeepLab fork's bilinear resize, corners aligned): output ``o`` reads input
  ``(o * (H_eff - 1) / (H_out - 1)) - pad_beg``: ``stride' = stride * (H_eff - 1) / (H_out - 1)``,
  ``offset' = offset - stride * pad_beg``.  Upsample (SegNet's unpooling by a factor ``s`` = output /
  input size): as a Deconvolution of kernel s, stride s, pad 0.  Both report the input's receptive
  field, as Deconvolution does.
- Eltwise / Concat (branches meeting): the union of every bottom's window.  Unit ``i`` of bottom ``b``
  sees ``[offset_b - (rf_b - 1)/2, offset_b + (rf_b - 1)/2] + stride * i``; the top sees from the
  lowest start to the highest end: ``rf' = hi - lo + 1``, ``offset' = (lo + hi) / 2`` (the bottoms
  must share a stride).  A ResNet block's output sees what its 3x3 branch sees, not its 1x1 shortcut:
  ResNet-50's ``res5c`` is 483x483 (He et al.'s published receptive fields: 101 -> 1027, 152 -> 1507).
- Everything else (pointwise layers): unchanged.

Caffe's ``coord_map.crop`` computes Crop offsets from the same rules: the offset that puts unit 0 of
the cropped blob on unit 0 of the reference, ``(offset_ref - offset_in) / stride``.  For FCN-8s on a
500x500 input these are 5, 9 and 31 (CAFFE_FACTS 6.3).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from .sizes import extent

__all__ = ["CoordMap", "coord_maps", "crop_offset", "derive_crop_offsets"]

LOSSES = ("SoftmaxWithLoss", "EuclideanLoss", "L1Loss")   # not needed for the maps


@dataclass(frozen=True)
class CoordMap:
    rf: tuple       # receptive field (h, w) in input pixels
    stride: tuple   # pixels between neighbouring units
    offset: tuple   # input pixel at the centre of unit 0

    def __str__(self):
        f = lambda v: f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731
        return (f"rf {f(self.rf[0])}x{f(self.rf[1])}, stride {f(self.stride[0])}x{f(self.stride[1])}, "
                f"offset {f(self.offset[0])},{f(self.offset[1])}")


def _num(v):
    return int(v) if float(v).is_integer() else float(v)


def _window(m: CoordMap, kernel, stride, pad, est) -> CoordMap:
    rf, st, off = [], [], []
    for a in (0, 1):
        ext = extent(kernel[a], est[a])
        rf.append(_num(m.rf[a] + (ext - 1) * m.stride[a]))
        st.append(_num(m.stride[a] * stride[a]))
        off.append(_num(m.offset[a] + m.stride[a] * ((ext - 1) / 2 - pad[a])))
    return CoordMap(tuple(rf), tuple(st), tuple(off))


def _union(what, maps) -> CoordMap:
    """The map of a blob that sees what every one of ``maps`` sees (same stride)."""
    strides = {m.stride for m in maps}
    if len(strides) > 1:
        raise ValueError(f"{what}: bottoms on different grids (strides {sorted(strides)}); no "
                         f"coordinate map joins them")
    rf, off = [], []
    for a in (0, 1):
        lo = min(m.offset[a] - (m.rf[a] - 1) / 2 for m in maps)
        hi = max(m.offset[a] + (m.rf[a] - 1) / 2 for m in maps)
        rf.append(_num(hi - lo + 1))
        off.append(_num((lo + hi) / 2))
    return CoordMap(tuple(rf), maps[0].stride, tuple(off))


UNION_TYPES = ("Eltwise", "Concat")   # layers whose top sees what all their bottoms see


def coord_maps(net) -> dict:
    """``{blob: CoordMap}`` for every blob of ``net`` (last version of in-place blobs)."""
    maps = {}
    for layer in net.layers:
        if layer.type == "Input" or not layer.bottom_names:   # Input, data layers, Parameter: unit maps
            for t in layer.top_names:
                maps[t] = CoordMap((1, 1), (1, 1), (0, 0))
            continue
        m = maps[layer.bottom_names[0]]
        if layer.type == "Convolution":
            out = _window(m, layer.kernel, layer.stride, layer.pad, layer.est)
        elif layer.type == "Im2col":
            out = _window(m, layer.kernel, layer.stride, layer.pad, layer.dilation)
        elif layer.type == "Pooling":
            kernel = net.blob_shapes_at(layer.name)[0][2:] if layer.global_pooling else layer.kernel
            out = _window(m, kernel, layer.stride, layer.pad, layer.est)
        elif layer.type == "InnerProduct":
            shape = net.blob_shapes_at(layer.name)[0]
            kernel = tuple(shape[2:4]) if len(shape) == 4 else (1, 1)
            out = _window(m, kernel, (1, 1), (0, 0), (1, 1))
        elif layer.type == "Deconvolution":
            st, off = [], []
            for a in (0, 1):
                ext = extent(layer.kernel[a], layer.est[a])
                st.append(_num(m.stride[a] / layer.stride[a]))
                off.append(_num(m.offset[a] + m.stride[a] * (layer.pad[a] - (ext - 1) / 2) / layer.stride[a]))
            out = CoordMap(m.rf, tuple(st), tuple(off))
        elif layer.type == "Interp":
            eff, size = layer._sizes(net.blob_shapes_at(layer.name)[0])
            st, off = [], []
            for a in (0, 1):
                step = (eff[a] - 1) / (size[a] - 1) if size[a] > 1 else eff[a]
                st.append(_num(m.stride[a] * step))
                off.append(_num(m.offset[a] - m.stride[a] * layer.pad_beg))
            out = CoordMap(m.rf, tuple(st), tuple(off))
        elif layer.type == "Upsample":
            shapes = net.blob_shapes_at(layer.name)
            top = layer.reshape(shapes)[0]
            st, off = [], []
            for a in (0, 1):
                k = max(1, round(top[2 + a] / shapes[0][2 + a]))
                st.append(_num(m.stride[a] / k))
                off.append(_num(m.offset[a] - m.stride[a] * (k - 1) / 2 / k))
            out = CoordMap(m.rf, tuple(st), tuple(off))
        elif layer.type == "EDeconvolution":
            # a dense grid keeps its pixel spacing; fragment q's output o sits at position q + E*o
            off = []
            for a in (0, 1):
                ext = extent(layer.kernel[a], layer.est[a])
                off.append(_num(m.offset[a] + m.stride[a] * layer.grid[a] * (layer.pad[a] - (ext - 1) / 2)))
            out = CoordMap(m.rf, m.stride, tuple(off))
        elif layer.type in UNION_TYPES and len(layer.bottom_names) > 1:
            out = _union(f"layer {layer.name!r} ({layer.type})", [maps[b] for b in layer.bottom_names])
        elif layer.type == "Crop":
            shape = net.blob_shapes_at(layer.name)[0]
            axis = layer.axis + len(shape) if layer.axis < 0 else layer.axis
            offs = layer.offsets or [0]
            offs = offs * (len(shape) - axis) if len(offs) == 1 else offs
            by_axis = dict(zip(range(axis, len(shape)), offs))
            out = CoordMap(m.rf, m.stride, tuple(_num(m.offset[a] + m.stride[a] * by_axis.get(2 + a, 0))
                                                 for a in (0, 1)))
        else:
            out = m
        for t in layer.top_names:
            maps[t] = out
    return maps


def crop_offset(net, blob: str, reference: str) -> tuple:
    """The Crop offsets that align ``blob`` with ``reference`` (Caffe's ``coord_map.crop``); a
    ValueError when the grids differ in stride or the offset is not a non-negative integer."""
    maps = coord_maps(net)
    a, b = maps[blob], maps[reference]
    if a.stride != b.stride:
        raise ValueError(f"crop_offset: {blob!r} (stride {a.stride}) and {reference!r} (stride "
                         f"{b.stride}) are on different grids")
    out = []
    for i in (0, 1):
        o = (b.offset[i] - a.offset[i]) / a.stride[i]
        if o < 0 or not float(o).is_integer():
            raise ValueError(f"crop_offset: {blob!r} needs offset {o:g} to align with {reference!r}")
        out.append(int(o))
    return tuple(out)


def derive_crop_offsets(layers: list[dict], only=None, **net_options) -> list[dict]:
    """``layers`` with the Crop offsets set from the coordinate maps (all Crops, or those named in
    ``only``): each Crop in turn, on the net of the layers before it, so no Crop is ever built with
    a guessed offset.  ``net_options`` go to :class:`reference.Net`."""
    from .net import Net

    layers = copy.deepcopy(layers)
    for i, spec in enumerate(layers):
        if spec["type"] != "Crop" or (only is not None and spec["name"] not in only):
            continue
        prefix = Net([s for s in layers[:i] if s["type"] not in LOSSES], **net_options)
        spec["crop_param"]["offset"] = list(crop_offset(prefix, spec["bottom"][0], spec["bottom"][1]))
    return layers
