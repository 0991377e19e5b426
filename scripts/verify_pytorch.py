"""Worked example: check PyTorch's conv2d, conv_transpose2d, max_pool2d and avg_pool2d against the
econv reference with ``reference.oracle.verify``, and explain every difference it finds.

    python scripts/verify_pytorch.py [--count N] [--seed S] [--ops conv2d pool2d ...]

:class:`TorchOps` is the whole adapter.  It has the six econv functions; backward is autograd's
vector-Jacobian product with the case's ``dy``.  It maps each parameter onto PyTorch directly:

- ``est`` becomes ``dilation``;
- ``round_mode="ceil"`` becomes ``ceil_mode=True``;
- AVE becomes ``avg_pool2d(count_include_pad=True)``;
- deconv2d becomes ``conv_transpose2d`` (the same weight layout: in, out/groups, kh, kw).

Two things have no PyTorch spelling, so the adapter raises ``NotImplementedError`` for them, and
verify lists those cases as *unsupported*:

- ``pad_end``;
- average pooling with est > 1.

Everything else goes to PyTorch as it is, so PyTorch's own rules show up as failures.
:func:`explain` sorts each failure under one of the :data:`DIFFERENCES`, each a known, documented
difference between PyTorch and Caffe: the value differences through econv's catalogue of convention
knobs (:mod:`reference.conventions`: the alternative that reproduces PyTorch's output names the knob),
the refusals through :data:`LIMITS`.  A failure that fits none of them is *unexplained*, and then
the script exits with status 1.

What it finds (PyTorch 2.x, CPU, the default table: 17 hard and 36 random cases, float32 and
float64):

- conv2d, deconv2d: every case agrees with the reference to float rounding.  That covers est > 1,
  groups, rectangular kernels, strides and padding, in both forward and backward.
- pool2d agrees on:
  - MAX and AVE with ceil and floor, including the ceil windows that hang over the padded input;
  - the AVE divisor at the border (both count padding and not the overhang past H + p);
  - MAX ties (PyTorch's CPU kernel also keeps the first maximum);
  - padding never winning a maximum.
- :data:`DIFFERENCES` lists what it does not agree on, with the reasons.

NaN is not in the table.  PyTorch's max pooling propagates a NaN; Caffe's strict ``>`` never picks
one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import reference  # noqa: F401
except ImportError:   # run from a checkout: python scripts/verify_pytorch.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference.optable import OPS, table             # noqa: E402
from reference.oracle import describe, verify        # noqa: E402
from reference.oracle import explain as explain_cases  # noqa: E402
from reference.sizes import pair                     # noqa: E402


class TorchOps:
    """The six econv op functions, computed by PyTorch (forward) and autograd (backward)."""

    def __init__(self):
        import torch
        import torch.nn.functional as F

        self.torch, self.F = torch, F

    def _tensor(self, a, grad=False):
        return None if a is None else self.torch.from_numpy(np.ascontiguousarray(a)).requires_grad_(grad)

    def _vjp(self, y, inputs, dy):
        grads = self.torch.autograd.grad(y, inputs, self._tensor(dy))
        return [g.numpy() for g in grads]

    # ---- convolution: F.conv2d(x, w, b, stride, padding, dilation, groups) --------------------
    def conv2d(self, x, w, b=None, stride=1, pad=0, est=1, group=1):
        t = self._tensor
        return self.F.conv2d(t(x), t(w), t(b), stride, pad, est, group).detach().numpy()

    def conv2d_backward(self, dy, x, w, stride=1, pad=0, est=1, group=1, bias=True):
        return self._linear_backward(self.F.conv2d, w.shape[0], dy, x, w, stride, pad, est, group, bias)

    # ---- deconvolution: F.conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation)
    def deconv2d(self, x, w, b=None, stride=1, pad=0, est=1, group=1):
        t = self._tensor
        return self.F.conv_transpose2d(t(x), t(w), t(b), stride, pad, 0, group, est).detach().numpy()

    def deconv2d_backward(self, dy, x, w, stride=1, pad=0, est=1, group=1, bias=True):
        def transpose(x_, w_, b_, s, p, d, g):
            return self.F.conv_transpose2d(x_, w_, b_, s, p, 0, g, d)
        return self._linear_backward(transpose, w.shape[1] * group, dy, x, w, stride, pad, est, group, bias)

    def _linear_backward(self, op, c_out, dy, x, w, stride, pad, est, group, bias):
        xt, wt = self._tensor(x, True), self._tensor(w, True)
        bt = self.torch.zeros(c_out, dtype=xt.dtype, requires_grad=True) if bias else None
        y = op(xt, wt, bt, stride, pad, est, group)
        grads = self._vjp(y, [xt, wt] + ([bt] if bias else []), dy)
        return grads[0], grads[1], grads[2] if bias else None

    # ---- pooling: F.max_pool2d(x, k, s, p, dilation, ceil_mode), F.avg_pool2d(x, k, s, p, ceil_mode)
    def _pool(self, x, kernel, stride, pad, est, mode, round_mode, pad_end):
        if pair(pad_end, "pad_end") != (0, 0):
            raise NotImplementedError("PyTorch pooling has no pad_end (absent positions after the "
                                      "bottom/right padding)")
        ceil = round_mode == "ceil"
        if mode == "max":
            return self.F.max_pool2d(x, kernel, stride, pad, est, ceil_mode=ceil)
        if pair(est, "est") != (1, 1):
            raise NotImplementedError("PyTorch's avg_pool2d has no dilation: no AVE pooling with est > 1")
        return self.F.avg_pool2d(x, kernel, stride, pad, ceil_mode=ceil, count_include_pad=True)

    def pool2d(self, x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0):
        y = self._pool(self._tensor(x), kernel, stride, pad, est, mode, round_mode, pad_end)
        return y.detach().numpy()

    def pool2d_backward(self, dy, x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil",
                        pad_end=0):
        xt = self._tensor(x, True)
        return self._vjp(self._pool(xt, kernel, stride, pad, est, mode, round_mode, pad_end), [xt], dy)[0]


# ---- the known differences, and which failure each one explains ----------------------------------
#
# A value difference is explained by econv's one catalogue of convention knobs
# (reference.conventions, through reference.oracle.explain): the alternative that reproduces PyTorch's
# forward output names the knob.  Only the knobs PyTorch documents as its own rule are *known*
# differences; any other knob (a floor where Caffe ceils, say) would be a real mistake and stays
# unexplained.  A refusal (PyTorch raising on parameters Caffe accepts) is no value convention: the
# LIMITS below name those.

def pad_over_half_the_kernel(case) -> bool:
    p = case.params
    return case.op == "pool2d" and any(pd > k // 2 for pd, k in zip(p["pad"], p["kernel"]))


KNOWN = {   # catalogue alternative key -> (difference, why)
    "Pooling.clip=always": (
        "ceil clip rule",
        "Caffe's ceil rounding drops a last window that starts at or past the image end "
        "((out - 1) * s >= H + p) only when the layer has padding (pooling_layer.cpp: `if (pad_h_ || "
        "pad_w_)`).  PyTorch applies the same test always.  So without padding, Caffe keeps a window "
        "that lies wholly past the image: -FLT_MAX in MAX, 0 in AVE, no gradient (Caffe issue #6881).  "
        "PyTorch drops it, giving one output row or column fewer.  The backward then fails on the "
        "shape of dy.  With padding, both frameworks give the same sizes, even when a window hangs "
        "over the padded input."),
}

LIMITS = {
    "pad > kernel / 2": (
        lambda case, failure: pad_over_half_the_kernel(case) and "pad should be" in failure.message,
        "PyTorch's pooling rejects pad > kernel_size / 2 (measured on the undilated kernel).  Caffe "
        "only needs pad < kernel, and econv needs pad < est * (kernel - 1) + 1."),
}

DIFFERENCES = {name: why for name, why in KNOWN.values()} | {k: v[1] for k, v in LIMITS.items()}


def explain(report):
    """``(explained, unexplained)``: ``{difference: [case names]}`` and ``[Failure]``.  Every failure
    of a case (its backward too) follows the catalogue's explanation of the case's forward output."""
    by_case = explain_cases(report)
    explained = {name: [] for name in DIFFERENCES}
    unexplained = []
    for f in report.failures:
        found = by_case.get(f.case)
        name = KNOWN[found.key][0] if found is not None and found.key in KNOWN else None
        if name is None:
            case = report.cases[f.case]
            name = next((n for n, (matches, _) in LIMITS.items() if matches(case, f)), None)
        if name is None:
            unexplained.append(f)
        elif f.case not in explained[name]:
            explained[name].append(f.case)
    return {k: v for k, v in explained.items() if v}, unexplained


def _cases(names) -> str:
    return f"{len(names)} case{'s' if len(names) != 1 else ''}"


def summary(report) -> str:
    """The verify report, then each difference with its explanation and its cases."""
    explained, unexplained = explain(report)
    lines = [str(report), "", "Differences from Caffe/econv, explained:"]
    for name, names in explained.items():
        lines.append(f"- {name} ({_cases(names)}): {DIFFERENCES[name]}")
        lines += [f"    {n}  ({describe('pool2d', report.cases[n].params)})" for n in names[:8]]
    reasons = {}
    for name, _, _, _, reason in report.unsupported:
        reasons.setdefault(reason, [])
        if name not in reasons[reason]:
            reasons[reason].append(name)
    for reason, names in reasons.items():
        lines.append(f"- not expressible in PyTorch ({_cases(names)}): {reason}.")
        lines += [f"    {n}" for n in names[:8]]
    if unexplained:
        lines.append(f"UNEXPLAINED ({len(unexplained)} outputs):")
        lines += [f"    {f.case} {f}" for f in unexplained[:20]]
    failing_ops = {report.cases[n].op for n in report.failed_cases}
    agree = [op for op in OPS if op in {c.op for c in report.cases.values()} and op not in failing_ops]
    lines.append(f"Agree on every case: {', '.join(agree) or 'none'}; worst error "
                 + ", ".join(f"{d} {e:.1e}" for d, e in sorted(report.max_error.items())))
    return "\n".join(lines)


def run(cases=None, ops=None, count=12, seed=0):
    """verify PyTorch; returns ``(report, explained, unexplained)``."""
    report = verify(TorchOps(), ops=ops, cases=cases if cases is not None else table(count=count, seed=seed))
    return (report,) + explain(report)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=12, help="random cases per op (default 12)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ops", nargs="+", choices=list(OPS), help="ops to check (default all)")
    args = parser.parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("verify_pytorch: PyTorch is not installed (pip install econv[bench])", file=sys.stderr)
        return 2
    report, _, unexplained = run(ops=args.ops, count=args.count, seed=args.seed)
    print(summary(report))
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
