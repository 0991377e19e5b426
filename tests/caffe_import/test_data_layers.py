"""Caffe's data layers (caffe_import.data) against hand-checkable values from tiny files the tests
write: HDF5Data, Data (LMDB of Datums), ImageData, MemoryData, DummyData, transform_param, Python
layers through the pycaffe shim, and a train_val net with HDF5Data trained by SGD."""

import os
import sys
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
from PIL import Image

from caffe_import import encode, load_net, load_solver
from caffe_import.data import Transformer
from caffe_import.data.images import resize

HERE = os.path.dirname(os.path.abspath(__file__))


def layer_stub(phase="TEST", rng=None, dtype=np.float32, **transform):
    """What a Transformer reads from its layer (name, spec, phase, dtype, generator)."""
    gen = rng if rng is not None else np.random.default_rng(0)
    return SimpleNamespace(name="d", type="Data", spec={"transform_param": transform}, phase=phase,
                           dtype=np.dtype(dtype), generator=lambda stream: gen)


class Scripted:
    """A generator whose ``integers(n)`` returns scripted values (checking ``n``)."""

    def __init__(self, *draws):
        self.draws = list(draws)

    def integers(self, n):
        value, bound = self.draws.pop(0)
        assert n == bound
        return value


R44 = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)   # rows [0..3], [4..7], [8..11], [12..15]


# ---- transform_param -----------------------------------------------------------------------------

def test_transform_centre_crop_in_test():
    t = Transformer(layer_stub(crop_size=2))
    # offsets (4 - 2) // 2 = 1: rows 1-2, columns 1-2
    np.testing.assert_array_equal(t.apply(R44), [[[5, 6], [9, 10]]])
    odd = Transformer(layer_stub(crop_size=2))
    # 3x3: offsets (3 - 2) // 2 = 0
    r33 = np.arange(9, dtype=np.uint8).reshape(1, 3, 3)
    np.testing.assert_array_equal(odd.apply(r33), [[[0, 1], [3, 4]]])


def test_transform_mean_before_scale():
    t = Transformer(layer_stub(crop_size=2, mean_value=[1.0], scale=0.5))
    # (x - 1) * 0.5 on [[5, 6], [9, 10]]; scale-then-mean would give [[1.5, 2], [3.5, 4]]
    np.testing.assert_array_equal(t.apply(R44), [[[2.0, 2.5], [4.0, 4.5]]])


def test_transform_train_mirror_then_random_crop():
    # Caffe draws the mirror coin first (Rand(2)), then h_off = Rand(H - crop + 1), w_off = Rand(W - crop + 1)
    rng = Scripted((1, 2), (2, 3), (0, 3))
    t = Transformer(layer_stub("TRAIN", rng, crop_size=2, mirror=True))
    # rows 2-3, columns 0-1: [[8, 9], [12, 13]], mirrored
    np.testing.assert_array_equal(t.apply(R44), [[[9, 8], [13, 12]]])
    assert rng.draws == []
    # TEST with mirror: the coin is still drawn, the crop is the centre one
    rng = Scripted((0, 2))
    t = Transformer(layer_stub("TEST", rng, crop_size=2, mirror=True))
    np.testing.assert_array_equal(t.apply(R44), [[[5, 6], [9, 10]]])
    assert rng.draws == []


def test_transform_mean_values_per_channel_and_replicated():
    x = np.stack([np.full((2, 2), 10), np.full((2, 2), 20), np.full((2, 2), 30)]).astype(np.uint8)
    per = Transformer(layer_stub(mean_value=[1, 2, 3]))
    np.testing.assert_array_equal(per.apply(x)[:, 0, 0], [9, 18, 27])
    one = Transformer(layer_stub(mean_value=[5]))
    np.testing.assert_array_equal(one.apply(x)[:, 0, 0], [5, 15, 25])
    with pytest.raises(ValueError, match="2 mean_value entries for 3 channels"):
        Transformer(layer_stub(mean_value=[1, 2])).apply(x)


def test_transform_mean_file_is_indexed_at_the_crop(tmp_path):
    mean = (np.arange(16, dtype=np.float32) * 0.5).reshape(1, 1, 4, 4)
    t = Transformer(layer_stub(crop_size=2, mean_file="m"), resolve_mean=lambda path: mean)
    # x - mean = 0.5 * x on the centre window [[5, 6], [9, 10]]
    np.testing.assert_array_equal(t.apply(R44), [[[2.5, 3.0], [4.5, 5.0]]])
    with pytest.raises(ValueError, match="mean_file and mean_value"):
        Transformer(layer_stub(mean_file="m", mean_value=[1]), resolve_mean=lambda path: mean)
    with pytest.raises(ValueError, match="crop_size 5 is larger than the record"):
        Transformer(layer_stub(crop_size=5)).apply(R44)


def test_transform_float64_layer_computes_in_float64():
    t = Transformer(layer_stub(dtype=np.float64, scale=0.1))
    out = t.apply(R44)
    assert out.dtype == np.float64 and out[0, 0, 1] == 0.1


# ---- HDF5Data ------------------------------------------------------------------------------------

def write_h5(path, **datasets):
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f[k] = v


def hdf5_net(source, batch=2, shuffle=False, extra=""):
    return f"""
layer {{ name: "d" type: "HDF5Data" top: "data" top: "label"
        hdf5_data_param {{ source: "{source}" batch_size: {batch}
                           shuffle: {str(shuffle).lower()} }} {extra} }}
"""


@pytest.fixture
def two_files(tmp_path):
    """File a: rows 0, 1, 2; file b: rows 10, 11 (data (n, 2) = [r, r + 0.5], label r)."""
    for name, rows in (("a.h5", [0, 1, 2]), ("b.h5", [10, 11])):
        r = np.array(rows, dtype=np.float64)
        write_h5(tmp_path / name, data=np.stack([r, r + 0.5], axis=1), label=r)
    (tmp_path / "list.txt").write_text("a.h5\nb.h5\n")       # names relative to the list file
    return tmp_path / "list.txt"


def test_hdf5_rows_files_and_wrap(two_files):
    net = load_net(hdf5_net(two_files))
    assert net.blob_shapes == {"data": (2, 2), "label": (2,)}
    labels = [net.forward()["label"].tolist() for _ in range(4)]
    # a0 a1 | a2 b10 | b11 a0 | a1 a2
    assert labels == [[0, 1], [2, 10], [11, 0], [1, 2]]
    out = net.forward()
    np.testing.assert_array_equal(out["data"], [[10, 10.5], [11, 11.5]])


def test_hdf5_shuffle_is_seeded_and_covers_every_row(two_files):
    def epoch(seed):
        net = load_net(hdf5_net(two_files, batch=5, shuffle=True), seed=seed)
        return [net.forward()["label"].tolist() for _ in range(3)]
    first = epoch(3)
    assert first == epoch(3)
    for batch in first:
        assert sorted(batch) == [0, 1, 2, 10, 11]      # 5 rows per batch = one pass over both files
    assert any(epoch(s) != first for s in (4, 5, 6))


def test_hdf5_integer_dataset_and_trailing_axes(tmp_path):
    write_h5(tmp_path / "x.h5", data=np.arange(24, dtype=np.int32).reshape(3, 2, 2, 2))
    (tmp_path / "l.txt").write_text(str(tmp_path / "x.h5"))
    net = load_net(f'layer {{ name: "d" type: "HDF5Data" top: "data" '
                   f'hdf5_data_param {{ source: "{tmp_path / "l.txt"}" batch_size: 2 }} }}', dtype=np.float64)
    out = net.forward()["data"]
    assert out.shape == (2, 2, 2, 2) and out.dtype == np.float64
    np.testing.assert_array_equal(out.ravel(), np.arange(16))


@pytest.mark.parametrize("case, message", [
    ("no list", "hdf5_data_param.source 'missing.txt' not found"),
    ("no dataset", "no dataset named 'label'"),
    ("transform", "does not transform data"),
])
def test_hdf5_errors_say_how_to_go_on(tmp_path, monkeypatch, case, message):
    monkeypatch.chdir(tmp_path)
    write_h5(tmp_path / "x.h5", data=np.zeros((2, 1)))
    (tmp_path / "l.txt").write_text("x.h5")
    text = {"no list": hdf5_net("missing.txt"), "no dataset": hdf5_net("l.txt"),
            "transform": hdf5_net("l.txt", extra="transform_param { scale: 2 }")}[case]
    with pytest.raises(ValueError, match=message) as e:
        load_net(text)
    if case != "transform":
        assert "input_shapes={'data': (N, C, H, W), 'label': (N,)}" in str(e.value)
        assert "deploy prototxt" in str(e.value)


# ---- Data (LMDB of Datums) -----------------------------------------------------------------------

def png_bytes(array, mode):
    import io
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def datum_db(tmp_path):
    lmdb = pytest.importorskip("lmdb", reason="the Data layer's LMDB test needs the lmdb package")
    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]], dtype=np.uint8)  # 2x2 RGB
    records = [
        {"channels": 1, "height": 2, "width": 2, "data": bytes([1, 2, 3, 4]), "label": 0},
        {"channels": 1, "height": 2, "width": 2, "data": bytes([5, 6, 7, 8]), "label": 1},
        {"channels": 1, "height": 2, "width": 2, "float_data": [0.5, 1.5, 2.5, 3.5], "label": 2},
        {"encoded": True, "data": png_bytes(rgb, "RGB"), "label": 3},
    ]
    path = tmp_path / "db"
    env = lmdb.open(str(path), map_size=1 << 20)
    with env.begin(write=True) as txn:
        for i, rec in enumerate(records):
            txn.put(f"{i:08d}".encode(), encode(rec, "Datum"))
    env.close()
    return path, rgb


def lmdb_net(path, batch, transform="", backend="LMDB"):
    return f"""
layer {{ name: "d" type: "Data" top: "data" top: "label"
        data_param {{ source: "{path}" batch_size: {batch} backend: {backend} }} {transform} }}
"""


def test_lmdb_uint8_float_and_labels(datum_db):
    path, _ = datum_db
    net = load_net(lmdb_net(path, 3, "transform_param { scale: 0.5 }"))
    assert net.blob_shapes == {"data": (3, 1, 2, 2), "label": (3,)}
    out = net.forward()
    np.testing.assert_array_equal(out["data"], [[[[0.5, 1], [1.5, 2]]], [[[2.5, 3], [3.5, 4]]],
                                                [[[0.25, 0.75], [1.25, 1.75]]]])
    np.testing.assert_array_equal(out["label"], [0, 1, 2])


def test_lmdb_mean_file_binaryproto(datum_db, tmp_path):
    path, _ = datum_db
    mean = tmp_path / "mean.binaryproto"
    mean.write_bytes(encode({"num": 1, "channels": 1, "height": 2, "width": 2,
                             "data": np.array([0.5, 1, 1.5, 2], dtype=np.float32)}, "BlobProto"))
    net = load_net(lmdb_net(path, 2, f'transform_param {{ mean_file: "{mean}" scale: 2 }}'))
    # (x - mean) * 2: [1, 2, 3, 4] -> [1, 2, 3, 4]; [5, 6, 7, 8] -> [9, 10, 11, 12]
    np.testing.assert_array_equal(net.forward()["data"].ravel(), [1, 2, 3, 4, 9, 10, 11, 12])
    with pytest.raises(ValueError, match="transform_param.mean_file 'nope.binaryproto' not found"):
        load_net(lmdb_net(path, 2, 'transform_param { mean_file: "nope.binaryproto" }'))


def test_lmdb_encoded_image_is_bgr(datum_db):
    path, rgb = datum_db
    net = load_net(lmdb_net(path, 1))
    for _ in range(3):
        net.forward()
    out = net.forward()
    assert out["data"].shape == (1, 3, 2, 2) and out["label"].tolist() == [3]
    np.testing.assert_array_equal(out["data"][0], rgb[:, :, ::-1].transpose(2, 0, 1))   # B, G, R planes
    # wraps to the first record after the last
    np.testing.assert_array_equal(net.forward()["data"].ravel(), [1, 2, 3, 4])


def test_lmdb_force_gray_decodes_one_channel(datum_db):
    path, _ = datum_db
    net = load_net(lmdb_net(path, 1, "transform_param { force_gray: true }"))
    for _ in range(3):
        net.forward()                # raw Datums: force_gray does not apply (Caffe only logs it)
    # ITU-R 601 gray (0.299 R + 0.587 G + 0.114 B, rounded) of red, green, blue, (10, 20, 30)
    np.testing.assert_array_equal(net.forward()["data"], [[[[76, 150], [29, 18]]]])


def test_lmdb_batch_of_mixed_shapes_is_refused(datum_db):
    path, _ = datum_db
    net = load_net(lmdb_net(path, 4))
    with pytest.raises(ValueError, match="one shape"):      # 1x2x2 records and a 3x2x2 image
        net.forward()


def test_v1_data_layer_with_transform_fields_in_data_param(datum_db):
    # Caffe's UpgradeNetDataTransformation (upgrade_proto.cpp lines 608-667): scale/mirror/crop_size/
    # mean_file move from data_param into transform_param, next to a mean_value already there
    path, _ = datum_db
    net = load_net(f"""
layers {{ name: "d" type: DATA top: "data" top: "label" transform_param {{ mean_value: 1 }}
         data_param {{ source: "{path}" batch_size: 2 backend: LMDB scale: 0.5 mirror: false }} }}
""")
    assert net.layer("d").spec["transform_param"] == {"mean_value": [1.0], "scale": 0.5, "mirror": False}
    np.testing.assert_array_equal(net.forward()["data"].ravel(), [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5])


def test_data_without_the_lmdb_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "lmdb", None)          # `import lmdb` raises ImportError
    with pytest.raises(ValueError, match=r'pip install "econv\[lmdb\]"'):
        load_net(lmdb_net("/nonexistent/db", 1))


def test_data_leveldb_is_refused_with_a_hint(datum_db):
    path, _ = datum_db
    with pytest.raises(ValueError, match="backend LEVELDB .* econv reads LMDB") as e:
        load_net(lmdb_net(path, 1, backend="LEVELDB"))
    assert "input_shapes=" in str(e.value)


# ---- ImageData -----------------------------------------------------------------------------------

@pytest.fixture
def image_list(tmp_path):
    (tmp_path / "img").mkdir()
    images = {}
    for i in range(3):
        rgb = np.full((2, 3, 3), 10 * i, dtype=np.uint8)
        rgb[..., 0] += 1                                   # R = 10i + 1, G = B = 10i
        Image.fromarray(rgb, "RGB").save(tmp_path / "img" / f"im {i}.png")   # a space in the name
        images[i] = rgb
    (tmp_path / "list.txt").write_text("".join(f"im {i}.png {7 + i}\n" for i in range(3)))
    return tmp_path, images


def image_net(tmp_path, extra="", transform=""):
    return f"""
layer {{ name: "d" type: "ImageData" top: "data" top: "label"
        image_data_param {{ source: "{tmp_path / 'list.txt'}" root_folder: "{tmp_path}/img/"
                            batch_size: 2 {extra} }}
        {transform} }}
"""


def test_image_data_bgr_labels_and_wrap(image_list):
    tmp_path, images = image_list
    net = load_net(image_net(tmp_path))
    assert net.blob_shapes == {"data": (2, 3, 2, 3), "label": (2,)}
    out = net.forward()
    np.testing.assert_array_equal(out["label"], [7, 8])
    np.testing.assert_array_equal(out["data"][1, :, 0, 0], [10, 10, 11])   # B, G, R
    assert net.forward()["label"].tolist() == [9, 7]


def test_image_data_gray_resize_and_transform(image_list):
    tmp_path, _ = image_list
    net = load_net(image_net(tmp_path, "is_color: false new_height: 4 new_width: 6",
                             "transform_param { mean_value: 1 scale: 2 }"))
    out = net.forward()
    assert out["data"].shape == (2, 1, 4, 6)
    # a flat image stays flat through the resize; gray of (1, 0, 0) is round(0.299) = 0
    np.testing.assert_array_equal(np.unique(out["data"][0]), [(0 - 1) * 2])


def test_image_data_shuffle_is_seeded(image_list):
    tmp_path, _ = image_list

    def labels(seed):
        net = load_net(image_net(tmp_path, "shuffle: true"), seed=seed)
        return [net.forward()["label"].tolist() for _ in range(3)]
    first = labels(1)
    assert first == labels(1)
    assert sorted(first[0] + first[1][:1]) == [7, 8, 9]     # one pass covers the list
    assert any(labels(s) != first for s in (2, 3, 4))


def test_resize_literal_and_against_opencv():
    row = np.array([[[0, 100]]], dtype=np.uint8)
    np.testing.assert_array_equal(resize(row, 1, 4), [[[0, 25, 75, 100]]])
    cv2 = pytest.importorskip("cv2", reason="compares the bilinear resize with OpenCV's")
    img = np.random.default_rng(0).integers(0, 256, size=(3, 13, 17), dtype=np.uint8)
    for h, w in ((29, 41), (7, 9), (13, 34)):
        ours = resize(img, h, w).astype(int)
        theirs = cv2.resize(img.transpose(1, 2, 0), (w, h), interpolation=cv2.INTER_LINEAR)
        assert np.abs(ours - theirs.transpose(2, 0, 1).astype(int)).max() <= 1


# ---- MemoryData and DummyData --------------------------------------------------------------------

MEMORY = """
layer { name: "m" type: "MemoryData" top: "data" top: "label"
        memory_data_param { batch_size: 2 channels: 1 height: 1 width: 2 } }
"""


def test_memory_data_batches_wrap():
    net = load_net(MEMORY)
    with pytest.raises(ValueError, match=r"set_input_arrays\(data, labels\) before forward"):
        net.forward()
    net.layer("m").set_input_arrays(np.arange(8).reshape(4, 1, 1, 2), [0, 1, 2, 3])
    seen = [net.forward()["label"].tolist() for _ in range(3)]
    assert seen == [[0, 1], [2, 3], [0, 1]]
    with pytest.raises(ValueError, match="3 records is not a positive multiple of the batch size 2"):
        net.layer("m").set_input_arrays(np.zeros((3, 1, 1, 2)), [0, 1, 2])


def test_dummy_data_constant_and_refilled():
    net = load_net("""
layer { name: "z" type: "DummyData" top: "c" top: "g"
        dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 4 }
                           data_filler { type: "constant" value: 7 } data_filler { type: "gaussian" } } }
""")
    a, b = net.forward(), net.forward()
    np.testing.assert_array_equal(a["c"], np.full((2, 3), 7))
    np.testing.assert_array_equal(b["c"], np.full((2, 3), 7))
    assert a["g"].shape == (4,) and not np.array_equal(a["g"], b["g"])
    legacy = load_net('layer { name: "z" type: "DummyData" top: "x" top: "y" '
                      'dummy_data_param { num: 2 channels: 3 channels: 1 height: 4 width: 5 } }')
    assert legacy.blob_shapes == {"x": (2, 3, 4, 5), "y": (2, 1, 4, 5)}
    np.testing.assert_array_equal(legacy.forward()["y"], 0)


# ---- Python layers -------------------------------------------------------------------------------

@pytest.fixture
def seg_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(HERE)
    for sub in ("ImageSets/Segmentation", "JPEGImages", "SegmentationClass"):
        (tmp_path / sub).mkdir(parents=True)
    ids = ["a", "b"]
    (tmp_path / "ImageSets/Segmentation/val.txt").write_text("\n".join(ids))
    for k, i in enumerate(ids):
        rgb = np.zeros((2, 3, 3), dtype=np.uint8)
        rgb[..., 0], rgb[..., 1], rgb[..., 2] = 100 + k, 50, 20      # R, G, B
        Image.fromarray(rgb, "RGB").save(tmp_path / f"JPEGImages/{i}.png")
        label = Image.fromarray(np.full((2, 3), k + 1, dtype=np.uint8), "L")
        label.save(tmp_path / f"SegmentationClass/{i}.png")
    yield tmp_path
    sys.modules.pop("voc_style_layers", None)


def python_net(seg_dir, module="voc_style_layers"):
    params = f"{{'seg_dir': '{seg_dir}', 'split': 'val', 'mean': (10, 20, 30)}}"
    return f"""
layer {{ name: "data" type: "Python" top: "data" top: "label"
        python_param {{ module: "{module}" layer: "TinySegDataLayer" param_str: "{params}" }} }}
layer {{ name: "conv" type: "Convolution" bottom: "data" top: "score"
        convolution_param {{ num_output: 1 kernel_size: 1 weight_filler {{ type: "gaussian" }} }} }}
layer {{ name: "loss" type: "Python" bottom: "score" bottom: "label" top: "loss" loss_weight: 1
        python_param {{ module: "voc_style_layers" layer: "EuclideanLossLayer" }} }}
"""


def test_python_data_layer_runs_like_pycaffe(seg_dir):
    net = load_net(python_net(seg_dir), phase="train")
    assert net.blob_shapes["data"] == (1, 3, 2, 3) and net.blob_shapes["label"] == (1, 1, 2, 3)
    assert net.layer("data").py.phase_seen == 0             # caffe.TRAIN
    assert "caffe" not in sys.modules or sys.modules["caffe"].__name__ != "caffe_import.data.pycaffe"
    out = net.forward()
    # BGR minus the mean (10, 20, 30): B 20 - 10, G 50 - 20, R 100 - 30
    np.testing.assert_array_equal(out["data"][0, :, 0, 0], [10, 30, 70])
    np.testing.assert_array_equal(out["label"], np.ones((1, 1, 2, 3)))
    w = net.params["conv"][0].ravel()[:3].astype(np.float64)
    b = float(net.params["conv"][1][0])
    score = np.tensordot(w, out["data"][0].astype(np.float64), axes=1) + b
    assert out["loss"].shape == (1,)
    np.testing.assert_allclose(out["loss"][0], np.sum((score - 1) ** 2) / 2, rtol=1e-6)
    net.backward()
    # d loss / d w_c = sum over pixels of (score - label) * data_c
    expected = np.tensordot(out["data"][0].astype(np.float64), score - 1, axes=([1, 2], [0, 1]))
    np.testing.assert_allclose(net.param_diffs["conv"][0].ravel(), expected, rtol=1e-5)
    second = net.forward()
    np.testing.assert_array_equal(second["data"][0, 2, 0, 0], 71)    # image b: R = 101
    np.testing.assert_array_equal(second["label"], 2)


def test_python_module_not_importable_says_what_next(seg_dir):
    with pytest.raises(ValueError) as e:
        load_net(python_net(seg_dir, module="no_such_voc_layers"))
    text = str(e.value)
    assert "cannot import the Python layer module 'no_such_voc_layers'" in text
    assert "PYTHONPATH" in text and "input_shapes={'data': (N, C, H, W), 'label': (N,)}" in text
    # ... and the override works: the data layer becomes an Input
    net = load_net(python_net(seg_dir, module="no_such_voc_layers"),
                   input_shapes={"data": (1, 3, 2, 3), "label": (1, 1, 2, 3)})
    assert net.input_names == ["data", "label"]


# ---- a train_val net with HDF5Data trained by SGD ------------------------------------------------

TRAIN_VAL = """
name: "tiny"
layer { name: "data" type: "HDF5Data" top: "data" top: "label" include { phase: TRAIN }
        hdf5_data_param { source: "train.txt" batch_size: 4 } }
layer { name: "data" type: "HDF5Data" top: "data" top: "label" include { phase: TEST }
        hdf5_data_param { source: "test.txt" batch_size: 2 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""

INPUTS = """
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 4 dim: 5 } shape { dim: 4 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def test_train_val_hdf5_sgd_equals_the_same_net_fed_by_hand(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 5))
    y = rng.integers(0, 3, size=6).astype(np.float64)
    write_h5(tmp_path / "train.h5", data=x, label=y)
    write_h5(tmp_path / "test.h5", data=x[:2], label=y[:2])
    (tmp_path / "train.txt").write_text("train.h5\n")
    (tmp_path / "test.txt").write_text("test.h5\n")
    (tmp_path / "train_val.prototxt").write_text(TRAIN_VAL)
    (tmp_path / "solver.prototxt").write_text(
        'net: "train_val.prototxt" base_lr: 0.5 lr_policy: "fixed" momentum: 0.9 test_iter: 1 max_iter: 5\n')
    solver = load_solver(str(tmp_path / "solver.prototxt"), dtype=np.float64, seed=2)
    assert solver.net.blob_shapes["data"] == (4, 5)
    assert solver.test_nets[0].blob_shapes["data"] == (2, 5)

    from reference import SGDSolver
    from caffe_import.loader import build_net
    from caffe_import import read_prototxt
    by_hand = SGDSolver(build_net(read_prototxt(INPUTS), phase="train", dtype=np.float64, seed=2),
                        base_lr=0.5, lr_policy="fixed", momentum=solver.momentum)   # 0.9 as float32
    np.testing.assert_array_equal(by_hand.net.params["ip"][0], solver.net.params["ip"][0])
    order = [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]      # rows in file order, wrapping
    losses = []
    for it in range(4):
        rows = order[4 * it: 4 * it + 4]
        losses.append(solver.step(1))
        by_hand.step(1, data=x[rows], label=y[rows])
        np.testing.assert_allclose(solver.net.params["ip"][0], by_hand.net.params["ip"][0],
                                   rtol=0, atol=1e-12)
    assert losses[-1] < losses[0]


def test_train_random_crop_and_mirror_are_seeded_and_valid(tmp_path):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    Image.fromarray(image, "RGB").save(tmp_path / "x.png")
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'x.png'} 0\n")
    text = f"""
layer {{ name: "d" type: "ImageData" top: "data" top: "label"
        image_data_param {{ source: "{tmp_path / 'list.txt'}" batch_size: 8 }}
        transform_param {{ crop_size: 3 mirror: true }} }}
"""
    bgr = image[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)
    crops = {}
    for h in range(2):
        for w in range(3):
            crop = bgr[:, h:h + 3, w:w + 3]
            crops[(h, w, False)], crops[(h, w, True)] = crop, crop[:, :, ::-1]

    def draws(seed):
        net = load_net(text, phase="train", seed=seed)
        out = net.forward()["data"]
        found = []
        for item in out:
            match = [k for k, c in crops.items() if np.array_equal(c, item)]
            assert len(match) == 1                 # every item is one crop, mirrored or not
            found.append(match[0])
        return found
    first = draws(0)
    assert first == draws(0)
    assert len({k for s in (0, 1, 2) for k in draws(s)}) > 4     # offsets and coins vary
    test = load_net(text, phase="test").forward()["data"]
    for item in test:                              # TEST: the centre crop ((4-3)//2, (5-3)//2) = (0, 1)
        assert any(np.array_equal(item, crops[(0, 1, m)]) for m in (False, True))


def test_hdf5_data_reads_through_the_hardened_reader(tmp_path):
    """HDF5Data's files are user input like weights: a virtual dataset is refused before any read,
    and one-byte corruptions of a valid file give FormatError/ValueError only (seeded, 60 of them)."""
    good = tmp_path / "good.h5"
    write_h5(good, data=np.arange(24, dtype=np.float32).reshape(4, 6), label=np.arange(4.0))
    (tmp_path / "list.txt").write_text(f"{good}\n")
    net = load_net(hdf5_net(tmp_path / "list.txt"))
    np.testing.assert_array_equal(net.forward()["label"], [0, 1])
    virtual = tmp_path / "virtual.h5"
    layout = h5py.VirtualLayout(shape=(4, 6), dtype="f4")
    layout[:] = h5py.VirtualSource(str(good), "data", shape=(4, 6))
    with h5py.File(virtual, "w") as f:
        f.create_virtual_dataset("data", layout)
        f["label"] = np.arange(4.0)
    (tmp_path / "v.txt").write_text(f"{virtual}\n")
    with pytest.raises(ValueError, match="virtual.h5: /data: a virtual dataset"):
        load_net(hdf5_net(tmp_path / "v.txt"))
    raw = bytearray(good.read_bytes())
    rng = np.random.default_rng(7)
    outcomes = {"ok": 0, "refused": 0}
    for i in range(60):
        bad = bytearray(raw)
        at = int(rng.integers(0, len(bad)))
        bad[at] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / f"bad{i}.h5"
        path.write_bytes(bytes(bad))
        (tmp_path / f"l{i}.txt").write_text(f"{path}\n")
        try:
            load_net(hdf5_net(tmp_path / f"l{i}.txt")).forward()
            outcomes["ok"] += 1
        except ValueError:                     # FormatError is a ValueError
            outcomes["refused"] += 1
    assert outcomes["ok"] + outcomes["refused"] == 60 and outcomes["refused"] > 0
