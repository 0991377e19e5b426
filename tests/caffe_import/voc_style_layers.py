"""Python layers written the way FCN's ``voc_layers.py`` (shelhamer/fcn.berkeleyvision.org 1305c73,
lines 1-116) and Caffe's ``examples/pycaffe/layers/pyloss.py`` write them: ``import caffe``, subclass
``caffe.Layer``, read ``self.param_str``.  Used by tests/caffe_import/test_data_layers.py with a tiny
generated dataset (``seg_dir/ImageSets/Segmentation/<split>.txt``, ``JPEGImages/<id>.png``,
``SegmentationClass/<id>.png``; PNG so that the pixels are exact).
"""

import caffe

import numpy as np
from PIL import Image


class TinySegDataLayer(caffe.Layer):
    """(image, label) pairs one at a time, BGR minus the mean, as VOCSegDataLayer."""

    def setup(self, bottom, top):
        params = eval(self.param_str)
        self.seg_dir = params["seg_dir"]
        self.mean = np.array(params["mean"])
        if len(top) != 2:
            raise Exception("Need to define two tops: data and label.")
        if len(bottom) != 0:
            raise Exception("Do not define a bottom.")
        split_f = "{}/ImageSets/Segmentation/{}.txt".format(self.seg_dir, params["split"])
        self.indices = open(split_f, "r").read().splitlines()
        self.idx = 0
        self.phase_seen = self.phase

    def reshape(self, bottom, top):
        self.data = self.load_image(self.indices[self.idx])
        self.label = self.load_label(self.indices[self.idx])
        top[0].reshape(1, *self.data.shape)
        top[1].reshape(1, *self.label.shape)

    def forward(self, bottom, top):
        top[0].data[...] = self.data
        top[1].data[...] = self.label
        self.idx += 1
        if self.idx == len(self.indices):
            self.idx = 0

    def backward(self, top, propagate_down, bottom):
        pass

    def load_image(self, idx):
        im = Image.open("{}/JPEGImages/{}.png".format(self.seg_dir, idx))
        in_ = np.array(im, dtype=np.float32)
        in_ = in_[:, :, ::-1]
        in_ -= self.mean
        return in_.transpose((2, 0, 1))

    def load_label(self, idx):
        im = Image.open("{}/SegmentationClass/{}.png".format(self.seg_dir, idx))
        return np.array(im, dtype=np.uint8)[np.newaxis, ...]


class EuclideanLossLayer(caffe.Layer):
    """Caffe's examples/pycaffe/layers/pyloss.py: loss = sum((a - b)^2) / num / 2."""

    def setup(self, bottom, top):
        if len(bottom) != 2:
            raise Exception("Need two inputs to compute distance.")

    def reshape(self, bottom, top):
        if bottom[0].count != bottom[1].count:
            raise Exception("Inputs must have the same dimension.")
        self.diff = np.zeros_like(bottom[0].data, dtype=np.float32)
        top[0].reshape(1)

    def forward(self, bottom, top):
        self.diff[...] = bottom[0].data - bottom[1].data
        top[0].data[...] = np.sum(self.diff ** 2) / bottom[0].num / 2.

    def backward(self, top, propagate_down, bottom):
        for i in range(2):
            if not propagate_down[i]:
                continue
            sign = 1 if i == 0 else -1
            bottom[i].diff[...] = sign * self.diff / bottom[i].num
