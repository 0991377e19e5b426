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
- Deconvolution, Crop, Flatten, Reshape downstream of ``start`` raise ValueError (not yet equivalent).

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

from .net import Net

__all__ = ["densify", "dpoa", "convolutionalize"]

POINTWISE = {"ReLU", "Dropout", "BatchNorm", "Scale", "TanH", "Sigmoid", "Power", "Softmax", "Split",
             "Concat", "Eltwise", "SoftmaxWithLoss", "EuclideanLoss", "L1Loss"}
NOT_YET = {"Deconvolution": "an equivalent deconvolution needs phase-aware taps (FCN work)",
           "Crop": "crop offsets on a dense grid need validity masks (FCN work)",
           "Flatten": "flattening mixes spatial positions", "Reshape": "reshaping mixes spatial positions",
           "Shift": "a shift of a dense grid has no single original"}


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
    specs, converted, densified = [], {}, []
    for index, layer in enumerate(net.layers):
        spec = copy.deepcopy(layer.spec)
        ins = [step.get(b, (1, 1)) for b in layer.bottom_names]
        if len(set(ins)) > 1 and layer.type not in ("Crop",):
            raise ValueError(f"densify: layer {layer.name!r} ({layer.type}) joins blobs on different "
                             f"grids {dict(zip(layer.bottom_names, ins))}")
        e = ins[0] if ins else (1, 1)
        dense_here = index == start_index or (index > start_index and e != (1, 1))
        out = e
        if dense_here:
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
            elif layer.type == "Pooling":
                kernel = net.blob_shapes_at(layer.name)[0][2:] if layer.global_pooling else layer.kernel
                ceil = layer.round_mode == "ceil"
                pp = _strip(spec.setdefault("pooling_param", {}), "kernel_size", "stride", "stride_h",
                            "stride_w", "pad", "pad_h", "pad_w", "global_pooling", "est", "pad_end")
                pp.update(kernel_h=int(kernel[0]), kernel_w=int(kernel[1]), stride_h=1, stride_w=1,
                          pad_h=layer.pad[0] * e[0], pad_w=layer.pad[1] * e[1],
                          est=[layer.est[0] * e[0], layer.est[1] * e[1]],
                          pad_end=[layer.pad_end[a] * e[a] + (e[a] * (layer.stride[a] - 1) if ceil else 0)
                                   for a in (0, 1)])
                out = _mul(e, layer.stride)
                densified.append((layer.name, tuple(layer.stride), e))
            elif layer.type == "LRN":
                if layer.region == "WITHIN_CHANNEL":
                    spec["lrn_param"]["est"] = [layer.est[0] * e[0], layer.est[1] * e[1]]
            elif layer.type not in POINTWISE:
                raise ValueError(f"densify: layer {layer.name!r} ({layer.type}) after {start!r} has no "
                                 f"equivalent rewrite")
        for t in layer.top_names:
            step[t] = out
        specs.append(spec)
    dense = Net(specs, **net.build_options, name=(net.name + "_dense") if net.name else "dense")
    _copy_params(net, dense, converted)
    dense.grids = {b: ((0, 0), step.get(b, (1, 1))) for b in dense.blob_names}
    dense.dense_info = {"original_specs": copy.deepcopy(net.specs), "start": start,
                        "converted": converted, "build_options": dict(net.build_options),
                        "densified": densified,
                        "name": net.name}
    return dense


def dpoa(dense: Net) -> Net:
    """The original architecture carrying ``dense``'s parameters (paper: "dense net's parameters,
    original net's architecture")."""
    if not dense.dense_info:
        raise ValueError("dpoa: the net was not made by densify")
    info = dense.dense_info
    back = Net(copy.deepcopy(info["original_specs"]), **info["build_options"], name=info["name"])
    _copy_params(dense, back, info["converted"], back=True)
    return back
