"""A full-size VGG-16 (138M parameters, 553 MB) in the V1 model-zoo layout: written by our
own writer, converted to HDF5, loaded from both files into a reference Net within memory.

Runs in a subprocess so its peak memory can be measured on its own; prints the timings (for
BENCHMARKS.md; nothing here asserts speed).  Marked slow: deselect with ``-m "not slow"``.
"""

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CFG = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]
FC = [("fc6", 4096), ("fc7", 4096), ("fc8", 1000)]


def vgg16_v1_prototxt(batch=1) -> str:
    """The VGG-16 deploy net in the V1 format the model zoo ships (enum types, input_dim)."""
    out = ['name: "VGG_ILSVRC_16_layers"', 'input: "data"',
           f"input_dim: {batch}", "input_dim: 3", "input_dim: 224", "input_dim: 224"]
    bottom = "data"
    for b, (c, n) in enumerate(CFG, 1):
        for i in range(1, n + 1):
            name = f"conv{b}_{i}"
            out.append(f'layers {{ bottom: "{bottom}" top: "{name}" name: "{name}" '
                       f"type: CONVOLUTION convolution_param {{ num_output: {c} pad: 1 "
                       f"kernel_size: 3 }} }}")
            out.append(f'layers {{ bottom: "{name}" top: "{name}" name: "relu{b}_{i}" '
                       f"type: RELU }}")
            bottom = name
        out.append(f'layers {{ bottom: "{bottom}" top: "pool{b}" name: "pool{b}" type: POOLING '
                   f"pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}")
        bottom = f"pool{b}"
    for name, n in FC:
        out.append(f'layers {{ bottom: "{bottom}" top: "{name}" name: "{name}" '
                   f"type: INNER_PRODUCT inner_product_param {{ num_output: {n} }} }}")
        bottom = name
        if name != "fc8":
            out.append(f'layers {{ bottom: "{name}" top: "{name}" name: "relu{name[2:]}" '
                       f"type: RELU }}")
            out.append(f'layers {{ bottom: "{name}" top: "{name}" name: "drop{name[2:]}" '
                       f"type: DROPOUT dropout_param {{ dropout_ratio: 0.5 }} }}")
    out.append('layers { bottom: "fc8" top: "prob" name: "prob" type: SOFTMAX }')
    return "\n".join(out) + "\n"


def blob_values(layer_index: int, blob_index: int, count: int):
    """Deterministic, cheap, position-dependent values for one blob."""
    import numpy as np
    i = np.arange(count, dtype=np.float32)
    return np.sin(i * np.float32(0.001 * (layer_index + 1)) + np.float32(blob_index))


def vgg16_v1_model():
    """The VGG-16 weights as a V1 NetParameter dict with legacy 4-D blob shapes."""
    def legacy(shape, values):
        s = (1,) * (4 - len(shape)) + tuple(shape)
        return {"num": s[0], "channels": s[1], "height": s[2], "width": s[3], "data": values}

    shapes = []
    cin = 3
    for b, (c, n) in enumerate(CFG, 1):
        for i in range(1, n + 1):
            shapes.append((f"conv{b}_{i}", "CONVOLUTION", [(c, cin, 3, 3), (c,)]))
            cin = c
    k = 512 * 7 * 7
    for name, n in FC:
        shapes.append((name, "INNER_PRODUCT", [(n, k), (n,)]))
        k = n
    layers = []
    for li, (name, ltype, blob_shapes) in enumerate(shapes):
        blobs = []
        for bi, shape in enumerate(blob_shapes):
            count = 1
            for d in shape:
                count *= d
            blobs.append(legacy(shape, blob_values(li, bi, count)))
        layers.append({"name": name, "type": ltype, "blobs": blobs})
    return {"name": "VGG_ILSVRC_16_layers", "layers": layers}, shapes


def job(directory: str) -> dict:
    """Write, convert and load; return timings and checks (runs in the subprocess)."""
    sys.path.insert(0, str(REPO))
    import numpy as np
    import caffe_import as ci

    t0 = time.perf_counter()
    model, shapes = vgg16_v1_model()
    n_params = sum(b["data"].size for layer in model["layers"] for b in layer["blobs"])
    src = os.path.join(directory, "vgg16.caffemodel")
    n_bytes = ci.write_message(src, model, "NetParameter")
    del model
    t_write = time.perf_counter() - t0

    dst = os.path.join(directory, "vgg16.caffemodel.h5")
    t0 = time.perf_counter()
    info = ci.convert(src, dst, progress=False)
    t_convert = time.perf_counter() - t0

    def check(net):
        for li, (name, _, blob_shapes) in enumerate(shapes):
            for bi, shape in enumerate(blob_shapes):
                got = net.params[name][bi]
                if got.shape != shape:
                    return f"{name}/{bi} has shape {got.shape}, expected {shape}"
                if not np.array_equal(got.reshape(-1), blob_values(li, bi, got.size)):
                    return f"{name}/{bi} values differ"
        return "ok"

    results = {}
    for kind, weights in (("hdf5", dst), ("binary", src)):
        t0 = time.perf_counter()
        net = ci.load_net(vgg16_v1_prototxt(), weights=weights)
        results[f"load_{kind}_s"] = time.perf_counter() - t0
        results[f"check_{kind}"] = check(net)
        del net
    results.update(params=n_params, file_bytes=n_bytes, h5_bytes=os.path.getsize(dst),
                   write_s=t_write, convert_s=t_convert, convert_info_bytes=info["bytes"],
                   peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return results


@pytest.mark.slow
def test_vgg16_full_size_converts_and_loads(tmp_path):
    if shutil.disk_usage(tmp_path).free < 3 << 30:
        pytest.skip("needs 3 GB of free disk for the 553 MB model and its HDF5 copy")
    proc = subprocess.run([sys.executable, __file__, str(tmp_path)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["params"] == 138_357_544
    assert r["file_bytes"] > 4 * r["params"] and r["convert_info_bytes"] == 4 * r["params"]
    assert r["check_hdf5"] == "ok" and r["check_binary"] == "ok"
    # memory: the net's parameters, one copy of the weights being loaded and the fillers'
    # temporaries; a regression that kept extra whole-model copies would exceed this
    assert r["peak_rss_bytes"] < 6 * r["file_bytes"], r
    print(f"\nVGG-16 ({r['params']:,} params, {r['file_bytes'] / 1e6:.0f} MB): "
          f"write {r['write_s']:.2f} s, convert {r['convert_s']:.2f} s "
          f"({r['file_bytes'] / 1e6 / r['convert_s']:.0f} MB/s), load .h5 "
          f"{r['load_hdf5_s']:.2f} s, load .caffemodel {r['load_binary_s']:.2f} s, "
          f"peak RSS {r['peak_rss_bytes'] / 1e9:.2f} GB")


if __name__ == "__main__":
    print(json.dumps(job(sys.argv[1])))
