"""The six reference ops as one namespace: the ``numpy`` backend of :class:`reference.Net`.

Any object with these six functions (same signatures) can serve as a Net backend; ``numba_kernels.cpu``
and ``numba_kernels.cuda`` are the other two.
"""

from .conv import conv2d, conv2d_backward
from .deconv import deconv2d, deconv2d_backward
from .pool import pool2d, pool2d_backward

OP_NAMES = ("conv2d", "conv2d_backward", "deconv2d", "deconv2d_backward", "pool2d", "pool2d_backward")

__all__ = list(OP_NAMES) + ["OP_NAMES", "get_backend"]

BACKEND_MODULES = {"numba": "numba_kernels.cpu", "cuda": "numba_kernels.cuda"}


def get_backend(backend):
    """The op namespace for ``backend``: ``"numpy"`` (this module), ``"numba"``, ``"cuda"``, or any
    object that has the six op functions."""
    import importlib
    import sys

    if not isinstance(backend, str):
        missing = [n for n in OP_NAMES if not callable(getattr(backend, n, None))]
        if missing:
            raise ValueError(f"backend object {backend!r} lacks {', '.join(missing)}")
        return backend
    if backend == "numpy":
        return sys.modules[__name__]
    if backend not in BACKEND_MODULES:
        raise ValueError(f"unknown backend {backend!r}: use 'numpy', 'numba' or 'cuda'")
    try:
        return importlib.import_module(BACKEND_MODULES[backend])
    except ImportError as e:
        raise ValueError(f"backend {backend!r} is not available: {e}") from e
