"""econv's NumPy oracle: Caffe-exact layers with eConv/ePool, a Net, an SGD solver, a gradient checker.

Ops (NCHW arrays, float32 or float64, output in the input's dtype)::

    y = conv2d(x, w, b=None, stride=1, pad=0, est=1, group=1)
    dx, dw, db = conv2d_backward(dy, x, w, stride=1, pad=0, est=1, group=1, bias=True)
    y = deconv2d(x, w, b=None, stride=1, pad=0, est=1, group=1)
    dx, dw, db = deconv2d_backward(dy, x, w, stride=1, pad=0, est=1, group=1, bias=True)
    y = pool2d(x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0)
    dx = pool2d_backward(dy, x, kernel, stride=1, pad=0, est=1, mode="max", round_mode="ceil", pad_end=0)
"""

from .conv import conv2d, conv2d_backward
from .deconv import deconv2d, deconv2d_backward
from .pool import pool2d, pool2d_backward
from .sizes import conv_out_size, deconv_out_size, extent, pool_out_size

__all__ = [
    "conv2d", "conv2d_backward", "deconv2d", "deconv2d_backward", "pool2d", "pool2d_backward",
    "conv_out_size", "deconv_out_size", "pool_out_size", "extent",
]

from .layers import LAYER_TYPES, Layer, create_layer  # noqa: E402
from .net import Net  # noqa: E402
from .dense import densify, dpoa  # noqa: E402
from .solver import SGDSolver  # noqa: E402
from .gradient_check import gradcheck  # noqa: E402

__all__ += ["Net", "Layer", "LAYER_TYPES", "create_layer", "SGDSolver", "gradcheck", "densify", "dpoa"]
