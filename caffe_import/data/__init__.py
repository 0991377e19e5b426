"""Caffe's data layers and Python layers, registered in the reference Net's layer table.

They live outside ``reference/`` because they read files (the oracle has no file access); importing
this package (``caffe_import`` does) makes ``load_net`` build nets that start with them:

- ``HDF5Data`` (:mod:`.hdf5_data`), ``Data`` from LMDB and ``ImageData`` (:mod:`.db_data`),
  ``MemoryData`` and ``DummyData`` (:mod:`.memory`), with Caffe's ``transform_param``
  (:mod:`.transform`) where Caffe applies it;
- ``Python`` layers through a pycaffe-compatible shim (:mod:`.python_layer`, :mod:`.pycaffe`).

Each forward of a data layer returns its next batch.  When the files are not at hand, the tops of a
data layer can be turned into Inputs: ``load_net(..., input_shapes={"data": (1, 3, 224, 224),
"label": (1,)})`` (:mod:`caffe_import.inputs`).
"""

from . import db_data, hdf5_data, memory, python_layer  # noqa: F401  (register the layer types)
from .base import DATA_LAYER_TYPES, DataLayer, go_on_hint
from .transform import Transformer

__all__ = ["DATA_LAYER_TYPES", "DataLayer", "Transformer", "go_on_hint"]
