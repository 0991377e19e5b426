"""The gradient checker: float64 central differences along random directions, the adjoint identity,
and exhaustive per-element differences on tiny shapes, kink-aware for ReLU/max.

For a function ``f`` of named arrays with a hand-written vector-Jacobian product ``vjp``, and a random
cotangent ``c``, the scalar ``L(x) = sum_k <c_k, f_k(x)>`` has gradient ``vjp(x, c)``.  Checks:

- directional: ``(L(x + h t) - L(x - h t)) / 2h  ==  <vjp(x, c), t>`` for random directions ``t``;
- exhaustive (when the inputs have at most ``max_exhaustive`` values): the same along every
  coordinate axis, which catches an error confined to one element;
- adjoint (:func:`check_adjoint`, for maps that are linear in an input, like conv in ``x`` or in
  ``w``): ``<c, A t> == <A^T c, t>`` exactly, with no finite differences at all.

Kinks: where the one-sided differences ``(L(x+h t) - L(x)) / h`` and ``(L(x) - L(x-h t)) / h`` disagree
by more than ``kink_tol`` the segment crosses a non-differentiable point (ReLU at 0, a change of
argmax); that sample is skipped and counted, never silently passed.  A check with too many kinks
fails.

:func:`gradcheck` applies all of this to an op of :mod:`reference.optable`, a layer, or a whole Net.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .tolerance import ADJOINT_RTOL, GRADCHECK_EPS, GRADCHECK_RTOL

__all__ = ["GradcheckReport", "check_function", "check_adjoint", "gradcheck", "unread_tops"]


@dataclass
class GradcheckReport:
    target: str
    rtol: float
    results: list = field(default_factory=list)   # (kind, where, numeric, analytic, error)
    kinks: int = 0
    samples: int = 0

    @property
    def max_error(self) -> float:
        return max((r[4] for r in self.results), default=0.0)

    @property
    def ok(self) -> bool:
        too_many_kinks = self.samples > 0 and self.kinks > max(2, self.samples // 4)
        return bool(self.results) and self.max_error <= self.rtol and not too_many_kinks

    def failures(self):
        return [r for r in self.results if r[4] > self.rtol]

    def __str__(self):
        head = (f"gradcheck {self.target}: {'ok' if self.ok else 'FAILED'}, {len(self.results)} "
                f"checks, max error {self.max_error:.2e} (rtol {self.rtol:g}), {self.kinks} kink "
                f"samples skipped of {self.samples}")
        if not self.results:
            head += "\n  nothing was checked"
        lines = [head] + [f"  {k} {w}: numeric {n:.10g} analytic {a:.10g} error {e:.2e}"
                          for k, w, n, a, e in self.failures()[:20]]
        return "\n".join(lines)

    def assert_ok(self):
        assert self.ok, str(self)
        return self


def _error(numeric, analytic):
    return abs(numeric - analytic) / max(1.0, abs(numeric), abs(analytic))


def check_function(f, vjp, inputs: dict, *, wrt=None, directions: int = 4, exhaustive="auto",
                   max_exhaustive: int = 600, eps: float = GRADCHECK_EPS,
                   rtol: float = GRADCHECK_RTOL, kink_tol: float = 1e-3, seed: int = 0,
                   target: str = "function") -> GradcheckReport:
    """Check ``vjp`` against central differences of ``f`` (see module docstring).

    ``f(inputs) -> list of arrays``; ``vjp(inputs, cotangents) -> {name: gradient}``; ``inputs`` are
    converted to float64; ``wrt`` names the inputs to differentiate (default: all).
    """
    rng = np.random.default_rng(seed)
    x0 = {k: np.array(v, dtype=np.float64) for k, v in inputs.items()}
    wrt = list(wrt if wrt is not None else x0)
    if not wrt:
        raise ValueError(f"{target}: nothing to check: no input to differentiate")
    outs = [np.asarray(o, dtype=np.float64) for o in f(x0)]
    if not outs or all(o.size == 0 for o in outs):
        raise ValueError(f"{target}: nothing to check: the function has no output")
    cot = [rng.normal(size=o.shape) for o in outs]
    grads = vjp({k: v.copy() for k, v in x0.items()}, [c.copy() for c in cot])
    report = GradcheckReport(target, rtol)
    for k in wrt:
        if k not in grads or grads[k] is None:
            raise ValueError(f"{target}: the backward gave no gradient for {k!r}")
        if np.shape(grads[k]) != x0[k].shape:
            raise ValueError(f"{target}: gradient of {k!r} has shape {np.shape(grads[k])}, "
                             f"the input has {x0[k].shape}")

    def outputs(shift: dict, h: float):
        x = {k: (v + h * shift[k] if k in shift else v) for k, v in x0.items()}
        return [np.asarray(o, dtype=np.float64) for o in f(x)]

    def along(a, b) -> float:
        # <c, a - b> computed on the difference, so large constant outputs cancel exactly
        return float(sum(np.sum(c * (p - q)) for c, p, q in zip(cot, a, b)))

    def sample(kind, where, t):
        report.samples += 1
        fp, fm = outputs(t, eps), outputs(t, -eps)
        numeric = along(fp, fm) / (2 * eps)
        if abs(along(fp, outs) / eps - along(outs, fm) / eps) > kink_tol * max(1.0, abs(numeric)):
            report.kinks += 1
            return
        analytic = float(sum(np.sum(np.asarray(grads[k], dtype=np.float64) * t[k]) for k in t))
        report.results.append((kind, where, numeric, analytic, _error(numeric, analytic)))

    for d in range(directions):
        t = {k: rng.normal(size=x0[k].shape) for k in wrt}
        norm = np.sqrt(sum(np.sum(v * v) for v in t.values())) or 1.0
        sample("direction", f"#{d}", {k: v / norm for k, v in t.items()})
    total = sum(x0[k].size for k in wrt)
    if exhaustive is True or (exhaustive == "auto" and total <= max_exhaustive):
        for k in wrt:
            for idx in np.ndindex(x0[k].shape):
                e = np.zeros_like(x0[k])
                e[idx] = 1.0
                sample("element", f"{k}{list(idx)}", {k: e})
    return report


def check_adjoint(apply, adjoint, in_shape, out_shape, *, seed: int = 0, trials: int = 3,
                  rtol: float = ADJOINT_RTOL, target: str = "linear map") -> GradcheckReport:
    """``<c, apply(t)> == <adjoint(c), t>`` for random ``t``, ``c`` (float64), exactly up to rounding."""
    rng = np.random.default_rng(seed)
    report = GradcheckReport(target + " (adjoint)", rtol)
    for i in range(trials):
        t, c = rng.normal(size=in_shape), rng.normal(size=out_shape)
        y = np.asarray(apply(t), dtype=np.float64)
        if y.shape != tuple(out_shape):
            raise ValueError(f"{target}: output shape {y.shape}, expected {tuple(out_shape)}")
        lhs = float(np.sum(c * y))
        rhs = float(np.sum(np.asarray(adjoint(c), dtype=np.float64) * t))
        scale = max(1.0, float(np.sqrt(np.sum(c * c) * np.sum(y * y))))
        report.samples += 1
        report.results.append(("adjoint", f"#{i}", lhs, rhs, abs(lhs - rhs) / scale))
    return report


# ---- targets: an op, a layer, a Net ------------------------------------------------------------

def _op_report(name, impl, arrays, params, **kw):
    from .optable import OPS

    spec = OPS[name]
    f = lambda a: [spec.forward(impl, a, params)]  # noqa: E731
    vjp = lambda a, c: {k[1:]: v for k, v in spec.vjp(impl, a, params, c[0]).items()}  # noqa: E731
    return check_function(f, vjp, arrays, target=f"{name}{params}", **kw)


def _layer_report(spec, bottoms, phase="TEST", seed=0, **kw):
    from .layers import create_layer

    layer = create_layer(spec, phase=phase, dtype=np.float64)
    bottoms = [np.asarray(b, dtype=np.float64) for b in bottoms]
    layer.setup([b.shape for b in bottoms])
    names = [f"bottom{i}" for i in range(len(bottoms))]
    inputs = dict(zip(names, bottoms))
    inputs.update({f"param{i}": b.copy() for i, b in enumerate(layer.blobs)})
    wrt = [n for i, n in enumerate(names) if i not in layer.label_bottoms]
    wrt += [f"param{i}" for i in range(len(layer.blobs)) if layer.lr_mult(i) != 0]

    def run(a):
        for i, blob in enumerate(layer.blobs):
            blob[...] = a[f"param{i}"]
        layer.rng = np.random.default_rng(seed)  # the same dropout mask on every call
        bs = [a[n] for n in names]
        return bs, layer.forward(bs)

    def vjp(a, cot):
        bs, tops = run(a)
        for d in layer.diffs:
            d[...] = 0
        diffs = layer.backward(cot, bs, tops)
        out = {n: d for n, d in zip(names, diffs) if d is not None}
        out.update({f"param{i}": d.copy() for i, d in enumerate(layer.diffs)})
        return out

    return check_function(lambda a: run(a)[1], vjp, inputs, wrt=wrt,
                          target=f"layer {layer.name!r} ({layer.type})", seed=seed, **kw)


def unread_tops(net) -> list:
    """The blobs whose last version no layer reads: a net's outputs, in-place ones included.

    A blob written in place (``relu1: conv1 -> conv1``) is read by its in-place layer, but that
    layer's own top is a new version that nothing reads, so ``conv1`` is an output.  Versions are
    what :class:`reference.Net` records (``_bottom_ids`` / ``_latest``); an older version that is
    overwritten without being read cannot be seeded by ``Net.backward`` and is not listed.
    """
    read = {vid for bids in net._bottom_ids for vid in bids}
    return [name for name, vid in net._latest.items() if vid not in read]


def _net_report(net, inputs, outputs=None, seed=0, **kw):
    if net.dtype != np.float64:
        raise ValueError("gradcheck: build the Net with dtype=np.float64")
    loss_tops = {t for layer in net.layers for t, w in zip(layer.top_names, layer.loss_weights) if w}
    if outputs is None:
        outputs = [b for b in unread_tops(net) if b not in loss_tops]
    else:
        outputs = list(outputs)
        unknown = [b for b in outputs if b not in net._latest]
        if unknown:
            raise ValueError(f"gradcheck: no blob named {', '.join(map(repr, unknown))} in the net")
    if not outputs and not loss_tops:
        raise ValueError("gradcheck: nothing to check: the net has no loss layer and no output blob "
                         "(pass outputs=[blob, ...])")
    has_loss = bool(loss_tops)
    labels = {layer.bottom_names[i] for layer in net.layers for i in layer.label_bottoms
              if i < len(layer.bottom_names)}
    params = {f"{ln}/{i}": blob for ln, blobs in net.params.items() for i, blob in enumerate(blobs)}
    learnable = [f"{layer.name}/{i}" for layer in net.layers for i in range(len(layer.blobs))
                 if layer.lr_mult(i) != 0]
    x0 = {**{k: np.asarray(v, np.float64) for k, v in inputs.items()},
          **{k: v.copy() for k, v in params.items()}}
    wrt = [k for k in inputs if k not in labels] + learnable

    def run(a):
        for k, blob in params.items():
            blob[...] = a[k]
        for layer in net.layers:
            layer.rng = np.random.default_rng(seed)
        blobs = net.forward(**{k: a[k] for k in inputs})
        return [np.asarray(net.loss)] * has_loss + [blobs[b] for b in outputs]

    def vjp(a, cot):
        run(a)
        saved, net.force_backward = net.force_backward, True
        try:
            # the loss tops seed themselves with their weight; scale by the loss cotangent instead
            seeds = {b: c for b, c in zip(outputs, cot[has_loss:])}
            loss_cot = float(cot[0]) if has_loss else 0.0
            for layer in net.layers:
                for t, w in zip(layer.top_names, layer.loss_weights):
                    if w:
                        seeds[t] = seeds.get(t, 0) + (loss_cot - 1.0) * w
            diffs = net.backward({b: np.broadcast_to(s, net._values[net._latest[b]].shape)
                                  for b, s in seeds.items()})
        finally:
            net.force_backward = saved
        out = {k: diffs[k] for k in inputs}
        out.update({f"{ln}/{i}": d.copy() for ln, ds in net.param_diffs.items()
                    for i, d in enumerate(ds)})
        return out

    return check_function(run, vjp, x0, wrt=wrt, target=f"net {net.name or ''}".strip(),
                          seed=seed, **kw)


def gradcheck(target, *args, impl=None, **kw) -> GradcheckReport:
    """Check the gradients of an op, a layer or a whole Net in float64.

    - ``gradcheck("conv2d", x=x, w=w, b=b, stride=2, pad=1, est=2)`` (an op name of
      :data:`reference.optable.OPS`; ``impl`` = the implementation, default the reference);
    - ``gradcheck(layer_dict, [bottom arrays], phase="TEST")``;
    - ``gradcheck(net, {input: array}, outputs=None)`` (a Net built with ``dtype=np.float64``;
      checks the loss and the output blobs w.r.t. the inputs and every learnable parameter;
      ``outputs=None`` means every blob whose last version no layer reads, in-place tops included,
      see :func:`unread_tops`).  Raises ``ValueError`` when there is nothing to check (no loss
      layer and no output, or nothing to differentiate): a check of nothing is never a pass.

    Options of :func:`check_function` (``directions``, ``exhaustive``, ``rtol``, ...) pass through.
    Returns a :class:`GradcheckReport`; call ``.assert_ok()`` in tests.
    """
    from .net import Net

    if isinstance(target, str):
        from . import ops as reference_ops
        from .optable import OPS

        if target not in OPS:
            raise ValueError(f"gradcheck: unknown op {target!r} (known: {', '.join(OPS)})")
        spec = OPS[target]
        arrays = {k: kw.pop(k) for k in spec.arrays if k in kw}
        params = {k: kw.pop(k) for k in list(kw) if k in spec.params}
        return _op_report(target, impl or reference_ops, arrays, params, **kw)
    if isinstance(target, Net):
        return _net_report(target, *args, **kw)
    if isinstance(target, dict):
        return _layer_report(target, *args, **kw)
    raise ValueError(f"gradcheck: target must be an op name, a layer dict or a Net, got "
                     f"{type(target).__name__}")
