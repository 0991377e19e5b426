"""Coordinate maps: receptive fields the papers state, and FCN-8s's crop offsets derived (not typed)."""

import pytest

from reference import Net
from reference.coord_map import coord_maps, crop_offset
from reference.models import vgg16


def test_vgg16_receptive_fields():
    net = Net(vgg16(widths=(1, 1, 1, 1, 1), fc=(2, 2, 2)))
    maps = coord_maps(net)
    assert maps["pool5"].rf == (212, 212) and maps["pool5"].stride == (32, 32)
    assert maps["conv1_1"].rf == (3, 3) and maps["pool1"].rf == (6, 6) and maps["pool1"].stride == (2, 2)
    assert maps["conv5_3"].rf == (196, 196)
    # fc6 as InnerProduct sees all of pool5's 7x7: 212 + 6 * 32
    assert maps["fc6"].rf == (404, 404)


def fcn_trunk(classes=3):
    """voc-fcn8s up to fc7 (CAFFE_FACTS 6.3), widths 1: conv1_1 pad 100, fc6 7x7 convolution."""
    layers = vgg16(widths=(1, 1, 1, 1, 1), fc=(1, 1, 1), input_shape=(1, 3, 500, 500), dropout=False)
    layers = [dict(l) for l in layers if l["name"] not in ("fc6", "relu6", "fc7", "relu7", "fc8")]
    layers[1] = dict(layers[1], convolution_param=dict(layers[1]["convolution_param"], pad=100))

    def conv(name, bottom, n, k):
        return {"name": name, "type": "Convolution", "bottom": [bottom], "top": [name],
                "convolution_param": {"num_output": n, "kernel_size": k}}

    def up(name, bottom, k, s):
        return {"name": name, "type": "Deconvolution", "bottom": [bottom], "top": [name],
                "convolution_param": {"num_output": classes, "kernel_size": k, "stride": s,
                                      "bias_term": False}}
    return layers + [conv("fc6", "pool5", 2, 7), conv("fc7", "fc6", 2, 1),
                     conv("score_fr", "fc7", classes, 1), up("upscore2", "score_fr", 4, 2),
                     conv("score_pool4", "pool4", classes, 1)], conv, up


def crop(name, bottom, ref, offset):
    return {"name": name, "type": "Crop", "bottom": [bottom, ref], "top": [name],
            "crop_param": {"axis": 2, "offset": list(offset)}}


def fuse(name, a, b):
    return {"name": name, "type": "Eltwise", "bottom": [a, b], "top": [name]}


def test_fcn8s_crop_offsets_and_shapes_are_derived():
    layers, conv, up = fcn_trunk()
    o4 = crop_offset(Net(layers), "score_pool4", "upscore2")
    layers += [crop("score_pool4c", "score_pool4", "upscore2", o4), fuse("fuse_pool4", "upscore2", "score_pool4c"),
               up("upscore_pool4", "fuse_pool4", 4, 2), conv("score_pool3", "pool3", 3, 1)]
    o3 = crop_offset(Net(layers), "score_pool3", "upscore_pool4")
    layers += [crop("score_pool3c", "score_pool3", "upscore_pool4", o3),
               fuse("fuse_pool3", "upscore_pool4", "score_pool3c"), up("upscore8", "fuse_pool3", 16, 8)]
    o = crop_offset(Net(layers), "upscore8", "data")
    layers.append(crop("score", "upscore8", "data", o))
    assert (o4, o3, o) == ((5, 5), (9, 9), (31, 31))
    shapes = Net(layers).blob_shapes
    assert shapes["pool5"][2:] == (22, 22) and shapes["fc6"][2:] == (16, 16)
    assert shapes["upscore2"][2:] == (34, 34) and shapes["upscore8"][2:] == (568, 568)
    assert shapes["score"][2:] == (500, 500)
    assert coord_maps(Net(layers))["score"].offset == (0, 0)   # aligned with the input pixels


def test_fcn32s_offset_and_misalignment_error():
    layers, conv, up = fcn_trunk()
    layers.append(up("upscore", "score_fr", 64, 32))
    assert crop_offset(Net(layers), "upscore", "data") == (19, 19)
    with pytest.raises(ValueError, match="different grids"):
        crop_offset(Net(layers), "score_fr", "data")
