"""``verify(impl)``: check any implementation of the six ops against the reference.

``impl`` is any object with some of ``conv2d``, ``conv2d_backward``, ``deconv2d``, ``deconv2d_backward``,
``pool2d``, ``pool2d_backward`` (a module such as ``numba_kernels.cpu``, or a small adapter around
another framework; same signatures as :mod:`reference.ops`).  Every case of the op table
(:func:`reference.optable.table`: the named hard cases, then random ones) runs through both, in
float32 and float64; the forward output ``y`` and every gradient (``dx``, ``dw``, ``db``) of the
cotangent ``dy`` are compared with the true value for the same inputs, the reference computed in
float64 on the case's inputs rounded to the dtype (so a float32 implementation is judged against the
exact answer, not against another float32 computation's rounding):

    error = max |impl - reference| / max(1, max |reference|)   <=   tolerance(dtype)

(:mod:`reference.tolerance`: 1e-5 for float32, 1e-10 for float64).  A wrong shape or dtype, or an
exception, fails the output; ``NotImplementedError`` instead marks the case *unsupported* (the
implementation declares it out of its scope: listed, not failed).

    >>> import reference.ops
    >>> report = verify(reference.ops, ops=["pool2d"], count=2)
    >>> report.ok
    True
    >>> print(report)                                     # doctest: +ELLIPSIS
    verify: ok: ... outputs compared (... cases x 2 dtypes), 0 failed, 0 unsupported; worst error ...

Cases whose expected values rest on an econv convention rather than on Caffe's value (an AVE window
with no tap, :data:`reference.pool.EMPTY_AVE_WINDOW`) are named on a last line, ``econv convention:
... (cases)``, and under the case when it fails.

A failing report lists each failing case with its op, parameters and note, then one line per output:

    FAILED pool2d_hard_tie_overlap (pool2d: kernel 2x2, stride 1x1, ..., mode max; x 1x2x5x6)
        MAX ties: the first maximum in row-major tap order ...
        dx [float32]: error 2.7e+00 > tolerance 1e-05 (at [0, 0, 1, 3])
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from . import ops as reference_ops
from .optable import OPS, OpCase, table
from .tolerance import max_rel_err, tolerance

__all__ = ["verify", "VerifyReport", "Failure", "explain", "case_layer"]


@dataclass
class Failure:
    """One output of one case (in one dtype) that differs from the reference, or could not be made."""
    case: str
    op: str                  # conv2d, deconv2d or pool2d
    function: str            # the function that produced the output, e.g. "pool2d_backward"
    dtype: str
    output: str              # y, dx, dw, db
    error: float             # max relative error (inf for a wrong shape, dtype, or an exception)
    tolerance: float
    message: str = ""        # what went wrong, when it is not a plain numerical difference
    params: dict = field(default_factory=dict)
    note: str = ""           # the hard case's note: the rule it tests
    got: object = field(default=None, repr=False, compare=False)   # impl's output, when it made one

    def __str__(self):
        what = self.message or (f"error {self.error:.2e} > tolerance {self.tolerance:g}")
        return f"{self.output} [{self.dtype}]: {what}"


@dataclass
class VerifyReport:
    """What :func:`verify` found: ``ok``, the ``failures``, the ``unsupported`` cases, and ``rows``
    ``(case, dtype, output, error, tolerance)`` for every output that was compared."""
    rows: list = field(default_factory=list)
    failures: list = field(default_factory=list)       # Failure
    unsupported: list = field(default_factory=list)    # (case, op, dtype, function, reason)
    cases: dict = field(default_factory=dict)          # case name -> OpCase (float64), for printing

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.failures

    @property
    def failed_cases(self) -> list:
        """Names of the cases with at least one failure, in table order."""
        return list(dict.fromkeys(f.case for f in self.failures))

    @property
    def max_error(self) -> dict:
        """Worst error per dtype over the outputs that were compared."""
        worst = {}
        for _, dtype, _, e, _ in self.rows:
            worst[dtype] = max(worst.get(dtype, 0.0), e)
        return worst

    @property
    def conventions(self) -> dict:
        """``{convention: [case names]}``: the econv conventions (where econv's expected value is not
        Caffe's, e.g. :data:`reference.pool.EMPTY_AVE_WINDOW`) that the compared cases rest on."""
        found = defaultdict(list)
        for name, case in self.cases.items():
            if case.convention:
                found[case.convention].append(name)
        return dict(found)

    def __str__(self, limit: int = 40):
        dtypes = sorted({r[1] for r in self.rows} | {f.dtype for f in self.failures})
        n_cases = len({r[0] for r in self.rows} | {f.case for f in self.failures})
        worst = ", ".join(f"{d} {e:.1e}" for d, e in sorted(self.max_error.items()))
        lines = [f"verify: {'ok' if self.ok else 'FAILED'}: {len(self.rows)} outputs compared "
                 f"({n_cases} cases x {len(dtypes)} dtypes), {len(self.failures)} failed, "
                 f"{len({u[0] for u in self.unsupported})} unsupported; worst error {worst or '-'}"]
        by_case = defaultdict(list)
        for f in self.failures:
            by_case[f.case].append(f)
        found = explain(self) if self.cases else {}
        for name in self.failed_cases[:limit]:
            first = by_case[name][0]
            lines.append(f"  FAILED {name} ({describe(first.op, first.params, self.cases.get(name))})")
            if first.note:
                lines.append(f"      {first.note}")
            if self.cases.get(name) is not None and self.cases[name].convention:
                lines.append(f"      {self.cases[name].convention}")
            if found.get(name) is not None:
                lines.append(f"      the catalogue (reference.conventions): {found[name].words}")
            lines += [f"      {f}" for f in by_case[name]]
        if len(self.failed_cases) > limit:
            lines.append(f"  ... and {len(self.failed_cases) - limit} more failing cases")
        reasons = defaultdict(dict)    # reason -> {case name: [functions]}
        for name, _, _, function, reason in self.unsupported:
            functions = reasons[reason].setdefault(name, [])
            if function not in functions:
                functions.append(function)
        for reason, found in reasons.items():
            names = list(found)
            functions = ", ".join(dict.fromkeys(f for fs in found.values() for f in fs))
            shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
            lines.append(f"  unsupported ({functions}): {reason}: {shown}")
        for text, names in self.conventions.items():
            shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
            lines.append(f"  {text}: {len(names)} case{'s' * (len(names) > 1)} ({shown})")
        return "\n".join(lines)


def describe(op: str, params: dict, case: OpCase | None = None) -> str:
    """``"pool2d: kernel 3x3, stride 2x2, ...; x 1x1x4x4"``: an op's parameters on one line."""
    parts = [f"{k} {'x'.join(map(str, v))}" if isinstance(v, tuple) else f"{k} {v}"
             for k, v in params.items()]
    text = f"{op}: " + ", ".join(parts)
    if case is not None:
        text += "; " + ", ".join(f"{k} {'x'.join(map(str, a.shape))}" for k, a in case.arrays.items())
    return text


def _functions(impl, ops) -> dict:
    """``{op: (check forward?, check backward?)}``.  ``ops`` names ops (``"pool2d"``: forward and
    backward) or single functions (``"pool2d_backward"``); default: every op.  Only the functions
    ``impl`` has are checked; an op named in ``ops`` that ``impl`` lacks entirely is a ValueError."""
    found = {}
    for name in (list(OPS) if ops is None else ops):
        op = name.removesuffix("_backward")
        if op not in OPS:
            raise ValueError(f"unknown op {name!r} (known: {', '.join(OPS)} and their _backward)")
        fwd = name == op and callable(getattr(impl, op, None))
        bwd = callable(getattr(impl, OPS[op].backward_name, None))
        if not (fwd or bwd):
            if ops is not None:
                raise ValueError(f"impl has no {name}")
            continue
        before = found.get(op, (False, False))
        found[op] = (before[0] or fwd, before[1] or bwd)
    return found


def _location(value, ref) -> str:
    diff = np.abs(np.asarray(value, dtype=np.float64) - ref)
    return str([int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape)]) if diff.size else "-"


def verify(impl, ops=None, dtypes=("float32", "float64"), cases=None, *, count: int = 12, seed: int = 0,
           big: bool = False, to_numpy=np.asarray) -> VerifyReport:
    """Compare ``impl`` with the reference (see module docstring).

    ``ops``: op names (``"conv2d"``: forward and backward) or function names to check; default every
    function ``impl`` has.  ``cases``: a list of :class:`reference.optable.OpCase` to run instead of
    the op table (``table(count=count, seed=seed, big=big)``).  ``to_numpy`` converts ``impl``'s
    results (e.g. device arrays) to NumPy.
    """
    functions = _functions(impl, ops)
    if cases is None:
        cases = table(count=count, seed=seed, big=big)
    report = VerifyReport()
    for case in cases:
        if case.op not in functions:
            continue
        report.cases[case.name] = case
        check_fwd, check_bwd = functions[case.op]
        spec = OPS[case.op]
        for dtype in dtypes:
            c = case.astype(dtype)
            exact = c.astype(np.float64)    # the same (dtype-rounded) inputs, exactly, in float64
            dname = np.dtype(dtype).name

            def fail(function, output, error, message="", got=None):
                report.failures.append(Failure(c.name, c.op, function, dname, output, error,
                                               tolerance(dtype), message, c.params, c.note, got))

            steps = []
            if check_fwd:
                steps.append((spec.name, lambda ops_, k: {"y": spec.forward(ops_, k.arrays, k.params)}))
            if check_bwd:
                steps.append((spec.backward_name, lambda ops_, k: spec.vjp(ops_, k.arrays, k.params, k.dy)))
            for function, run in steps:
                # the expectation is the true value for these inputs: the reference in float64,
                # never the reference in the impl's dtype (that would judge agreement with rounding)
                expected = run(reference_ops, exact)
                try:
                    got = run(impl, c)
                except NotImplementedError as e:
                    report.unsupported.append((c.name, c.op, dname, function, str(e) or "not implemented"))
                    continue
                except Exception as e:  # noqa: BLE001 - reported, not hidden
                    for out in expected:
                        fail(function, out, float("inf"), f"raised {type(e).__name__}: {e}")
                    continue
                for out, ref in expected.items():
                    if got.get(out) is None:
                        fail(function, out, float("inf"), "missing (None)")
                        continue
                    value = np.asarray(to_numpy(got[out]))
                    if value.shape != ref.shape:
                        fail(function, out, float("inf"), f"shape {value.shape}, expected {ref.shape}",
                             value)
                    elif value.dtype != c.arrays["x"].dtype:
                        fail(function, out, float("inf"), f"dtype {value.dtype}, expected {dname}")
                    else:
                        err, tol = max_rel_err(value, ref), tolerance(dtype)
                        report.rows.append((c.name, dname, out, err, tol))
                        if not err <= tol:   # NaN fails too
                            fail(function, out, err, f"error {err:.2e} > tolerance {tol:g} "
                                                     f"(at {_location(value, ref)})", value)
    return report


def case_layer(case: OpCase):
    """``(layer spec, parameter blobs, bottoms)``: an op-table case as the Caffe layer it is (Pooling,
    Convolution or Deconvolution), for :mod:`reference.conventions`."""
    p, a = case.params, case.arrays
    hw = lambda name, v: {f"{name}_h": int(v[0]), f"{name}_w": int(v[1])}  # noqa: E731
    spec = {"name": case.name, "type": "", "bottom": ["x"], "top": ["y"]}
    if case.op == "pool2d":
        param = {"pool": p["mode"].upper(), **hw("kernel", p["kernel"]), **hw("stride", p["stride"]),
                 **hw("pad", p["pad"]), "round_mode": p["round_mode"].upper()}
        if tuple(p["est"]) != (1, 1):
            param["est"] = list(p["est"])
        if tuple(p["pad_end"]) != (0, 0):
            param["pad_end"] = list(p["pad_end"])
        return {**spec, "type": "Pooling", "pooling_param": param}, [], [a["x"]]
    w, b = a["w"], a.get("b")
    group = int(p["group"])
    kind = "Convolution" if case.op == "conv2d" else "Deconvolution"
    num_output = w.shape[0] if case.op == "conv2d" else w.shape[1] * group
    param = {"num_output": int(num_output), **hw("kernel", w.shape[2:]), **hw("stride", p["stride"]),
             **hw("pad", p["pad"]), "dilation": [int(e) for e in p["est"]], "group": group,
             "bias_term": b is not None}
    return {**spec, "type": kind, "convolution_param": param}, [w] + ([b] if b is not None else []), \
        [a["x"]]


def explain(report: VerifyReport) -> dict:
    """``{case name: reference.conventions.Explanation or None}`` for every failing case: the
    catalogue's alternative (a convention knob read another way) that reproduces the implementation's
    forward output ``y``, to the failure's tolerance; None when none does or no ``y`` was made."""
    from .conventions import explain as explain_layer

    found = {}
    for f in report.failures:
        if f.case in found and found[f.case] is not None:
            continue
        found.setdefault(f.case, None)
        if f.output != "y" or f.got is None:
            continue
        spec, blobs, bottoms = case_layer(report.cases[f.case].astype(f.dtype))
        found[f.case] = explain_layer(spec, blobs, bottoms, f.got, f.tolerance)
    return found
