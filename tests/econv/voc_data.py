"""A small PASCAL VOC layout written by the tests themselves, and a small FCN-8s to run on it.

``make_voc(root, sizes)``: one JPEG image and one palette label PNG per size (classes in rectangles,
a 255 border as VOC draws around objects), ``ImageSets/Segmentation/val.txt`` listing them.
``make_fcn(folder)``: voc-fcn8s's layout (reference.fcn) at widths 2..4 with 21 classes, random weights
and the bilinear upsampling kernels, as deploy prototxt + binary caffemodel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from caffe_import import write_prototxt
from econv.voc import voc_palette
from reference.fcn import fcn

from ..reference.published_fcn import caffemodel

SIZES = ((37, 45), (40, 40), (52, 33))


def make_voc(root, sizes=SIZES, seed: int = 0) -> list[str]:
    root = Path(root)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ids = []
    for n, (h, w) in enumerate(sizes):
        image_id = f"2007_{n:06d}"
        label = np.zeros((h, w), np.uint8)
        for _ in range(3):
            c = int(rng.integers(1, 21))
            y, x = int(rng.integers(0, h - 8)), int(rng.integers(0, w - 8))
            label[y:y + 10, x:x + 12] = c
            label[y, x:x + 12] = 255                      # VOC's "void" outline
        rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(root / "JPEGImages" / f"{image_id}.jpg", quality=95)
        im = Image.fromarray(label, mode="P")
        im.putpalette(voc_palette().ravel().tolist())
        im.save(root / "SegmentationClass" / f"{image_id}.png")
        ids.append(image_id)
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(ids) + "\n")
    return ids


def make_fcn(folder, seed: int = 0):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    layers = fcn("8s", widths=(2, 2, 3, 4, 4), convs=(1, 1, 1, 1, 1), fc=8, classes=21,
                 input_shape=(1, 3, 40, 40), dropout=False)
    proto, model = folder / "deploy.prototxt", folder / "fcn.caffemodel"
    write_prototxt(layers, proto, name="tiny-fcn8s")
    caffemodel(layers, model, seed=seed)
    return proto, model
