"""Run an FCN, its dense net and dpoa on real images of any size (``econv segment``).

A :class:`Segmenter` holds a Caffe FCN (prototxt + weights) and, with ``dense_from``, its dense
equivalent (:func:`reference.densify`).  FCN takes any input size (conv1_1's pad 100 and the final
Crop give a score map of the image's size), so the original net is run at each image's size as it
is.  A dense FCN is built for one input size (its validity masks and crops are derived for it), so
the dense net and dpoa are made per distinct image size and cached.  Where a Crop of the dense net
cannot hold every fragment at the image's size (:class:`reference.dense.CropFitError`), the image
is padded at the bottom/right with the mean (zero after preprocessing) to the nearest size that fits,
and the label map is cropped back; the result records the padding.

The label map is the argmax over classes of the net's ``score`` blob (or its last N,C,H,W blob).
With ``dense_weights`` (the dense net's parameters, e.g. fine-tuned in dense form and written by
``econv densify --weights-out``) the dense net carries them and dpoa carries them back into the
original architecture; without, dpoa of the untrained dense net is the original itself (E3).
"""

from __future__ import annotations

import numpy as np

MODELS = ("original", "dense", "dpoa")


def _score_blob(net) -> str:
    if "score" in net.blob_names:
        return "score"
    for layer in reversed(net.layers):
        for t in layer.top_names:
            if len(net.blob_shapes[t]) == 4:
                return t
    raise ValueError("the net has no N,C,H,W output to read a score map from")


class Segmenter:
    """FCN inference on images (module docstring).  ``models``: which of ``original``, ``dense``,
    ``dpoa`` :meth:`predict` computes (``dense``/``dpoa`` need ``dense_from``)."""

    def __init__(self, prototxt, weights, dense_from: str | None = None, dense_weights=None,
                 backend: str = "numpy", dtype=np.float32, input_name: str | None = None):
        from caffe_import import load_net

        self.net = load_net(prototxt, weights, backend=backend, dtype=dtype)
        self.input_name = input_name or self.net.input_names[0]
        extra = [t for t in self.net.input_names if t != self.input_name]
        if extra:       # a train/val file: labels are not needed for inference
            raise ValueError(f"the net has inputs {self.net.input_names}; segment needs a deploy net with "
                             f"one image input (econv deploy derives one, or use the deploy.prototxt)")
        self.dense_from = dense_from
        self.dense_weights = dense_weights
        self.score = _score_blob(self.net)
        self.classes = int(self.net.blob_shapes[self.score][1])
        self._dense = {}              # (h, w) -> (dense, dpoa, padded (h, w))

    @property
    def models(self) -> tuple:
        return MODELS if self.dense_from else ("original",)

    def _dense_for(self, h: int, w: int):
        if (h, w) not in self._dense:
            from reference import dpoa
            from reference.dense import CropFitError

            for size in _sizes_from(h, w):
                try:
                    dense = self._densify(*size)
                    break
                except CropFitError:
                    continue
            else:
                raise ValueError(f"densify at {self.dense_from!r}: no input size from {h}x{w} to "
                                 f"{h + 32}x{w + 32} lets every Crop hold every fragment")
            self._dense[(h, w)] = (dense, dpoa(dense), size)
        return self._dense[(h, w)]

    def _densify(self, h: int, w: int):
        from caffe_import.loader import copy_weights
        from reference import densify
        from reference.net import with_input_shapes

        n, c = self.net.blob_shapes[self.input_name][:2]
        dense = densify(with_input_shapes(self.net, {self.input_name: (1, c, h, w)}), self.dense_from)
        if self.dense_weights is not None:
            copy_weights(dense, self.dense_weights)
        return dense

    def predict(self, x: np.ndarray) -> dict:
        """``{model: (H, W) int label map}`` for one preprocessed (3, H, W) image, plus ``"padded"``:
        the size the dense nets ran at (the image's own unless a Crop forced padding)."""
        c, h, w = x.shape
        batch = x[None].astype(self.net.dtype, copy=False)
        out = {"original": self._labels(self.net, batch, h, w), "padded": (h, w)}
        if self.dense_from:
            dense, back, size = self._dense_for(h, w)
            if size != (h, w):
                padded = np.zeros((1, c) + size, batch.dtype)
                padded[..., :h, :w] = batch
                batch = padded
            out["dense"] = self._labels(dense, batch, h, w)
            out["dpoa"] = self._labels(back, batch, h, w)
            out["padded"] = size
        return out

    def _labels(self, net, batch, h, w) -> np.ndarray:
        score = net.forward(**{self.input_name: batch})[self.score]
        if score.shape[2] < h or score.shape[3] < w:
            raise ValueError(f"the score map {score.shape[2:]} is smaller than the image {h}x{w}: not an "
                             f"FCN that crops its output to the input")
        return np.asarray(score[0, :, :h, :w].argmax(axis=0), dtype=np.int64)


def _sizes_from(h: int, w: int, reach: int = 32):
    """Input sizes to try for a dense net, the image's own first, then padded ones, smallest first."""
    steps = sorted(((dh, dw) for dh in range(reach + 1) for dw in range(reach + 1)),
                   key=lambda d: (d[0] + d[1], d))
    return ((h + dh, w + dw) for dh, dw in steps)


def segment_files(prototxt, weights, images, out, dense_from=None, dense_weights=None, backend="numpy",
                  progress: bool = True) -> list[dict]:
    """``econv segment``: for every image write ``OUT/<stem>.png`` (the label map with the VOC palette:
    the dense net's with ``dense_from``, else the original's) and ``OUT/<stem>_overlay.png``; return
    one record per image (its size, padding, the classes found, agreement of dense with original)."""
    from pathlib import Path

    from tqdm import tqdm

    from .voc import VOC_CLASSES, overlay, preprocess, read_image, write_label

    out = Path(out)
    images = [Path(p) for p in images]
    stems = [p.stem for p in images]
    if len(set(stems)) != len(stems):
        raise ValueError("two images share a file name stem; their label maps would overwrite each other")
    seg = Segmenter(prototxt, weights, dense_from=dense_from, dense_weights=dense_weights, backend=backend)
    out.mkdir(parents=True, exist_ok=True)
    classes = (VOC_CLASSES if seg.classes == len(VOC_CLASSES)
               else tuple(f"class {i}" for i in range(seg.classes)))
    records = []
    for path in tqdm(images, desc="segment", unit="image", disable=not progress):
        image = read_image(path)
        pred = seg.predict(preprocess(image))
        which = "dense" if dense_from else "original"
        labels = pred[which]
        write_label(labels, out / f"{path.stem}.png")
        title = f"{path.name}: {which}" + (f" (dense from {dense_from})" if dense_from else "")
        overlay(image, labels, out / f"{path.stem}_overlay.png", classes=classes, title=title)
        record = {"image": str(path), "size": list(labels.shape), "model": which,
                  "classes": [classes[c] for c in np.unique(labels)]}
        if dense_from:
            record["padded_to"] = list(pred["padded"])
            record["dense_agrees_with_original"] = float((pred["dense"] == pred["original"]).mean())
        records.append(record)
    return records
