"""``Data`` (Caffe ``Datum`` records from an LMDB) and ``ImageData`` (a list of image files).

``Data`` follows ``src/caffe/layers/data_layer.cpp`` (BVLC/caffe 9b89154): records are read in the
database's key order, wrapping after the last (lines 69-78); each is a serialized ``Datum``
(``caffe.proto``: channels, height, width, ``data`` bytes (uint8, C-H-W order) or ``float_data``,
label, ``encoded``), decoded here by econv's own wire reader (:mod:`caffe_import.wire`); an encoded
Datum holds an image file, decoded with Pillow as OpenCV would (:mod:`caffe_import.data.images`).
Top 0 is ``(batch_size, C, h, w)`` from the first record through the transformer (lines 29-48;
every batch is shaped by its own first record, lines 101-110), top 1 (if given) the labels
``(batch_size,)`` (lines 49-56, 119-122).  Only ``backend: LMDB`` is read (needs the ``lmdb``
package: ``pip install "econv[lmdb]"``); LevelDB, Caffe's default backend, is refused with a hint.

``ImageData`` follows ``src/caffe/layers/image_data_layer.cpp``: the source lists ``path label`` per
line, split at the *last* space (lines 39-47); ``root_folder`` is prepended as a string (line 75);
``new_height``/``new_width`` (both or neither, lines 33-35) resize, ``is_color`` picks 3 (BGR) or 1
channel; ``shuffle`` shuffles the list at setup and at each wrap (lines 51-57, 159-167);
``rand_skip`` starts at ``Rand() % rand_skip`` (lines 66-73).  Both tops are required.

Worked example (``Data``): two Datums of 1x2x2 uint8 ``[1, 2, 3, 4]`` (label 0) and ``[5, 6, 7, 8]``
(label 1), batch_size 2, ``scale: 0.5``: data ``[[[[0.5, 1], [1.5, 2]]], [[[2.5, 3], [3.5, 4]]]]``,
label ``[0, 1]``.
"""

from __future__ import annotations

import os

import numpy as np

from reference.layers.base import register

from .. import wire
from ..errors import FormatError
from ..readers import read_mean
from .base import DataLayer
from .images import decode, resize
from .transform import Transformer

LMDB_HINT = 'the Data layer reads LMDB with the lmdb package: pip install "econv[lmdb]"'


def datum_record(datum: dict, color, what: str) -> tuple[np.ndarray, int]:
    """A decoded Datum dict as ``((C, H, W) array, label)``: uint8 ``data``, ``float_data``, or an
    encoded image (``color``: True force_color, False force_gray, None native)."""
    label = int(datum.get("label", 0))
    if datum.get("encoded", False):
        return decode(datum.get("data", b""), color, what), label
    c, h, w = (int(datum.get(k, 0)) for k in ("channels", "height", "width"))
    data = datum.get("data", b"")
    if len(data):
        arr = np.frombuffer(bytes(data), dtype=np.uint8)
    else:
        arr = np.asarray(datum.get("float_data", []), dtype=np.float32)
    if arr.size != c * h * w or arr.size == 0:
        raise ValueError(f"{what}: the Datum holds {arr.size} values for shape {(c, h, w)}")
    return arr.reshape(c, h, w), label


class _RecordLayer(DataLayer):
    """Batches of transformed records with an optional label top."""

    def make_transformer(self):
        self.transformer = Transformer(self, resolve_mean=self._read_mean)
        t = self.transformer
        self.color = True if t.force_color else (False if t.force_gray else None)

    def _read_mean(self, path):
        try:
            return read_mean(self.find_file(path, "transform_param.mean_file"))
        except FormatError as e:
            raise self.error(f"mean_file: {e}") from None

    def record(self, index: int):
        """Record ``index`` of the source as ``((C, H, W) array, label)``."""
        raise NotImplementedError

    def advance(self):
        """Move to the next record (wrapping)."""
        raise NotImplementedError

    def first_shapes(self):
        shape = self.transformer.shape(*self.peek()[0].shape)
        return [(self.batch_size,) + shape] + [(self.batch_size,)] * (len(self.top_names) - 1)

    def run_forward(self, bottoms):
        data, labels = [], []
        for _ in range(self.batch_size):
            record, label = self.peek()
            if data and record.shape != first.shape:
                raise self.error(f"records in one batch must have one shape: {first.shape} and "
                                 f"{record.shape} (Caffe shapes a batch by its first record)")
            if not data:
                first = record
            data.append(self.transformer.apply(record))
            labels.append(label)
            self.advance()
        tops = [np.stack(data)]
        if len(self.top_names) > 1:
            tops.append(np.asarray(labels, dtype=self.dtype))
        return tops


@register
class Data(_RecordLayer):
    type = "Data"

    def configure(self):
        p = self.param("data_param")
        if not p.has("source"):
            raise self.fail("data_param.source is required")
        self.batch_size = p.int("batch_size", 0, minimum=0)
        if self.batch_size < 1:
            raise self.error("data_param.batch_size must be >= 1")
        backend = str(p.scalar("backend") or "LEVELDB")
        source = str(p.scalar("source"))
        if backend != "LMDB":
            raise self.fail(f"data_param.backend {backend} (Caffe's default is LEVELDB) is not "
                            f"supported: econv reads LMDB (write `backend: LMDB` if {source!r} is one)")
        self.make_transformer()
        try:
            import lmdb
        except ImportError:
            raise self.fail(LMDB_HINT) from None
        path = self.find_file(source, "data_param.source (an LMDB folder)")
        try:
            self.env = lmdb.open(path, readonly=True, lock=False, readahead=False,
                                 subdir=os.path.isdir(path))
        except lmdb.Error as e:
            raise self.fail(f"cannot open the LMDB {path!r} ({e})") from None
        self.txn = self.env.begin(buffers=False)
        self.cursor = self.txn.cursor()
        if not self.cursor.first():
            raise self.fail(f"the LMDB {path!r} holds no record")

    def peek(self):
        key = self.cursor.key()
        what = f"layer {self.name!r} (Data): record {bytes(key)!r}"
        try:
            datum = wire.decode(self.cursor.value(), "Datum")
        except FormatError as e:
            raise self.error(f"record {bytes(key)!r} is not a Datum ({e})") from None
        return datum_record(datum, self.color, what)

    def advance(self):
        if not self.cursor.next():
            self.cursor.first()


@register
class ImageData(_RecordLayer):
    type = "ImageData"
    n_top = (2, 2)

    def configure(self):
        p = self.param("image_data_param")
        if not p.has("source"):
            raise self.fail("image_data_param.source is required")
        self.batch_size = p.int("batch_size", 1, minimum=1)
        self.new_hw = (p.int("new_height", 0, minimum=0), p.int("new_width", 0, minimum=0))
        if (self.new_hw[0] == 0) != (self.new_hw[1] == 0):
            raise p.error("new_height and new_width must be set together")
        self.is_color = bool(p.bool("is_color", True))
        self.root = str(p.scalar("root_folder") or "")
        self.make_transformer()
        source = self.find_file(str(p.scalar("source")), "image_data_param.source")
        self.lines = []
        with open(source, encoding="utf-8") as fh:
            for n, line in enumerate(fh.read().splitlines(), 1):
                if not line.strip():
                    continue
                path, _, label = line.rpartition(" ")
                try:
                    self.lines.append((path, int(label)))
                except ValueError:
                    raise self.error(f"{source}:{n}: expected 'path label', got {line!r}") from None
        if not self.lines:
            raise self.fail(f"the source {source!r} lists no image")
        self.source = source
        self.shuffle = bool(p.bool("shuffle", False))
        self.rng_shuffle = self.generator(0)
        if self.shuffle:
            self._shuffle()
        self.pos = 0
        skip = p.int("rand_skip", 0, minimum=0)
        if skip:
            self.pos = int(self.rng_shuffle.integers(skip))
            if self.pos >= len(self.lines):
                raise self.error(f"rand_skip: cannot skip {self.pos} of {len(self.lines)} images")

    def _shuffle(self):
        order = self.rng_shuffle.permutation(len(self.lines))
        self.lines = [self.lines[i] for i in order]

    def peek(self):
        path, label = self.lines[self.pos]
        full = self.find_file(self.root + path, "image", next_to=self.source)
        image = decode(full, self.is_color, f"layer {self.name!r} (ImageData): {full}")
        if self.new_hw[0]:
            image = resize(image, *self.new_hw)
        return image, label

    def advance(self):
        self.pos += 1
        if self.pos >= len(self.lines):
            self.pos = 0
            if self.shuffle:
                self._shuffle()
