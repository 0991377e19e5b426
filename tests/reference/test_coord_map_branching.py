"""Receptive fields on branching nets: an Eltwise/Concat top sees the union of its bottoms' windows.

The ResNet layouts are built here, layer for layer as in He et al.'s published deploy files
(github:KaimingHe/deep-residual-networks @ a7026cb, prototxt/ResNet-{50,101,152}-deploy.prototxt):
conv1 7x7/2 pad 3, pool1 3x3/2 MAX (ceil), bottleneck blocks whose 1x1 ``branch2a`` and 1x1
``branch1`` shortcut carry the stride, ``branch2b`` 3x3 pad 1, stages of (3, 4, 6, 3) / (3, 4, 23, 3) /
(3, 8, 36, 3) blocks.  Widths are 1 (receptive fields do not depend on them).  The published values
are 483, 1027 and 1507 for ``res5c``; the same numbers come out of the deploy files themselves.
"""

import pytest

from reference import Net
from reference.coord_map import coord_maps


def _conv(name, bottom, k, s=1, p=0):
    return {"name": name, "type": "Convolution", "bottom": [bottom], "top": [name],
            "convolution_param": {"num_output": 1, "kernel_size": k, "stride": s, "pad": p,
                                  "bias_term": False}}


def resnet(blocks):
    layers = [{"name": "data", "type": "Input", "top": ["data"],
               "input_param": {"shape": [{"dim": [1, 1, 224, 224]}]}},
              _conv("conv1", "data", 7, 2, 3),
              {"name": "pool1", "type": "Pooling", "bottom": ["conv1"], "top": ["pool1"],
               "pooling_param": {"pool": "MAX", "kernel_size": 3, "stride": 2}}]
    bottom = "pool1"
    for stage, n in zip((2, 3, 4, 5), blocks):
        for b in range(n):
            # the published names: res4a..res4f, or res4a, res4b1..res4b22 in the deeper nets
            name = f"res{stage}{'abcdef'[b] if n <= 6 else ('a' if b == 0 else f'b{b}')}"
            s = 2 if (b == 0 and stage > 2) else 1
            a, b2, c = name + "_branch2a", name + "_branch2b", name + "_branch2c"
            layers += [_conv(a, bottom, 1, s), _conv(b2, a, 3, 1, 1), _conv(c, b2, 1)]
            short = bottom
            if b == 0:
                layers.append(_conv(name + "_branch1", bottom, 1, s))
                short = name + "_branch1"
            layers += [{"name": name, "type": "Eltwise", "bottom": [short, c], "top": [name]},
                       {"name": name + "_relu", "type": "ReLU", "bottom": [name], "top": [name]}]
            bottom = name
    return layers, bottom


@pytest.mark.parametrize("blocks, rf", [((3, 4, 6, 3), 483), ((3, 4, 23, 3), 1027), ((3, 8, 36, 3), 1507)])
def test_resnet_res5c_receptive_field(blocks, rf):
    layers, last = resnet(blocks)
    maps = coord_maps(Net(layers))
    assert last in ("res5c",)
    assert maps[last].rf == (rf, rf) and maps[last].stride == (32, 32)
    # the shortcut alone would see much less: res5a_branch1 is a 1x1 convolution on res4's output
    assert maps["res5a_branch1"].rf[0] < maps["res5a"].rf[0]


def _input():
    return {"name": "data", "type": "Input", "top": ["data"],
            "input_param": {"shape": [{"dim": [1, 1, 9, 9]}]}}


def test_union_of_unequal_windows_hand_checked():
    # a 3x3 (pad 1) and a 5x5 (pad 2) branch, both stride 1, centred on the same pixel: union rf 5
    layers = [_input(), _conv("a", "data", 3, 1, 1), _conv("b", "data", 5, 1, 2),
              {"name": "cat", "type": "Concat", "bottom": ["a", "b"], "top": ["cat"]}]
    m = coord_maps(Net(layers))["cat"]
    assert m.rf == (5, 5) and m.offset == (0, 0) and m.stride == (1, 1)
    # a 3x3 with no pad (centre at pixel 1) and a 1x1 cropped to align: [0, 2] and [1, 1] -> rf 3, offset 1
    layers = [_input(), _conv("a", "data", 3), _conv("b", "data", 1),
              {"name": "bc", "type": "Crop", "bottom": ["b", "a"], "top": ["bc"],
               "crop_param": {"offset": [1]}},
              {"name": "sum", "type": "Eltwise", "bottom": ["a", "bc"], "top": ["sum"]}]
    m = coord_maps(Net(layers))["sum"]
    assert m.rf == (3, 3) and m.offset == (1, 1)
    # the first bottom alone (the old rule) would have given the 1x1 shortcut's rf
    layers[-1] = dict(layers[-1], bottom=["bc", "a"])
    assert coord_maps(Net(layers))["sum"].rf == (3, 3)


def test_union_of_different_strides_is_an_error():
    layers = [_input(), _conv("a", "data", 3, 2), _conv("b", "data", 3, 1),
              {"name": "cat", "type": "Concat", "bottom": ["b", "b"], "top": ["cat"]}]
    net = Net(layers)
    # Concat of the same blob twice is fine; joining stride 1 and stride 2 grids is not
    assert coord_maps(net)["cat"].rf == (3, 3)
    net.layers[-1].bottom_names = ["a", "b"]
    with pytest.raises(ValueError, match="different grids"):
        coord_maps(net)


def test_econv_info_reports_the_union(tmp_path, capsys):
    from econv.cli import main
    text = """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 9 dim: 9 } } }
layer { name: "a" type: "Convolution" bottom: "data" top: "a"
        convolution_param { num_output: 1 kernel_size: 1 } }
layer { name: "b" type: "Convolution" bottom: "data" top: "b"
        convolution_param { num_output: 1 kernel_size: 5 pad: 2 } }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum" }
"""
    path = tmp_path / "branch.prototxt"
    path.write_text(text)
    assert main(["info", str(path)]) == 0
    row = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("sum "))
    assert row[1:] == ["Eltwise", "sum", "1x1x9x9", "5x5", "1x1", "0,0"]    # not a's 1x1


def test_fork_resampling_layers_change_the_grid():
    # conv 3x3 stride 2 (rf 3, stride 2, offset 1) on 9x9 -> 4x4; Interp zoom 2 -> 7x7: stride 2 * 3/6 = 1
    layers = [_input(), _conv("c", "data", 3, 2),
              {"name": "up", "type": "Interp", "bottom": ["c"], "top": ["up"],
               "interp_param": {"zoom_factor": 2}},
              {"name": "cut", "type": "Interp", "bottom": ["c"], "top": ["cut"],
               "interp_param": {"zoom_factor": 1, "pad_beg": -1}}]
    maps = coord_maps(Net(layers))
    assert maps["up"].stride == (1, 1) and maps["up"].offset == (1, 1) and maps["up"].rf == (3, 3)
    assert maps["cut"].offset == (3, 3) and maps["cut"].stride == (2, 2)      # cropped one unit = 2 px
    # SegNet's unpooling by 2 after a stride-2 map: stride 1, offset 1 - 2 * 0.5 / 2 = 0.5
    layers = [_input(), _conv("c", "data", 3, 2), _conv("m", "data", 3, 2),
              {"name": "u", "type": "Upsample", "bottom": ["c", "m"], "top": ["u"],
               "upsample_param": {"scale": 2}}]
    m = coord_maps(Net(layers))["u"]
    assert m.stride == (1, 1) and m.offset == (0.5, 0.5)
