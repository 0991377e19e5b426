"""FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer and Darrell, chapter 3) as layer lists.

``fcn("8s")`` with the defaults is voc-fcn8s's layout: a VGG-16 base whose first convolution pads by
100, fc6/fc7 convolutionalized (7x7 and 1x1), ``score_fr`` (1x1 to the classes), then:

- 32s: ``upscore`` (Deconvolution, kernel 64, stride 32) -> ``score`` = Crop(upscore, data);
- 16s: ``upscore2`` (kernel 4, stride 2) + Crop(``score_pool4``) -> ``fuse_pool4`` -> ``upscore16``
  (kernel 32, stride 16) -> Crop to the data;
- 8s: as 16s, then ``upscore_pool4`` (kernel 4, stride 2) + Crop(``score_pool3``) -> ``fuse_pool3``
  -> ``upscore8`` (kernel 16, stride 8) -> Crop to the data.

Every Deconvolution upsamples each class map on its own (``group`` = classes, weights
``(classes, 1, k, k)``) and starts as bilinear interpolation (Caffe's bilinear filler, kernel
``2s - s % 2``); the skips' upsamplings learn (``learn_skips=False``: fixed, as the published
voc-fcn8s train.prototxt has them), the final one is fixed (``lr_mult: 0``).  The score
layers on pool4/pool3 start at zero, as FCN's do, so training starts from the coarser net.  Every
Crop offset is derived from the coordinate maps (:func:`reference.coord_map.crop_offset`), never
typed in: 5, 9 and 31 for voc-fcn8s at any input size.  ``at_once`` scales pool4 by 0.01 and pool3 by
0.0001 before their score layers (FCN's "at-once" training).  With ``label=True`` a
SoftmaxWithLoss on ``score`` and ``label`` (ignore label 255) is added; its normalization is VALID
(FCN's own nets do not normalize and train with a tiny learning rate instead).

500x500 voc-fcn8s: pool5 22, fc6 16, upscore2 34, upscore8 568, score 500.
"""

from __future__ import annotations

from .coord_map import derive_crop_offsets

__all__ = ["fcn", "VARIANTS"]

VARIANTS = ("32s", "16s", "8s")
MSRA = {"type": "msra"}
ZERO = {"type": "constant", "value": 0}


def _conv(name, bottom, n, kernel, pad=0, weight=MSRA, relu=True, dropout=False):
    layers = [{"name": name, "type": "Convolution", "bottom": [bottom], "top": [name],
               "convolution_param": {"num_output": n, "kernel_size": kernel, "pad": pad,
                                     "weight_filler": dict(weight), "bias_filler": dict(ZERO)}}]
    if relu:
        layers.append({"name": "relu" + name.replace("conv", "").replace("fc", ""), "type": "ReLU",
                       "bottom": [name], "top": [name]})
    if dropout:
        layers.append({"name": "drop" + name.replace("fc", ""), "type": "Dropout", "bottom": [name],
                       "top": [name]})
    return layers


def _upsample(name, bottom, classes, factor, learn):
    spec = {"name": name, "type": "Deconvolution", "bottom": [bottom], "top": [name],
            "convolution_param": {"num_output": classes, "group": classes, "bias_term": False,
                                  "kernel_size": 2 * factor - factor % 2, "stride": factor,
                                  "weight_filler": {"type": "bilinear"}}}
    if not learn:
        spec["param"] = [{"lr_mult": 0, "decay_mult": 0}]
    return spec


def _crop(name, bottom, reference):
    return {"name": name, "type": "Crop", "bottom": [bottom, reference], "top": [name],
            "crop_param": {"axis": 2, "offset": [0]}}


def fcn(variant: str = "8s", classes: int = 21, widths=(64, 128, 256, 512, 512), convs=(2, 2, 3, 3, 3),
        fc: int = 4096, fc6_kernel: int = 7, first_pad: int = 100, input_shape=(1, 3, 500, 500),
        at_once: bool = False, label: bool = False, dropout: bool = True,
        learn_skips: bool = True) -> list[dict]:
    """The layer list of an FCN (module docstring); crop offsets derived for ``input_shape``.

    ``learn_skips=False`` fixes the skips' upsamplings too (``lr_mult: 0``), as the published
    voc-fcn8s does (all three of its Deconvolutions are fixed bilinear)."""
    if variant not in VARIANTS:
        raise ValueError(f"fcn: variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if len(widths) != 5 or len(convs) != 5:
        raise ValueError(f"fcn: widths and convs need 5 entries (one per block), got {widths}, {convs}")
    n, c, h, w = input_shape
    layers = [{"name": "data", "type": "Input", "top": ["data"],
               "input_param": {"shape": [{"dim": [n, c, h, w]}]}}]
    if label:
        layers.append({"name": "label", "type": "Input", "top": ["label"],
                       "input_param": {"shape": [{"dim": [n, 1, h, w]}]}})
    bottom = "data"
    for block, (count, width) in enumerate(zip(convs, widths), start=1):
        for i in range(1, count + 1):
            name = f"conv{block}_{i}"
            layers += _conv(name, bottom, width, 3, pad=first_pad if bottom == "data" else 1)
            bottom = name
        layers.append({"name": f"pool{block}", "type": "Pooling", "bottom": [bottom],
                       "top": [f"pool{block}"],
                       "pooling_param": {"pool": "MAX", "kernel_size": 2, "stride": 2}})
        bottom = f"pool{block}"
    layers += _conv("fc6", "pool5", fc, fc6_kernel, dropout=dropout)
    layers += _conv("fc7", "fc6", fc, 1, dropout=dropout)
    layers += _conv("score_fr", "fc7", classes, 1, weight={"type": "gaussian", "std": 0.01}, relu=False)
    final = {"32s": 32, "16s": 16, "8s": 8}[variant]
    coarse = "score_fr"
    skips = {"16s": ("pool4",), "8s": ("pool4", "pool3")}.get(variant, ())
    scales = {"pool4": 0.01, "pool3": 0.0001}
    for i, pool in enumerate(skips):
        up = "upscore2" if i == 0 else f"upscore_{skips[i - 1]}"
        layers.append(_upsample(up, coarse, classes, 2, learn=learn_skips))
        source = pool
        if at_once:
            source = f"scale_{pool}"
            layers.append({"name": source, "type": "Power", "bottom": [pool], "top": [source],
                           "power_param": {"scale": scales[pool]}})
        layers += _conv(f"score_{pool}", source, classes, 1, weight=ZERO, relu=False)
        layers.append(_crop(f"score_{pool}c", f"score_{pool}", up))
        layers.append({"name": f"fuse_{pool}", "type": "Eltwise", "bottom": [up, f"score_{pool}c"],
                       "top": [f"fuse_{pool}"], "eltwise_param": {"operation": "SUM"}})
        coarse = f"fuse_{pool}"
    up = "upscore" if variant == "32s" else f"upscore{final}"
    layers.append(_upsample(up, coarse, classes, final, learn=False))
    layers.append(_crop("score", up, "data"))
    if label:
        layers.append({"name": "loss", "type": "SoftmaxWithLoss", "bottom": ["score", "label"],
                       "top": ["loss"], "loss_param": {"ignore_label": 255, "normalization": "VALID"}})
    return derive_crop_offsets(layers)
