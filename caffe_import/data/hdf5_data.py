"""``HDF5Data``: rows of the datasets named like the tops, from a list of HDF5 files (h5py).

Follows ``src/caffe/layers/hdf5_data_layer.cpp`` (BVLC/caffe 9b89154):

- ``hdf5_data_param.source`` is a text file of HDF5 file names separated by whitespace (lines
  83-92, ``source_file >> line``), at least one.  A name is opened as given (relative to the working
  directory, as Caffe's ``H5Fopen``); econv also tries it next to the list file.
- Each file holds one dataset per top, named like the top (lines 41-46), float or integer, at least
  one axis, all with the same first dimension (lines 52-56).  Top ``i`` has shape
  ``(batch_size,) + dataset_i.shape[1:]`` (lines 116-126).  No ``transform_param`` (line 77).
- Forward (lines 163-178) copies ``batch_size`` rows; row ``r`` of the current file is
  ``data_permutation[r]``.  After the last row of a file the next file is loaded (lines 140-160);
  after the last file the first comes again.
- ``shuffle``: the file order is shuffled at setup and at each wrap past the last file; the row
  order is shuffled each time a file is loaded and again when its rows wrap (lines 63-70, 146-157).
  Shuffles use this layer's own seeded generator (see :mod:`caffe_import.data.base`).

Worked example: one file with rows ``0..4`` (a ``data`` dataset of shape (5, 2)), batch_size 2,
no shuffle: batches rows ``[0, 1]``, ``[2, 3]``, ``[4, 0]``, ``[1, 2]``.
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError

from reference.layers.base import register

from .base import DataLayer


@register
class HDF5Data(DataLayer):
    type = "HDF5Data"
    n_top = (1, None)

    def configure(self):
        p = self.param("hdf5_data_param")
        if self.spec.get("transform_param"):
            raise self.error("HDF5Data does not transform data: remove transform_param (Caffe refuses it)")
        if not p.has("source"):
            raise self.fail("hdf5_data_param.source is required")
        self.batch_size = p.int("batch_size", 0, minimum=0)
        if self.batch_size < 1:
            raise self.error("hdf5_data_param.batch_size must be >= 1")
        self.shuffle = bool(p.bool("shuffle", False))
        self.source = self.find_file(str(p.scalar("source")), "hdf5_data_param.source")
        with open(self.source, encoding="utf-8") as fh:
            names = fh.read().split()
        if not names:
            raise self.fail(f"the source {self.source!r} lists no HDF5 file")
        self.files = [self.find_file(n, "HDF5 file", next_to=self.source) for n in names]
        self.rng_shuffle = self.generator(0)
        self.file_order = np.arange(len(self.files))
        if self.shuffle:
            self.rng_shuffle.shuffle(self.file_order)
        self.current_file = 0
        self._load(self.files[self.file_order[0]])
        self.current_row = 0

    def _load(self, path):
        """The datasets named like the tops, read through the hardened HDF5 reader of
        :mod:`caffe_import.hdf5` (no virtual or external storage, the byte budget checked before any
        read, every h5py error a FormatError naming the file and the dataset)."""
        import h5py

        from ..hdf5 import _h5, _read_dataset

        arrays, spent = [], 0
        try:
            f = _h5(path, "/", "cannot open the file", h5py.File, path, "r")
        except FormatError as e:
            raise self.fail(f"cannot read HDF5 file {path!r} ({e})") from None
        with f:
            for top in self.top_names:
                where = "/" + top
                ds = _h5(path, where, "cannot open the dataset", f.get, top)
                if not isinstance(ds, h5py.Dataset):
                    names = _h5(path, "/", "cannot list the file", lambda: sorted(f.keys()))
                    raise self.fail(f"{path}: no dataset named {top!r} (one dataset per top; "
                                    f"the file has {names})")
                kind = _h5(path, where, "cannot read the datatype", lambda: ds.dtype.kind)
                if kind not in "fiu":
                    raise self.error(f"{path}: dataset {top!r} has type {ds.dtype}; Caffe reads "
                                     f"float or integer data only")
                if _h5(path, where, "cannot read the dataspace", lambda: ds.ndim) < 1:
                    raise self.error(f"{path}: dataset {top!r} needs at least one axis")
                a = _read_dataset(ds.id, where, path, spent)
                spent += a.nbytes
                arrays.append(np.asarray(a, dtype=self.dtype))
        rows = arrays[0].shape[0]
        for top, a in zip(self.top_names, arrays):
            if a.shape[0] != rows:
                raise self.error(f"{path}: dataset {top!r} has {a.shape[0]} rows, "
                                 f"{self.top_names[0]!r} has {rows}")
        if rows == 0:
            raise self.error(f"{path}: the datasets have no rows")
        if self._top_shapes is not None:
            for top, a, s in zip(self.top_names, arrays, self._top_shapes):
                if a.shape[1:] != s[1:]:
                    raise self.error(f"{path}: dataset {top!r} rows have shape {a.shape[1:]}, the "
                                     f"first file's {s[1:]}")
        self.arrays = arrays
        self.row_order = np.arange(rows)
        if self.shuffle:
            self.rng_shuffle.shuffle(self.row_order)

    def first_shapes(self):
        return [(self.batch_size,) + a.shape[1:] for a in self.arrays]

    def _next(self):
        self.current_row += 1
        if self.current_row == self.arrays[0].shape[0]:
            if len(self.files) > 1:
                self.current_file += 1
                if self.current_file == len(self.files):
                    self.current_file = 0
                    if self.shuffle:
                        self.rng_shuffle.shuffle(self.file_order)
                self._load(self.files[self.file_order[self.current_file]])
            self.current_row = 0
            if self.shuffle:
                self.rng_shuffle.shuffle(self.row_order)

    def run_forward(self, bottoms):
        self.reshape([])
        tops = [np.empty(s, dtype=self.dtype) for s in self._top_shapes]
        for i in range(self.batch_size):
            row = self.row_order[self.current_row]
            for top, a in zip(tops, self.arrays):
                top[i] = a[row]
            self._next()
        return tops
