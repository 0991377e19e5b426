"""Dense equivalent nets (the paper's section 2): ``densify`` and ``dpoa``.

``densify(net, start)`` sets the stride of layer ``start`` (a pooling layer, or a strided convolution)
to 1 and rewrites every layer downstream of it.  Each rewritten layer reads a grid whose equivalent
stride ``E`` (per axis) is the product of the strides set to 1 before it:

- Convolution (kernel k, stride s, pad p, dilation d) -> eConv: dilation ``d*E``, pad ``p*E``, stride 1;
  its output grid has ``E*s``.
- Pooling (kernel k, stride s, pad p) -> ePool: ``est = E``, pad ``p*E``, stride 1 and
  ``pad_end = E*(s - 1)`` in ceil mode (0 in floor mode); its output grid has ``E*s``.
- InnerProduct is first convolutionalized (kernel = its input's spatial size, weights reshaped, C
  order), then rewritten as a convolution.  Global pooling becomes a pooling with the original
  input's size as kernel.  LRN WITHIN_CHANNEL gets ``est = E``.
- Pointwise and channel-wise layers are unchanged; Eltwise/Concat need all bottoms on one grid.
- FCN (Note [Dense FCN]): Deconvolution -> equivalent deconvolution, Crop offsets scaled, validity
  masks; FCN's final fixed bilinear upsampling is rebuilt.  Flatten, Reshape and Shift downstream
  of ``start`` raise ValueError (they mix positions).

Note [Dense FCN].  A Deconvolution of stride ``s`` reading a grid of step ``E_in`` with ``s | E_in``
becomes an ``EDeconvolution`` (:mod:`reference.edeconv`) whose output lies on ``E = E_in / s``: it
gives back the last densified strides (their product must be ``s``); the fragments that were
shifted there have no place on the finer grid (as in the original, whose upsampling reads one
fragment), so the blobs after it hold the phases of the remaining densified layers only
(``dense_info["active"]``; E2 compares those).  A Crop between blobs on one grid ``E`` scales its
offsets by ``E``; an Eltwise needs its bottoms on the same grid holding the same fragments.
Fragments of an upsampled blob can end at different positions inside the array, so such blobs get
an in-place ``Mask`` layer that zeroes the positions past their fragment's end (DESIGN.md 4,
"Extents"; ``dense_info["extents"]`` lists the valid length of every phase).  A Deconvolution
whose stride is a multiple of ``E_in`` (FCN's final x8 upsampling after pool3 was densified) has no
equivalent: if it is a fixed bilinear upsampling (its weights are the bilinear kernel on the group
diagonal, whatever the prototxt says of fillers or ``lr_mult``: FCN's net surgery puts them in the
caffemodel, :mod:`reference.upsampling`; no bias, pad 0) it is rebuilt as ``<name>_dense``, a group
bilinear upsampling with ``lr_mult 0``, stride ``s / E_in`` and kernel ``2 s/E_in - (s/E_in) % 2``,
the crops after it aligned by the coordinate maps, and the blobs from there on have no grid
(``grid()`` raises): the dense net predicts every pixel through a finer score map, but not
equivalently. dpoa restores the original's own parameters for it.

Note [Why pad_end = E*(s-1)].  Fragment ``r`` (phase) of a dense input of length ``H`` has
``H_r = ceil((H - r) / E)`` values; the original ceil-mode pooling gives it
``ceil((H_r - a + 2p - k) / s) + 1`` windows for a shift ``a``.  A stride-1 ePool with pad ``pE`` and
``pad_end = e`` has ``H + 2pE + e - E(k - 1)`` outputs, of which ``ceil((H_r - a + (2pE + e - E(k-1))/E)/s)``
fall on that phase.  The two agree for every ``r`` and ``a`` exactly when ``e = E(s - 1)``; Caffe's
clip rule (a window must start inside the image) maps to the same rule on the dense grid.  So every
window the original computed exists, and no position past a fragment's end is computed (the next
layer's zero padding stays where the fragment's is).  Convolutions (floor) need no pad_end.

``dense.grid(blob)`` is ``((0, 0), (E_h, E_w))`` for every blob: ``dense[..., E*i, E*j]`` is the
original's ``[..., i, j]``; the other phases are the shift-and-stitch fragments
(:mod:`reference.fragments`).  ``dpoa(dense)`` is the original architecture carrying the dense net's
parameters (convolutionalized InnerProducts reshaped back).
"""

from __future__ import annotations

import copy

import numpy as np

from .coord_map import derive_crop_offsets
from .net import Net
from .sizes import deconv_out_size, extent, phase_lengths
from .upsampling import diagonal_bilinear, is_diagonal_bilinear

__all__ = ["densify", "dpoa", "convolutionalize", "CropFitError", "fitting_input_sizes"]

POINTWISE = {"ReLU", "Dropout", "BatchNorm", "Scale", "TanH", "Sigmoid", "Power", "Softmax", "Split",
             "Concat", "Eltwise", "SoftmaxWithLoss", "EuclideanLoss", "L1Loss",
             "PReLU", "ELU", "AbsVal", "BNLL", "Exp", "Log", "Threshold", "Clip", "Swish"}
NOT_YET = {"Flatten": "flattening mixes spatial positions", "Reshape": "reshaping mixes spatial positions",
           "Shift": "a shift of a dense grid has no single original"}
AFTER_REBUILT = {"ReLU", "Softmax", "SoftmaxWithLoss", "Sigmoid", "TanH", "Power", "Split", "Dropout",
                 "EuclideanLoss", "L1Loss", "Crop"}


class CropFitError(ValueError):
    """densify's refusal when a Crop cannot hold every fragment at this input size (an input size
    where all fit exists nearby: :func:`fitting_input_sizes`)."""


def _mul(a, b):
    return (a[0] * b[0], a[1] * b[1])


def _strip(d: dict, *keys):
    for k in keys:
        d.pop(k, None)
    return d


def _fc_pad(pad, name: str, kernel) -> tuple:
    """The ``(pad_h, pad_w)`` a convolutionalized InnerProduct ``name`` with ``kernel`` gets.

    ``pad``: 0 (none), ``"same"`` (``(k - 1) // 2`` per axis: VGG's 7x7 fc6 gets 3), an int or an
    ``(h, w)`` pair, or ``{layer: one of those}``.  An axis whose kernel is 1 is never padded (its padded
    positions would see nothing but zeros): VGG's fc7 and fc8 (1x1) stay unpadded.
    """
    if isinstance(pad, dict):
        pad = pad.get(name, 0)
    if isinstance(pad, str):
        if pad != "same":
            raise ValueError(f"layer {name!r}: fc pad {pad!r} must be an int, an (h, w) pair or 'same'")
        return tuple((int(k) - 1) // 2 for k in kernel)
    p = (pad, pad) if np.ndim(pad) == 0 else tuple(pad)
    if len(p) != 2 or any(int(v) != v or v < 0 for v in p):
        raise ValueError(f"layer {name!r}: fc pad {pad!r} must be a non-negative int, an (h, w) pair or "
                         f"'same'")
    return tuple(int(p[a]) if kernel[a] > 1 else 0 for a in (0, 1))


def _ip_as_conv(spec: dict, layer, in_shape, pad=0) -> dict:
    """The Convolution spec equivalent to an InnerProduct on a (N, C, h, w) or (N, K) input (with
    ``pad``, see :func:`_fc_pad`, it is the padded variant: more positions, see :func:`convolutionalize`)."""
    if layer.axis not in (1, -len(in_shape) + 1):
        raise ValueError(f"layer {layer.name!r} (InnerProduct): only axis 1 can be convolutionalized")
    kernel = tuple(in_shape[2:4]) if len(in_shape) == 4 else (1, 1)
    if len(in_shape) not in (2, 4):
        raise ValueError(f"layer {layer.name!r} (InnerProduct): input {in_shape} is neither (N, C, H, W) "
                         f"nor (N, K)")
    ip = spec.get("inner_product_param", {})
    cp = {"num_output": layer.num_output, "bias_term": layer.bias_term,
          "kernel_h": int(kernel[0]), "kernel_w": int(kernel[1])}
    pad = _fc_pad(pad, layer.name, kernel)
    if pad != (0, 0):
        cp["pad_h"], cp["pad_w"] = pad
    for k in ("weight_filler", "bias_filler"):
        if k in ip:
            cp[k] = copy.deepcopy(ip[k])
    out = {k: copy.deepcopy(v) for k, v in spec.items() if k != "inner_product_param"}
    out["type"] = "Convolution"
    out["convolution_param"] = cp
    return out


def _ip_weight_to_conv(w, layer, conv_shape):
    w = w.T if layer.transpose else w
    return np.ascontiguousarray(w).reshape(conv_shape)


def convolutionalize(net: Net, names, pad=0) -> Net:
    """A copy of ``net`` with the named InnerProduct layers as equivalent Convolutions.

    With ``pad`` (see :func:`_fc_pad`: an int, an ``(h, w)`` pair, ``"same"`` or ``{layer: pad}``) the
    convolutions are padded: a *different* net with more output positions.  Note [Padded fc].  An
    InnerProduct with kernel ``k`` (its input's size ``h`` at the declared input shape) and pad ``p``
    gives ``H - k + 1 + 2p`` positions on an input of size ``H``; position ``i`` reads input rows
    ``i - p .. i - p + k - 1``.  The positions whose window does not touch the padding,
    ``p <= i < p + H - k + 1``, equal the unpadded convolution's position ``i - p`` (layers after it
    see the same shift); the ``p`` positions at either end read zeros.  At the declared shape
    (``H = k``) the unpadded net's single position is the padded net's ``(p, p)``.  VGG-16 with
    ``pad="same"`` (fc6 pad 3) at 256x256 gives fc8 8x8 instead of 2x2 (the paper's test-time
    "2x2 probability estimates" are the unpadded ones).
    """
    unknown = sorted(set(pad) - set(names)) if isinstance(pad, dict) else []
    if unknown:
        raise ValueError(f"convolutionalize: pad given for {unknown}, which are not converted")
    specs, converted = [], {}
    for layer in net.layers:
        spec = copy.deepcopy(layer.spec)
        if layer.name in names and layer.type == "InnerProduct":
            in_shape = net.blob_shapes_at(layer.name)[0]
            spec = _ip_as_conv(spec, layer, in_shape, pad)
            converted[layer.name] = layer
        specs.append(spec)
    out = Net(specs, **net.build_options, name=net.name)
    _copy_params(net, out, converted)
    return out


def _copy_params(src: Net, dst: Net, converted: dict, back: bool = False):
    """Copy every parameter blob by layer name; reshape convolutionalized InnerProduct weights."""
    for name, blobs in src.params.items():
        if name not in dst.params:
            continue
        for i, (a, b) in enumerate(zip(blobs, dst.params[name])):
            if i == 0 and name in converted:
                layer = converted[name]
                if back:   # conv (N, C, h, w) -> InnerProduct (N, K) or (K, N)
                    flat = a.reshape(a.shape[0], -1)
                    b[...] = flat.T if layer.transpose else flat
                else:
                    b[...] = _ip_weight_to_conv(a, layer, b.shape)
            else:
                if a.shape != b.shape:
                    raise ValueError(f"layer {name!r}: parameter {i} has shape {a.shape} in the source "
                                     f"and {b.shape} in the target")
                b[...] = a


def densify(net: Net, start: str, fc_pad=0) -> Net:
    """The dense equivalent of ``net`` with layer ``start``'s stride set to 1 (see module docstring).

    ``fc_pad`` (0, an int, an ``(h, w)`` pair, ``"same"`` or ``{layer: pad}``, see :func:`_fc_pad`):
    the padded variant.  The InnerProducts downstream of ``start`` are first convolutionalized with
    that pad *in the original as well*, and the dense net is the equivalent of that padded original:
    ``dense_info``, ``dpoa`` and E1/E2 refer to it (``dpoa`` gives back padded Convolutions, not
    InnerProducts).  Which positions still equal the unpadded net: Note [Padded fc] in
    :func:`convolutionalize`; on the dense grid (step ``E`` at the fc) the shift is ``p*E``.
    """
    names = net.layer_names
    if start not in names:
        raise ValueError(f"densify: no layer named {start!r} (layers: {', '.join(names)})")
    first = net.layer(start)
    if first.type not in ("Pooling", "Convolution") or first.stride == (1, 1):
        raise ValueError(f"densify: start layer {start!r} ({first.type}) must be a pooling layer or a "
                         f"convolution with stride > 1")
    start_index = names.index(start)
    if isinstance(fc_pad, (str, dict)) or np.any(fc_pad):
        down, ips = set(first.top_names), []
        for layer in net.layers[start_index + 1:]:
            if down & set(layer.bottom_names):
                down.update(layer.top_names)
                ips += [layer.name] if layer.type == "InnerProduct" else []
        net = convolutionalize(net, ips, pad=fc_pad)
    step = {}                         # blob name -> (E_h, E_w) of its grid
    active = {}                       # blob name -> densified (layer, stride) its phases hold
    rebuilt = set()                   # blobs after a rebuilt upsampling (no equivalent)
    specs, converted, densified = [], {}, []
    for index, layer in enumerate(net.layers):
        spec = copy.deepcopy(layer.spec)
        if rebuilt & set(layer.bottom_names):
            specs.append(_after_rebuilt(spec, layer, start))
            rebuilt.update(layer.top_names)
            continue
        ins = [step.get(b, (1, 1)) for b in layer.bottom_names]
        if len(set(ins)) > 1:
            raise ValueError(f"densify: layer {layer.name!r} ({layer.type}) joins blobs on different "
                             f"grids {dict(zip(layer.bottom_names, ins))}")
        e = ins[0] if ins else (1, 1)
        held = _joined_phases(layer, [active.get(b, ()) for b in layer.bottom_names])
        dense_here = index == start_index or (index > start_index and e != (1, 1))
        out = e
        if dense_here and layer.type == "Deconvolution":
            spec, out, held = _dense_deconvolution(spec, layer, e, held, start)
            if out is None:            # the final fixed upsampling, rebuilt for the dense grid
                specs.append(spec)
                rebuilt.update(layer.top_names)
                continue
        elif dense_here and layer.type == "Crop":
            spec = _dense_crop(spec, layer, e, net.blob_shapes_at(layer.name)[0])
        elif dense_here:
            if layer.type in NOT_YET:
                raise ValueError(f"densify: layer {layer.name!r} ({layer.type}) after {start!r} cannot be "
                                 f"made exactly equivalent yet: {NOT_YET[layer.type]}")
            if layer.type == "InnerProduct":
                spec = _ip_as_conv(spec, layer, net.blob_shapes_at(layer.name)[0])
                converted[layer.name] = layer
                stride, pad, dil = (1, 1), (0, 0), (1, 1)
            elif layer.type == "Convolution":
                stride, pad, dil = layer.stride, layer.pad, layer.est
            if layer.type in ("Convolution", "InnerProduct"):
                cp = _strip(spec["convolution_param"], "stride", "stride_h", "stride_w", "pad", "pad_h",
                            "pad_w", "dilation")
                cp.update(stride=[1], pad=[pad[0] * e[0], pad[1] * e[1]],
                          dilation=[dil[0] * e[0], dil[1] * e[1]])
                out = _mul(e, stride)
                densified.append((layer.name, tuple(stride), e))
                held = held + (((layer.name, tuple(stride)),) if stride != (1, 1) else ())
            elif layer.type == "Pooling":
                kernel = net.blob_shapes_at(layer.name)[0][2:] if layer.global_pooling else layer.kernel
                ceil = layer.round_mode == "ceil"
                _refuse_windows_past_the_end(layer, start, ceil)
                pp = _strip(spec.setdefault("pooling_param", {}), "kernel_size", "stride", "stride_h",
                            "stride_w", "pad", "pad_h", "pad_w", "global_pooling", "est", "pad_end")
                pp.update(kernel_h=int(kernel[0]), kernel_w=int(kernel[1]), stride_h=1, stride_w=1,
                          pad_h=layer.pad[0] * e[0], pad_w=layer.pad[1] * e[1],
                          est=[layer.est[0] * e[0], layer.est[1] * e[1]],
                          pad_end=[layer.pad_end[a] * e[a] + (e[a] * (layer.stride[a] - 1) if ceil else 0)
                                   for a in (0, 1)])
                out = _mul(e, layer.stride)
                densified.append((layer.name, tuple(layer.stride), e))
                held = held + (((layer.name, tuple(layer.stride)),) if layer.stride != (1, 1) else ())
            elif layer.type == "LRN":
                if layer.region == "WITHIN_CHANNEL":
                    spec["lrn_param"]["est"] = [layer.est[0] * e[0], layer.est[1] * e[1]]
            elif layer.type not in POINTWISE:
                raise ValueError(f"densify: layer {layer.name!r} ({layer.type}) after {start!r} has no "
                                 f"equivalent rewrite")
        for t in layer.top_names:
            step[t] = out
            active[t] = held
        specs.append(spec)
    name = (net.name + "_dense") if net.name else "dense"
    try:
        probe = Net(specs, **net.build_options, name=name)
    except ValueError as e:
        if "(Crop)" not in str(e):
            raise
        raise CropFitError(f"densify: {e}.  On the dense grid a Crop must fit every fragment, and here "
                           f"some fragments' shifted source is too short for the crop (the original's "
                           f"sizes fit only its own phase): choose an input size where they all fit "
                           f"(reference.dense.fitting_input_sizes lists them; on the command line "
                           f"econv densify/verify print them, and --input-shape takes one)") from None
    specs, extents = _add_masks(specs, probe, step, rebuilt)
    if rebuilt:
        crops = {s["name"] for s in specs if s["type"] == "Crop" and s["bottom"][0] in rebuilt}
        specs = derive_crop_offsets(specs, only=crops, **net.build_options)
    dense = Net(specs, **net.build_options, name=name)
    _copy_params(net, dense, converted)
    dense.grids = {b: None if b in rebuilt else ((0, 0), step.get(b, (1, 1))) for b in dense.blob_names}
    dense.dense_info = {"original_specs": copy.deepcopy(net.specs), "start": start,
                        "converted": converted, "build_options": dict(net.build_options),
                        "densified": densified, "active": {b: tuple(n for n, _ in v)
                                                           for b, v in active.items()},
                        "extents": extents, "rebuilt": sorted(rebuilt),
                        "kept_params": {n: [b.copy() for b in net.params[n]] for n in net.params
                                        if n not in dense.params},
                        "name": net.name}
    return dense


def _refuse_windows_past_the_end(layer, start, ceil):
    """Note [Unpadded ceil windows]: refuse what the dense ePool cannot reproduce.

    Without padding Caffe applies no clip (``pooling_layer.cpp``, ``Reshape``: the decrement is
    guarded by ``if (pad_h_ || pad_w_)``), so a ceil-mode pooling whose window extent is smaller than
    its stride keeps a last window that starts past the input's end (n=6, k=1, s=2: 4 windows, the
    last at 6).  On the dense grid every fragment has its own length, and such a window exists for
    some fragments and not for others at the same dense position: no stride-1 ePool holds them all
    (the dense net silently lacked them).  The rule is per axis; padding on either axis clips both.
    """
    if not ceil or layer.global_pooling or layer.pad != (0, 0) or layer.pad_end != (0, 0):
        return
    for a, axis in enumerate("hw"):
        ext = extent(layer.kernel[a], layer.est[a])
        if ext < layer.stride[a]:
            raise ValueError(
                f"densify: layer {layer.name!r} (Pooling, kernel {layer.kernel[0]}x{layer.kernel[1]}, "
                f"stride {layer.stride[0]}x{layer.stride[1]}, no padding, ceil rounding) at or after "
                f"{start!r}: on the {axis} axis its window ({ext}) is shorter than its stride, and "
                f"without padding Caffe keeps a last window that starts past the input's end; which "
                f"fragments have one depends on their lengths, so no dense ePool is equivalent.  "
                f"Use round_mode: FLOOR, a pad, or a start layer after {layer.name!r}")


# ---- FCN: deconvolution, crop, skips (Note [Dense FCN] in the module docstring) -----------------

def _joined_phases(layer, held):
    """The densified layers whose phases a layer's output holds: its bottoms' (which must agree)."""
    if len(set(held)) > 1:
        raise ValueError(f"densify: layer {layer.name!r} ({layer.type}) joins blobs that hold different "
                         f"fragments: {dict(zip(layer.bottom_names, held))}")
    return held[0] if held else ()


def _dense_deconvolution(spec, layer, e, held, start):
    """``(spec, output step, phases held)`` for a Deconvolution reading a grid of step ``e``.

    ``e`` a multiple of the stride ``s``: the equivalent deconvolution on the grid ``e / s``; it gives
    back the last densified strides (their product must be ``s``), whose fragments the upsampling
    has no place for.  ``s`` a multiple of ``e`` and the layer a fixed bilinear upsampling (FCN's
    final one): rebuilt for the dense grid, stride ``s / e`` (output step None: not equivalent).
    """
    s = layer.stride
    if all(e[a] % s[a] == 0 for a in (0, 1)):
        grid = (e[0] // s[0], e[1] // s[1])
        out = copy.deepcopy(spec)
        out["type"] = "EDeconvolution"
        out["convolution_param"]["grid"] = list(grid)
        held, given = list(held), (1, 1)
        while given != s and held:
            given = _mul(given, held.pop()[1])
        if given != s:
            raise ValueError(f"densify: layer {layer.name!r} (Deconvolution, stride {s}) does not undo a "
                             f"whole number of densified strides {held}")
        return out, grid, tuple(held)
    w = layer.blobs[0] if layer.blobs else None
    bias_free = not layer.bias_term or not np.any(layer.blobs[1])
    bilinear = w is not None and bias_free and is_diagonal_bilinear(w, layer.group)
    if not (all(s[a] % e[a] == 0 for a in (0, 1)) and bilinear and layer.pad == (0, 0)
            and layer.est == (1, 1)):
        hint = ""
        if w is not None and not np.any(w):
            hint = ("; its weights are all zero (no filler in the prototxt and no weights loaded): "
                    "FCN's net surgery puts the bilinear kernels in the caffemodel, so load it "
                    "(load_net(prototxt, weights), econv densify --weights)")
        raise ValueError(f"densify: layer {layer.name!r} (Deconvolution, stride {s}) reads a grid of "
                         f"equivalent stride {e} after {start!r}: an equivalent deconvolution needs "
                         f"the grid to be a multiple of the stride, and only a fixed bilinear "
                         f"upsampling (weights: the bilinear kernel on the group diagonal, no bias, "
                         f"pad 0; see reference.upsampling) can be rebuilt instead{hint}")
    factor = (s[0] // e[0], s[1] // e[1])
    cp = _strip(copy.deepcopy(spec["convolution_param"]), "kernel_size", "kernel_h", "kernel_w",
                "stride", "stride_h", "stride_w", "pad", "pad_h", "pad_w", "group", "bias_term",
                "weight_filler", "bias_filler")
    cp.update(kernel_h=2 * factor[0] - factor[0] % 2, kernel_w=2 * factor[1] - factor[1] % 2,
              stride_h=factor[0], stride_w=factor[1], group=layer.num_output, bias_term=False,
              weight_filler={"type": "bilinear"})
    out = copy.deepcopy(spec)
    out["name"] = f"{layer.name}_dense"          # new weights: dpoa keeps the original's own
    out["convolution_param"] = cp
    out["param"] = [{"lr_mult": 0, "decay_mult": 0}]   # fixed, as the layer it replaces
    return out, None, ()


def _dense_crop(spec, layer, e, in_shape):
    """A Crop between two blobs on the grid ``e``: its offsets scale with the grid."""
    axis = layer.axis + len(in_shape) if layer.axis < 0 else layer.axis
    offs = layer.offsets or [0]
    offs = offs * (len(in_shape) - axis) if len(offs) == 1 else list(offs)
    by_axis = dict(zip(range(axis, len(in_shape)), offs))
    if any(by_axis.get(a, 0) for a in (0, 1)):
        raise ValueError(f"densify: Crop {layer.name!r} crops the batch or channel axis")
    out = copy.deepcopy(spec)
    out["crop_param"] = {"axis": 2, "offset": [by_axis.get(2, 0) * e[0], by_axis.get(3, 0) * e[1]]}
    return out


def _after_rebuilt(spec, layer, start):
    """Layers after the rebuilt upsampling stay as they are (no equivalence is claimed there)."""
    if layer.type not in AFTER_REBUILT:
        raise ValueError(f"densify: layer {layer.name!r} ({layer.type}) follows a rebuilt upsampling "
                         f"after {start!r}; only crops, pointwise layers and losses may")
    return copy.deepcopy(spec)




def _chain(shape, step):
    """Phase lengths of a blob whose fragments all end at the array's end (no mask needed)."""
    return [phase_lengths(shape[2 + a], step[a]) for a in (0, 1)]


def _extent_of(layer, ins, shapes, steps):
    """Per axis, the valid length of every phase of ``layer``'s output (DESIGN.md 4, "Extents");
    ``ins``: ``[(bottom, its extent)]``."""
    top = layer.top_names[0]
    step = steps.get(top, (1, 1))
    masked = [b for b, ext in ins if ext != _chain(shapes[b], steps.get(b, (1, 1)))]
    if layer.type == "EDeconvolution":
        src = ins[0][1]
        return [[deconv_out_size(m, layer.kernel[a], layer.stride[a], layer.pad[a], layer.est[a])
                 if m >= 1 else 0 for m in src[a][:step[a]]] for a in (0, 1)]
    if not masked:
        return _chain(shapes[top], step)
    if layer.type == "Crop":
        src, ref, offs = ins[0][1], ins[1][1], layer.offsets
        return [[min(r, max(0, m - offs[a] // step[a])) for r, m in zip(ref[a], src[a])] for a in (0, 1)]
    if layer.type == "Eltwise":
        return [[min(v) for v in zip(*(ext[a] for _, ext in ins))] for a in (0, 1)]
    pointwise = layer.type in POINTWISE or layer.type == "Mask" or (
        layer.type == "Convolution" and layer.kernel == (1, 1) and layer.stride == (1, 1)
        and layer.pad == (0, 0))
    if not pointwise:
        raise ValueError(f"densify: layer {layer.name!r} ({layer.type}) reads {masked[0]!r}, a blob with "
                         f"a validity mask (after an equivalent deconvolution or crop); only 1x1 "
                         f"convolutions, deconvolutions, crops, sums and pointwise layers can")
    return ins[0][1]


ZERO_PRESERVING = {"ReLU", "Dropout", "Mask", "Split"}   # absent (zero) stays zero


def _add_masks(specs, probe: Net, steps, rebuilt):
    """``specs`` with an in-place ``Mask`` after every layer whose output fragments end inside the
    array, and ``{blob: (valid_h, valid_w)}`` (per phase) for every blob on a dense grid."""
    shapes = probe.blob_shapes
    layers = {layer.name: layer for layer in probe.layers}
    extents, out = {}, []
    for spec in specs:
        out.append(spec)
        layer = layers.get(spec.get("name"))
        if layer is None or layer.type == "Input":
            continue
        tops = [t for t in layer.top_names if len(shapes[t]) == 4 and t not in rebuilt]
        ins = [(b, extents.get(b) or _chain(shapes[b], steps.get(b, (1, 1))))
               for b in layer.bottom_names if len(shapes[b]) == 4 and b not in rebuilt]
        if not tops or not ins:
            continue
        ext = _extent_of(layer, ins, shapes, steps)
        for t in tops:
            step = steps.get(t, (1, 1))
            extents[t] = ext
            if ext != _chain(shapes[t], step) and layer.type not in ZERO_PRESERVING:
                out.append({"name": f"{layer.name}_mask", "type": "Mask", "bottom": [t], "top": [t],
                            "mask_param": {"step": list(step), "valid_h": ext[0], "valid_w": ext[1],
                                           "size": list(shapes[t][2:])}})
    return out, {b: tuple(map(tuple, v)) for b, v in extents.items() if steps.get(b, (1, 1)) != (1, 1)}


def dpoa(dense: Net) -> Net:
    """The original architecture carrying ``dense``'s parameters (paper: "dense net's parameters,
    original net's architecture")."""
    if not dense.dense_info:
        raise ValueError("dpoa: the net was not made by densify")
    info = dense.dense_info
    back = Net(copy.deepcopy(info["original_specs"]), **info["build_options"], name=info["name"])
    _copy_params(dense, back, info["converted"], back=True)
    for name, blobs in info.get("kept_params", {}).items():   # layers the dense net rebuilt
        for src, dst in zip(blobs, back.params[name]):
            dst[...] = src
    return back


# ---- input sizes where every fragment fits every crop ---------------------------------------------

SHAPED = ("Convolution", "Deconvolution", "InnerProduct")


def _skeleton(net: Net, shapes: dict) -> Net:
    """``net`` with one channel per layer at the input ``shapes``: the same geometry (sizes, crops,
    strides) for a fraction of the cost.  Deconvolutions that are bilinear on their group diagonal
    stay so (densify recognises them by their weights)."""
    specs = copy.deepcopy(net.specs)
    for spec in specs:
        if spec.get("type") in SHAPED:
            key = "inner_product_param" if spec["type"] == "InnerProduct" else "convolution_param"
            spec[key] = dict(spec.get(key, {}), num_output=1)
            if key == "convolution_param":
                spec[key]["group"] = 1
        if spec.get("type") == "Input":
            tops = spec.get("top", [])
            tops = tops if isinstance(tops, list) else [tops]
            spec["input_param"] = {"shape": [{"dim": list(shapes[t])} for t in tops]}
    skeleton = Net(specs, **dict(net.build_options, dtype=np.float64), name=net.name)
    for layer in skeleton.layers:
        if layer.type == "Deconvolution":
            original = net.layer(layer.name)
            if original.blobs and is_diagonal_bilinear(original.blobs[0], original.group):
                layer.blobs[0][...] = diagonal_bilinear(layer.blobs[0].shape, 1)
                if len(layer.blobs) > 1:
                    layer.blobs[1][...] = 0
    return skeleton


def _builds(net: Net, start: str, shapes: dict, fc_pad) -> bool:
    try:
        densify(_skeleton(net, shapes), start, fc_pad=fc_pad)
    except ValueError:               # a CropFitError, or the original does not build at that size
        return False
    return True


def fitting_input_sizes(net: Net, start: str, input_name: str | None = None, radius: int = 32,
                        count: int = 4, fc_pad=0) -> dict:
    """``{"h": [...], "w": [...], "best": (h, w) or None}``: up to ``count`` sizes per axis of input
    ``input_name`` (default: the net's first input), within ``radius`` of its declared size, at which
    ``densify(net, start)`` builds (every Crop fits every fragment), the other axis kept as declared
    (or, when no size fits with it, at the nearest size found for it); ``best`` the nearest pair.

    Every input declared with the same spatial size as ``input_name`` (an FCN's label) is resized
    with it.  Searched on a one-channel copy of the net (:func:`_skeleton`), so a call costs a few
    dozen shape-only builds.  Example: the fcn_skip fixture densified at pool1 fits at none of its
    declared sizes but at nearby ones.
    """
    input_name = input_name or net.input_names[0]
    declared = {t: tuple(net.blob_shapes[t]) for t in net.input_names}
    base = declared[input_name]
    if len(base) != 4:
        raise ValueError(f"fitting_input_sizes: input {input_name!r} is not N,C,H,W ({base})")
    def scan(a, other):
        """Sizes along axis ``a`` (the other axis at ``other``), nearest to the declared one first."""
        sizes = []
        for n in sorted(range(max(1, base[2 + a] - radius), base[2 + a] + radius + 1),
                        key=lambda v: (abs(v - base[2 + a]), v)):
            hw = (n, other) if a == 0 else (other, n)
            shapes = {t: s[:2] + hw if len(s) == 4 and s[2:] == base[2:] else s
                      for t, s in declared.items()}
            if _builds(net, start, shapes, fc_pad):
                sizes.append(n)
                if len(sizes) == count:
                    break
        return sorted(sizes, key=lambda v: (abs(v - base[2 + a]), v))

    h, w = scan(0, base[3]), scan(1, base[2])
    if not h and w:                  # the declared width fits nowhere: search heights at a good width
        h = scan(0, w[0])
    if not w and h:
        w = scan(1, h[0])
    return {"h": sorted(h), "w": sorted(w), "best": (h[0], w[0]) if h and w else None}
