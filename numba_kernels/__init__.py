"""The six eConv/ePool ops of :mod:`reference`, fast: ``numba_kernels.cpu`` (Numba CPU kernels with
BLAS) and ``numba_kernels.cuda`` (numba.cuda kernels, which also run under the CUDA simulator,
``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported).

Both modules have the reference's signatures and results (within
:data:`reference.tolerance.TOLERANCE`) and serve as :class:`reference.Net` backends
(``backend="numba"`` / ``backend="cuda"``).  The submodules load on first use, so importing this
package needs neither a GPU nor a Numba compile; ``numba_kernels.cuda`` raises ImportError, saying
why, when neither a GPU nor the simulator is available.
"""

from __future__ import annotations

import importlib

__all__ = ["cpu", "cuda"]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
