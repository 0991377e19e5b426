"""Layer lists of the classic nets the paper uses, at any width (for tests, benchmarks and demos).

``vgg16(widths=(64, 128, 256, 512, 512), fc=(4096, 4096, 1000), input_shape=(1, 3, 224, 224))``
is VGG-16's layout: 13 3x3 convolutions (pad 1, each followed by an in-place ReLU), 5 max poolings
(2x2, stride 2, Caffe's ceil mode), fc6-fc8 as InnerProduct (ReLU + Dropout after fc6 and fc7).
"""

from __future__ import annotations

GAUSS = {"type": "gaussian", "std": 0.1}


def _conv(name, bottom, n, **extra):
    p = {"num_output": n, "kernel_size": 3, "pad": 1, "weight_filler": {"type": "msra"},
         "bias_filler": GAUSS, **extra}
    return [{"name": name, "type": "Convolution", "bottom": [bottom], "top": [name],
             "convolution_param": p},
            {"name": "relu" + name[4:], "type": "ReLU", "bottom": [name], "top": [name]}]


def vgg16(widths=(64, 128, 256, 512, 512), fc=(4096, 4096, 1000), input_shape=(1, 3, 224, 224),
          dropout=True, pool="MAX"):
    layers = [{"name": "data", "type": "Input", "top": ["data"],
               "input_param": {"shape": [{"dim": list(input_shape)}]}}]
    bottom = "data"
    for block, (n, width) in enumerate(zip((2, 2, 3, 3, 3), widths), start=1):
        for i in range(1, n + 1):
            layers += _conv(f"conv{block}_{i}", bottom, width)
            bottom = f"conv{block}_{i}"
        layers.append({"name": f"pool{block}", "type": "Pooling", "bottom": [bottom],
                       "top": [f"pool{block}"],
                       "pooling_param": {"pool": pool, "kernel_size": 2, "stride": 2}})
        bottom = f"pool{block}"
    for i, n in zip((6, 7, 8), fc):
        name = f"fc{i}"
        layers.append({"name": name, "type": "InnerProduct", "bottom": [bottom], "top": [name],
                       "inner_product_param": {"num_output": n, "weight_filler": {"type": "msra"},
                                               "bias_filler": GAUSS}})
        if i < 8:
            layers.append({"name": f"relu{i}", "type": "ReLU", "bottom": [name], "top": [name]})
            if dropout:
                layers.append({"name": f"drop{i}", "type": "Dropout", "bottom": [name], "top": [name]})
        bottom = name
    return layers
