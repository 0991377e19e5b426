"""A small stand-in for the parts of pycaffe that a Python layer module touches.

A Caffe Python layer module does ``import caffe`` and subclasses ``caffe.Layer`` (FCN's
``voc_layers.py``); Caffe drives it from C++ (``include/caffe/layers/python_layer.hpp``, BVLC/caffe
9b89154, lines 19-47): ``param_str`` and ``phase`` (0 TRAIN, 1 TEST) are set, then
``setup(bottom, top)`` once, ``reshape(bottom, top)`` before every forward,
``forward(bottom, top)`` and ``backward(top, propagate_down, bottom)``.  ``bottom`` and ``top`` are
lists of blobs with ``.data`` and ``.diff`` arrays, ``.reshape(*dims)``, ``.shape``, ``.count``,
``.num``/``.channels``/``.height``/``.width``.  While econv imports such a module, ``caffe`` names
this module (:func:`caffe_import.data.python_layer.import_layer_module`).
"""

from __future__ import annotations

import numpy as np

TRAIN = 0
TEST = 1


class Blob:
    """pycaffe's ``Blob``: ``data`` and ``diff`` arrays of one shape."""

    def __init__(self, shape=(), dtype=np.float32):
        self._dtype = np.dtype(dtype)
        self.reshape(*shape)

    def reshape(self, *dims):
        dims = tuple(int(d) for d in (dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list))
                                      else dims))
        if any(d < 0 for d in dims):
            raise ValueError(f"Blob.reshape: dimensions must be >= 0, got {dims}")
        if getattr(self, "data", None) is None or self.data.shape != dims:
            self.data = np.zeros(dims, self._dtype)
            self.diff = np.zeros(dims, self._dtype)

    @property
    def shape(self):
        return self.data.shape

    @property
    def count(self):
        return int(self.data.size)

    def _axis(self, i):
        return self.data.shape[i] if self.data.ndim > i else 1

    num = property(lambda self: self._axis(0))
    channels = property(lambda self: self._axis(1))
    height = property(lambda self: self._axis(2))
    width = property(lambda self: self._axis(3))


class Layer:
    """Base class of Python layers (pycaffe's ``caffe.Layer``); subclasses define the four hooks."""

    def __init__(self, *args, **kwargs):
        pass

    def setup(self, bottom, top):
        pass

    def reshape(self, bottom, top):
        pass

    def forward(self, bottom, top):
        pass

    def backward(self, top, propagate_down, bottom):
        pass
