"""Runtime adapters for ``econv compare``: one module per runtime, one small interface.

Each module ``econv/runtimes/<name>.py`` exposes::

    NAME: str                    # the runtime's name in reports ("opencv", "torch", ...)
    INSTALL_HINT: str            # how to get it, e.g. 'pip install "econv[opencv]"'
    available() -> bool          # True when the runtime can be imported
    run(prototxt_path, weights_path, inputs, want) -> {name: array}

Optional: ``NAMING = "layer" | "blob" | "auto"`` (default "auto"), how its plain names read
(:func:`econv.compare.resolve`); ``"blob@layer"`` keys are unambiguous whatever it says.  compare
calls ``run`` with ``want=None`` (every output).

``run`` executes the Caffe net given by the two files (``weights_path`` a binary caffemodel, or None
for a net without parameters) on ``inputs`` (``{input blob: float32 array}``) and returns every output
it can: ``want`` (the layer names compare asks for, or None) is a hint, not a filter.  The keys are
whatever names the runtime uses (OpenCV: layer names; a full dump may use ``blob@layer``); compare's
resolver (:func:`econv.compare.resolve`) maps them to the oracle's values and reports the ones it
cannot match.

:func:`get_runtime` imports a module lazily and raises :class:`RuntimeMissing` (a ValueError) with
the install hint when the runtime or its adapter is not there.
"""

from __future__ import annotations

import importlib

__all__ = ["RUNTIMES", "RuntimeMissing", "get_runtime"]

# name -> (module, install hint used when the module itself is absent)
RUNTIMES = {
    "opencv": ("econv.runtimes.opencv", 'pip install "econv[opencv]" (opencv-python-headless<5)'),
    "onnxruntime": ("econv.runtimes.onnxruntime", 'pip install "econv[onnx]" (onnx, onnxruntime)'),
    "torch": ("econv.runtimes.torch", "pip install torch (see https://pytorch.org)"),
}


class RuntimeMissing(ValueError):
    """The runtime asked for cannot be used here; the message says how to install it."""


def get_runtime(name: str):
    """The adapter module of runtime ``name`` (see the module docstring)."""
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r} (known: {', '.join(RUNTIMES)})")
    module_name, hint = RUNTIMES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            raise RuntimeMissing(f"runtime {name!r}: its adapter {module_name} is not part of this "
                                 f"econv installation") from None
        raise RuntimeMissing(f"runtime {name!r} needs {e.name}: {hint}") from None
    if not module.available():
        raise RuntimeMissing(f"runtime {name!r} is not installed: {module.INSTALL_HINT}")
    return module
