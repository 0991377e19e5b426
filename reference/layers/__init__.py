"""Caffe layers for the reference Net, one family per module; ``LAYER_TYPES`` maps type -> class."""

from . import eltwise, inner_product, loss, lrn, neuron, norm, shape, softmax, vision  # noqa: F401
from .base import LAYER_TYPES, Layer, create_layer, register

__all__ = ["LAYER_TYPES", "Layer", "create_layer", "register"]
