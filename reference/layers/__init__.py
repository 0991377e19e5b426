"""Caffe layers for the reference Net, one family per module; ``LAYER_TYPES`` maps type -> class."""

from . import eltwise, equivalent, inner_product, loss, lrn, neuron, norm, shape, softmax, vision  # noqa: F401,E501
from . import (accuracy, activation, bias, embed, margin_loss, mvn, probability_loss,  # noqa: F401
               recurrent, reduction, routing, spatial)
from . import bn, rcnn, resample, ssd  # noqa: F401  (fork layers: SegNet/PSPNet, R-CNN, SSD)
from .base import LAYER_TYPES, Layer, create_layer, register

__all__ = ["LAYER_TYPES", "Layer", "create_layer", "register"]
