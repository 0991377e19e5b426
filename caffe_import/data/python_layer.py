"""``Python`` layers: ``python_param { module, layer, param_str }`` run through a pycaffe shim.

Caffe imports ``module`` from the Python path and instantiates its class ``layer``
(``src/caffe/layer_factory.cpp``, ``GetPythonLayer``), then drives it as
``include/caffe/layers/python_layer.hpp`` (BVLC/caffe 9b89154) lines 19-47 do: ``param_str`` and
``phase`` (0 TRAIN, 1 TEST) set, ``setup`` once, ``reshape`` before each forward, ``forward``,
``backward(top, propagate_down, bottom)``.  Here the module is imported from ``sys.path`` with
``caffe`` bound to :mod:`caffe_import.data.pycaffe` during the import (so ``import caffe`` and
``class X(caffe.Layer)`` work without pycaffe); blobs are :class:`~caffe_import.data.pycaffe.Blob`
objects in the Net's dtype.  The first shape request calls ``setup`` then ``reshape``; every later
one (the Net asks before each forward) calls ``reshape``.  Not supported: parameter blobs
(``self.blobs``) of a Python layer.

A module that cannot be imported is a ValueError saying so, with the next option: a deploy file,
or (for a data layer: no bottoms) the ``input_shapes`` override that replaces its tops by Inputs.

Worked example: FCN's ``voc_layers.VOCSegDataLayer`` reads ``param_str`` ("{'voc_dir': ..., 'split':
'val', 'mean': (104, 117, 123)}"), loads image ``idx`` in ``reshape`` (tops (1, 3, H, W) and
(1, 1, H, W)) and copies it in ``forward``.
"""

from __future__ import annotations

import importlib
import inspect
import sys

import numpy as np

from reference.layers.base import register, Layer

from . import pycaffe
from .base import go_on_hint


def import_layer_module(name: str):
    """Import ``name`` from sys.path with ``caffe`` bound to the pycaffe shim during the import."""
    saved = sys.modules.get("caffe")
    sys.modules["caffe"] = pycaffe
    try:
        return importlib.import_module(name)
    finally:
        if saved is None:
            sys.modules.pop("caffe", None)
        else:
            sys.modules["caffe"] = saved


@register
class Python(Layer):
    type = "Python"
    n_bottom = (0, None)
    n_top = (0, None)
    is_data = True          # runs user code at setup: the loader's pre-flight check does not build it

    def configure(self):
        p = self.param("python_param")
        module, cls_name = p.scalar("module"), p.scalar("layer")
        if not module or not cls_name:
            raise p.error("module and layer are required")
        self.param_str = str(p.scalar("param_str") or "")
        try:
            mod = import_layer_module(str(module))
        except ImportError as e:
            raise self.error(f"cannot import the Python layer module {module!r} ({e}); Caffe loads it "
                             f"from the Python path: add its folder to PYTHONPATH; {self._next_option()}"
                             ) from None
        cls = getattr(mod, str(cls_name), None)
        if not isinstance(cls, type):
            raise self.error(f"module {module!r} ({getattr(mod, '__file__', '?')}) has no class "
                             f"{cls_name!r}; {self._next_option()}")
        self.py = cls(self.spec) if _wants_argument(cls) else cls()
        self.py.param_str = self.param_str
        self.py.phase = pycaffe.TRAIN if self.phase == "TRAIN" else pycaffe.TEST
        self.bottom_blobs = [pycaffe.Blob((), self.dtype) for _ in self.bottom_names]
        self.top_blobs = [pycaffe.Blob((), self.dtype) for _ in self.top_names]
        self._set_up = False

    def _next_option(self) -> str:
        if not self.bottom_names:
            return go_on_hint(self.spec)
        return ("its computation happens in Python, so the net cannot run without the module "
                "(use a deploy file without this layer if there is one)")

    def _call(self, hook, *args):
        try:
            return getattr(self.py, hook)(*args)
        except ValueError:
            raise
        except Exception as e:      # user code: name the layer and the hook, keep the message
            raise self.error(f"{type(self.py).__name__}.{hook} raised {type(e).__name__}: {e}") from e

    def reshape(self, shapes):
        for blob, shape in zip(self.bottom_blobs, shapes):
            blob.reshape(*shape)
        if not self._set_up:
            self._call("setup", self.bottom_blobs, self.top_blobs)
            self._set_up = True
        self._call("reshape", self.bottom_blobs, self.top_blobs)
        return [t.shape for t in self.top_blobs]

    def run_forward(self, bottoms):
        for blob, x in zip(self.bottom_blobs, bottoms):
            blob.data = np.array(x, dtype=self.dtype)
        self._call("forward", self.bottom_blobs, self.top_blobs)
        return [np.array(t.data, dtype=self.dtype) for t in self.top_blobs]

    def run_backward(self, top_diffs, bottoms, tops):
        for blob, t, d in zip(self.top_blobs, tops, top_diffs):
            blob.data = np.array(t, dtype=self.dtype)
            blob.diff = np.array(d, dtype=self.dtype)
        for blob, x in zip(self.bottom_blobs, bottoms):
            blob.data = np.array(x, dtype=self.dtype)
            blob.diff = np.zeros_like(blob.data)
        down = self.propagate_down or [True] * len(self.bottom_names)
        self._call("backward", self.top_blobs, down, self.bottom_blobs)
        return [np.array(b.diff, dtype=self.dtype) for b in self.bottom_blobs]


def _wants_argument(cls) -> bool:
    """True when the class's ``__init__`` takes a positional argument (pycaffe passes the
    LayerParameter); then it gets the layer dict."""
    init = cls.__init__
    if init is object.__init__ or init is pycaffe.Layer.__init__:
        return False
    try:
        params = list(inspect.signature(init).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    return any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
               for p in params)
