"""``verify(impl)``: check any implementation of the six ops against the reference.

``impl`` is any object with some of ``conv2d``, ``conv2d_backward``, ``deconv2d``, ``deconv2d_backward``,
``pool2d``, ``pool2d_backward`` (a module such as ``numba_kernels.cpu``, or a small adapter around
another framework).  Every case of :func:`reference.optable.cases` runs through both, in float32
and float64, and each output is compared with :func:`reference.tolerance.max_rel_err` against the
dtype's tolerance.  The reference side never calls ``impl``.

    report = verify(my_backend)
    print(report)      # one line per failing case: op, case, output, error
    assert report.ok
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ops as reference_ops
from .optable import OPS, cases
from .tolerance import max_rel_err, tolerance

__all__ = ["verify", "VerifyReport"]


@dataclass
class VerifyReport:
    rows: list = field(default_factory=list)   # (case name, dtype, output, error, tolerance)
    errors: list = field(default_factory=list)  # (case name, dtype, exception text)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and not self.errors and all(e <= t for _, _, _, e, t in self.rows)

    @property
    def max_error(self) -> dict:
        worst = {}
        for _, dtype, _, e, _ in self.rows:
            worst[dtype] = max(worst.get(dtype, 0.0), e)
        return worst

    def __str__(self):
        bad = [r for r in self.rows if r[3] > r[4]]
        lines = [f"verify: {'ok' if self.ok else 'FAILED'}: {len(self.rows)} outputs compared, "
                 f"{len(bad)} beyond tolerance, {len(self.errors)} raised; worst "
                 + ", ".join(f"{d} {e:.2e}" for d, e in sorted(self.max_error.items()))]
        lines += [f"  {n} [{d}] {o}: error {e:.3e} > {t:g}" for n, d, o, e, t in bad[:30]]
        lines += [f"  {n} [{d}] raised: {msg}" for n, d, msg in self.errors[:30]]
        return "\n".join(lines)




def verify(impl, ops=None, count: int = 12, seed: int = 0, dtypes=(np.float32, np.float64),
           big: bool = False, to_numpy=np.asarray) -> VerifyReport:
    """Compare ``impl`` with the reference on the op table's cases (see module docstring).

    ``ops`` limits the check to some op names (forward and backward are checked for each);
    ``to_numpy`` converts ``impl``'s results (e.g. device arrays) to NumPy.
    """
    names = list(ops) if ops is not None else [n for n in OPS if callable(getattr(impl, n, None))]
    report = VerifyReport()
    for name in names:
        spec = OPS[name]
        has_backward = callable(getattr(impl, spec.backward_name, None))
        for case in cases(name, count=count, seed=seed, big=big):
            for dtype in dtypes:
                c = case.astype(dtype)
                dname = np.dtype(dtype).name
                expected = {"y": spec.forward(reference_ops, c.arrays, c.params)}
                if has_backward:
                    expected.update(spec.vjp(reference_ops, c.arrays, c.params, c.dy))
                try:
                    got = {"y": spec.forward(impl, c.arrays, c.params)}
                    if has_backward:
                        got.update(spec.vjp(impl, c.arrays, c.params, c.dy))
                except Exception as e:  # noqa: BLE001 - reported, not hidden
                    report.errors.append((c.name, dname, f"{type(e).__name__}: {e}"))
                    continue
                for out, ref in expected.items():
                    value = np.asarray(to_numpy(got[out]))
                    if value.dtype != ref.dtype:
                        report.errors.append((c.name, dname, f"{out} has dtype {value.dtype}, "
                                                             f"expected {ref.dtype}"))
                        continue
                    report.rows.append((c.name, dname, out, max_rel_err(value, ref),
                                        tolerance(dtype)))
    return report
