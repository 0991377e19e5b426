"""SSD's fork layers (github:weiliu89/caffe, branch ssd @ 4817bf8): ``Normalize``, ``Permute``,
``PriorBox``, ``DetectionOutput``.

Normalize (src/caffe/layers/normalize_layer.cpp lines 85-136 forward, 137-230 backward): L2
normalisation with a learned scale.  ``across_spatial`` (default true): one norm per sample over
C*H*W; false: one per sample and position, over C.  ``r = sqrt(sum x^2 + eps)`` (eps default 1e-10,
inside the root), ``y = s * x / r`` with ``s`` one scalar (``channel_shared``, default true) or one
per channel (blob shape (1,) or (C,), ``scale_filler`` default constant 1).  Backward: with
``g = s * dy`` over one normalisation set, ``dx = g / r - x * sum(g * x) / r^3``, ``ds = sum(dy * x / r)``.
Example: across_spatial false, s = 2, x at one position = (3, 4): r = 5 -> y = (1.2, 1.6).

Permute (src/caffe/layers/permute_layer.cpp lines 29-138): ``order`` lists the new axis order; axes
it leaves out follow in increasing order (``order: 0 order: 2`` on 4-D = (0, 2, 1, 3)); repeated or
out-of-range axes are errors.  Backward: the inverse permutation.

PriorBox (src/caffe/layers/prior_box_layer.cpp lines 11-102 setup, 120-220 forward; no backward).
Bottoms: a feature map (H, W) and the image (``img_h``/``img_w``/``img_size`` override its size).  Aspect
ratios: 1, then each given ratio not already in the list (|difference| < 1e-6), followed by its inverse
when ``flip`` (default true).  Per position (h, w), centre ``((w + offset) * step_w, (h + offset) *
step_h)`` (offset default 0.5, step default image / feature size), for each ``min_size`` m (truncated to
an integer, as Caffe's ``int`` does): the m x m box, then ``sqrt(m * M)`` squared with the matching
``max_size`` M, then ``m sqrt(ar)`` x ``m / sqrt(ar)`` for every ratio other than 1; boxes as
(xmin, ymin, xmax, ymax) divided by the image size, clipped to [0, 1] with ``clip``.  Top (1, 2, 4 *
H * W * priors): channel 0 the boxes, channel 1 the variances (one value for all four coordinates, or
four; default 0.1).  Example: 1x1 feature, 10x10 image, min_size 4 -> (0.3, 0.3, 0.7, 0.7).
"""

from __future__ import annotations

import math

import numpy as np

from ..params import ParamReader
from .base import Layer, register


@register
class Normalize(Layer):
    type = "Normalize"

    def configure(self):
        p = self.param("norm_param")
        self.across_spatial = p.bool("across_spatial", True)
        self.channel_shared = p.bool("channel_shared", True)
        self.eps = p.float("eps", 1e-10)
        self.filler = p.sub("scale_filler") or {"type": "constant", "value": 1.0}

    def reshape(self, shapes):
        s = shapes[0]
        if len(s) < 2:
            raise self.error(f"input must have a channel axis, got shape {s}")
        shape = (1,) if self.channel_shared else (s[1],)
        if not self.blobs:
            self.make_blob(shape, self.filler)
        self.check_blob_shape(0, shape)
        return [s]

    def _axes(self, x):
        return tuple(range(1, x.ndim)) if self.across_spatial else (1,)

    def _scale(self, x):
        s = self.blobs[0]
        return s.reshape(()) if self.channel_shared else s.reshape((1, -1) + (1,) * (x.ndim - 2))

    def run_forward(self, bottoms):
        x = bottoms[0]
        r = np.sqrt((x * x).sum(axis=self._axes(x), keepdims=True) + self.eps)
        return [(x / r * self._scale(x)).astype(x.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        x, dy = bottoms[0], top_diffs[0]
        axes = self._axes(x)
        r = np.sqrt((x * x).sum(axis=axes, keepdims=True) + self.eps)
        xn = x / r
        ds = dy * xn
        self.diffs[0] += ds.sum().reshape(1) if self.channel_shared else \
            ds.sum(axis=tuple(a for a in range(x.ndim) if a != 1))
        g = dy * self._scale(x)
        dx = g / r - x * (g * x).sum(axis=axes, keepdims=True) / r ** 3
        return [dx.astype(x.dtype)]


@register
class Permute(Layer):
    type = "Permute"

    def configure(self):
        self.order = [int(v) for v in self.param("permute_param").list("order")]
        if len(set(self.order)) != len(self.order):
            raise self.param("permute_param").error(f"order repeats an axis: {self.order}")

    def _perm(self, ndim):
        if any(not 0 <= a < ndim for a in self.order):
            raise self.error(f"order {self.order} names an axis outside 0..{ndim - 1}")
        return self.order + [a for a in range(ndim) if a not in self.order]

    def reshape(self, shapes):
        s = shapes[0]
        return [tuple(s[a] for a in self._perm(len(s)))]

    def run_forward(self, bottoms):
        x = bottoms[0]
        return [np.ascontiguousarray(x.transpose(self._perm(x.ndim)))]

    def run_backward(self, top_diffs, bottoms, tops):
        perm = self._perm(bottoms[0].ndim)
        return [np.ascontiguousarray(top_diffs[0].transpose(np.argsort(perm)))]


@register
class PriorBox(Layer):
    type = "PriorBox"
    n_bottom = (2, 2)
    label_bottoms = (0, 1)
    forward_only = True

    def configure(self):
        p = self.param("prior_box_param")
        self.min_sizes = [float(v) for v in p.list("min_size")]
        if not self.min_sizes:
            raise p.error("min_size is required")
        self.max_sizes = [float(v) for v in p.list("max_size")]
        if self.max_sizes and len(self.max_sizes) != len(self.min_sizes):
            raise p.error("give one max_size per min_size")
        if any(m <= n for n, m in zip(self.min_sizes, self.max_sizes)):
            raise p.error("max_size must be greater than min_size")
        self.flip = p.bool("flip", True)
        self.ratios = [1.0]
        for ar in p.list("aspect_ratio"):
            if all(abs(float(ar) - r) >= 1e-6 for r in self.ratios):
                self.ratios.append(float(np.float32(ar)))
                if self.flip:
                    self.ratios.append(float(np.float32(1.0 / float(np.float32(ar)))))
        self.clip = p.bool("clip", False)
        var = [float(v) for v in p.list("variance")]
        if len(var) not in (0, 1, 4):
            raise p.error(f"variance takes 1 or 4 values, got {len(var)}")
        self.variance = var or [0.1]
        self.img = self._pair(p, "img_size", "img_h", "img_w")
        self.step = self._pair(p, "step", "step_h", "step_w")
        self.offset = p.float("offset", 0.5)
        self.num_priors = len(self.ratios) * len(self.min_sizes) + len(self.max_sizes)

    @staticmethod
    def _pair(p, key, h, w):
        if p.has(h) or p.has(w):
            if p.has(key):
                raise p.error(f"give {key} or {h}/{w}, not both")
            return (p.float(h, 0), p.float(w, 0))
        v = p.float(key, 0)
        return (v, v)

    def reshape(self, shapes):
        feat = shapes[0]
        return [(1, 2, feat[-2] * feat[-1] * self.num_priors * 4)]

    def _boxes(self, feat_hw, img_hw):
        """Caffe's arithmetic: centres, steps and box sides are floats (float32), the corner
        expressions ``(center - side / 2.) / img`` doubles."""
        f32 = np.float32
        img_h, img_w = (img_hw if not (self.img[0] and self.img[1]) else self.img)
        fh, fw = feat_hw
        if self.step[0] and self.step[1]:
            step_h, step_w = f32(self.step[0]), f32(self.step[1])
        else:
            step_h, step_w = f32(img_h) / f32(fh), f32(img_w) / f32(fw)
        ratios = [f32(r) for r in self.ratios if abs(r - 1) >= 1e-6]
        out = []
        for h in range(fh):
            for w in range(fw):
                cx = float((f32(w) + f32(self.offset)) * step_w)
                cy = float((f32(h) + f32(self.offset)) * step_h)
                for s, m in enumerate(self.min_sizes):
                    m = int(m)
                    sizes = [(m, m)]
                    if self.max_sizes:
                        side = float(f32(math.sqrt(m * int(self.max_sizes[s]))))
                        sizes.append((side, side))
                    sizes += [(float(f32(m) * np.sqrt(r)), float(f32(m) / np.sqrt(r))) for r in ratios]
                    for bw, bh in sizes:
                        out.append(((cx - bw / 2.0) / img_w, (cy - bh / 2.0) / img_h,
                                    (cx + bw / 2.0) / img_w, (cy + bh / 2.0) / img_h))
        return np.asarray(out, np.float64).reshape(-1)

    def run_forward(self, bottoms):
        feat, img = bottoms
        boxes = self._boxes(feat.shape[-2:], img.shape[-2:])
        if self.clip:
            boxes = np.clip(boxes, 0.0, 1.0)
        var = np.resize(np.asarray(self.variance, np.float64), boxes.shape)
        return [np.stack([boxes, var])[None].astype(feat.dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        return [None, None]          # the fork has no backward: priors depend on shapes only


def _decode(priors, variances, loc, code_type, var_in_target):
    """bbox_util.cpp DecodeBBox (lines 441-535): boxes (P, 4) from priors, variances and offsets."""
    v = np.ones_like(variances) if var_in_target else variances
    if code_type == "CORNER":
        return priors + v * loc
    pw, ph = priors[:, 2] - priors[:, 0], priors[:, 3] - priors[:, 1]
    if np.any(pw <= 0) or np.any(ph <= 0):
        raise ValueError("a prior box has no width or height")
    if code_type == "CORNER_SIZE":
        return priors + v * loc * np.stack([pw, ph, pw, ph], axis=1)
    cx, cy = (priors[:, 0] + priors[:, 2]) / 2, (priors[:, 1] + priors[:, 3]) / 2
    dcx, dcy = v[:, 0] * loc[:, 0] * pw + cx, v[:, 1] * loc[:, 1] * ph + cy
    dw, dh = np.exp(v[:, 2] * loc[:, 2]) * pw, np.exp(v[:, 3] * loc[:, 3]) * ph
    return np.stack([dcx - dw / 2, dcy - dh / 2, dcx + dw / 2, dcy + dh / 2], axis=1)


def _size(b):
    """BBoxSize (normalized): width * height, 0 for an inverted box."""
    return 0.0 if (b[2] < b[0] or b[3] < b[1]) else float((b[2] - b[0]) * (b[3] - b[1]))


def _overlap(a, b):
    """JaccardOverlap (bbox_util.cpp lines 274-297)."""
    if b[0] > a[2] or b[2] < a[0] or b[1] > a[3] or b[3] < a[1]:
        return 0.0
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return float(inter / (_size(a) + _size(b) - inter))


def nms(boxes, scores, score_threshold, nms_threshold, eta=1.0, top_k=-1) -> list:
    """ApplyNMSFast (bbox_util.cpp lines 1901-1937): indices kept, best score first.  Candidates:
    scores > threshold, stable-sorted descending, the first ``top_k``; a candidate is kept when its
    overlap with every kept box is <= the threshold, which shrinks by ``eta`` after each keep while
    above 0.5."""
    order = [i for i in np.argsort(-np.asarray(scores), kind="stable") if scores[i] > score_threshold]
    if top_k > -1:
        order = order[:top_k]
    kept, thr = [], nms_threshold
    for i in order:
        if all(_overlap(boxes[i], boxes[k]) <= thr for k in kept):
            kept.append(int(i))
            if eta < 1 and thr > 0.5:
                thr *= eta
    return kept


@register
class DetectionOutput(Layer):
    """SSD's DetectionOutput (src/caffe/layers/detection_output_layer.cpp lines 180-473, forward only).

    Bottoms: loc (N, P * L * 4), conf (N, P * classes, after softmax), priors (1, 2, P * 4) from
    PriorBox; L = 1 with ``share_location`` (default) else classes.  Per image and class other than
    ``background_label_id``: the decoded boxes (``code_type``, not clipped), :func:`nms` with
    ``confidence_threshold`` (default -FLT_MAX), ``nms_param`` (threshold 0.3, top_k, eta 1); then, when
    ``keep_top_k`` > -1 and more remain, the best ``keep_top_k`` over all classes (sorted by score; ties
    stay in class order here, Caffe's std::sort leaves them unspecified).  Top (1, 1, kept, 7): rows
    ``(image, label, score, xmin, ymin, xmax, ymax)`` by image, label ascending, score descending; with
    nothing kept, one row of -1 per image with the image index first.
    """
    type = "DetectionOutput"
    n_bottom = (3, 4)
    label_bottoms = (2, 3)
    forward_only = True

    CODE_TYPES = {1: "CORNER", 2: "CENTER_SIZE", 3: "CORNER_SIZE"}

    def configure(self):
        p = self.param("detection_output_param")
        self.num_classes = p.int("num_classes", minimum=1)
        self.share_location = p.bool("share_location", True)
        self.background = p.int("background_label_id", 0)
        code = p.scalar("code_type")
        code = self.CODE_TYPES.get(code, code) if code is not None else "CORNER"
        if code not in self.CODE_TYPES.values():
            raise p.error(f"code_type must be CORNER, CENTER_SIZE or CORNER_SIZE, got {code!r}")
        self.code_type = code
        self.var_in_target = p.bool("variance_encoded_in_target", False)
        self.keep_top_k = p.int("keep_top_k", -1)
        self.conf_threshold = p.float("confidence_threshold", -float(np.finfo(np.float32).max))
        n = ParamReader(self.name, self.type, "detection_output_param.nms_param", p.sub("nms_param"))
        self.nms_threshold = n.float("nms_threshold", 0.3)
        self.eta = n.float("eta", 1.0)
        self.top_k = n.int("top_k", -1)
        if self.nms_threshold < 0 or not 0 < self.eta <= 1:
            raise n.error("nms_threshold must be >= 0 and eta in (0, 1]")

    def reshape(self, shapes):
        loc, conf, prior = shapes[:3]
        p = int(np.prod(prior[2:])) // 4 if len(prior) > 2 else 0
        if len(prior) < 3 or prior[1] != 2 or p * 4 != int(np.prod(prior[2:])):
            raise self.error(f"priors must be (1, 2, P * 4), got shape {prior}")
        loc_classes = 1 if self.share_location else self.num_classes
        if int(np.prod(loc[1:])) != p * loc_classes * 4 or int(np.prod(conf[1:])) != p * self.num_classes:
            raise self.error(f"loc {loc} / conf {conf} do not hold {p} priors x {self.num_classes} classes")
        return [(1, 1, 1, 7)]          # the true row count is known after the forward (Caffe's rule)

    def run_forward(self, bottoms):
        loc, conf, prior = (np.asarray(b, np.float64) for b in bottoms[:3])
        n = loc.shape[0]
        p = prior.shape[-1] // 4 if prior.ndim == 3 else int(np.prod(prior.shape[2:])) // 4
        priors, variances = prior.reshape(2, p, 4)
        loc = loc.reshape(n, p, -1, 4)
        conf = conf.reshape(n, p, self.num_classes)
        rows = []
        for i in range(n):
            per_class = {}
            for c in range(self.num_classes):
                if c == self.background:
                    continue
                boxes = _decode(priors, variances, loc[i, :, 0 if self.share_location else c],
                                self.code_type, self.var_in_target)
                per_class[c] = (boxes, nms(boxes, conf[i, :, c], self.conf_threshold, self.nms_threshold,
                                           self.eta, self.top_k))
            total = sum(len(k) for _, k in per_class.values())
            if self.keep_top_k > -1 and total > self.keep_top_k:
                pairs = [(conf[i, j, c], c, j) for c, (_, kept) in per_class.items() for j in kept]
                pairs.sort(key=lambda t: -t[0])
                chosen = {}
                for _, c, j in pairs[:self.keep_top_k]:
                    chosen.setdefault(c, []).append(j)
                per_class = {c: (per_class[c][0], chosen[c]) for c in sorted(chosen)}
            for c, (boxes, kept) in sorted(per_class.items()):
                rows += [[i, c, conf[i, j, c], *boxes[j]] for j in kept]
        if not rows:
            out = np.full((n, 7), -1.0)
            out[:, 0] = np.arange(n)
        else:
            out = np.asarray(rows, np.float64)
        return [out.reshape(1, 1, -1, 7).astype(bottoms[0].dtype)]

    def run_backward(self, top_diffs, bottoms, tops):
        raise self.error("has no backward (SSD's fork implements the forward only; training uses "
                         "MultiBoxLoss on the same bottoms)")
