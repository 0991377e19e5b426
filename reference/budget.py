"""The byte budget: how much memory a net's declared sizes, or a weights file, may ask for.

A prototxt declaring ``num_output: 2147483647`` or an HDF5 dataset declaring 2^31 floats must
give a clear ValueError naming what asked and how much, not a MemoryError or an out-of-memory
kill.  One number bounds every such request:

    max_bytes()                 # ECONV_MAX_BYTES if set (an integer, "4e9", or "8GiB"), else 4 GiB
    with limit(1 << 20):        # a tighter (or looser) budget for a block
        Net(layers)

``check(nbytes, what)`` raises ``ValueError(f"{what}: needs {nbytes} bytes, more than the budget
...")`` when ``nbytes`` is over it.  ``reference.Net(..., max_bytes=n)`` applies ``limit(n)`` while
it builds; ``caffe_import``'s HDF5 reader checks every dataset against the same budget before
reading it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re

__all__ = ["DEFAULT_MAX_BYTES", "ENV_VAR", "max_bytes", "limit", "check", "parse_bytes"]

DEFAULT_MAX_BYTES = 4 << 30
ENV_VAR = "ECONV_MAX_BYTES"
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_override: contextvars.ContextVar = contextvars.ContextVar("econv_max_bytes", default=None)


def parse_bytes(text: str) -> int:
    """``"4096"``, ``"4e9"``, ``"512MiB"``, ``"2 GB"`` -> a positive number of bytes, or ValueError."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"{ENV_VAR}={text!r}: expected a byte count such as 4000000000, 4e9 or 4GiB")
    value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    if value <= 0:
        raise ValueError(f"{ENV_VAR}={text!r}: the budget must be positive")
    return value


def max_bytes() -> int:
    """The budget in force: ``limit``'s, else ``$ECONV_MAX_BYTES``, else :data:`DEFAULT_MAX_BYTES`."""
    value = _override.get()
    if value is not None:
        return value
    env = os.environ.get(ENV_VAR)
    return parse_bytes(env) if env else DEFAULT_MAX_BYTES


@contextlib.contextmanager
def limit(nbytes):
    """Use ``nbytes`` (an int or a string such as "512MiB"; None: leave the budget as it is) as
    the budget inside the block."""
    if nbytes is None:
        yield
        return
    nbytes = parse_bytes(nbytes) if isinstance(nbytes, str) else int(nbytes)
    if nbytes <= 0:
        raise ValueError(f"max_bytes must be positive, got {nbytes}")
    token = _override.set(nbytes)
    try:
        yield
    finally:
        _override.reset(token)


def check(nbytes: int, what: str) -> None:
    """ValueError naming ``what`` and ``nbytes`` when ``nbytes`` exceeds :func:`max_bytes`."""
    budget = max_bytes()
    if nbytes > budget:
        raise ValueError(f"{what}: needs {nbytes} bytes ({nbytes / 2**30:.3g} GiB), more than the "
                         f"budget of {budget} bytes (raise it with {ENV_VAR} or max_bytes=)")
