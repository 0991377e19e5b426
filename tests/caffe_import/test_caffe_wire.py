"""The protobuf wire reader on hand-built byte strings."""

import struct
import time

import numpy as np
import pytest

from caffe_import import FormatError, encode
from caffe_import.wire import MAX_DEPTH, decode


def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7F | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def key(num, wire):
    return varint(num << 3 | wire)


def ld(num, payload):
    return key(num, 2) + varint(len(payload)) + payload


def f32(x):
    return struct.pack("<f", x)


def test_negative_axis_is_ten_byte_varint():
    data = bytes.fromhex("8001ffffffffffffffffff01")
    assert decode(data, "ConvolutionParameter") == {"axis": -1}


def test_int32_from_five_byte_varint_is_truncated_to_32_bits():
    data = key(16, 0) + bytes.fromhex("ffffffff0f")
    assert decode(data, "ConvolutionParameter") == {"axis": -1}


def test_uint32_int64_bool_conversions():
    data = key(1, 0) + varint((1 << 32) + 7) + key(2, 0) + varint(2)   # num_output, bias_term
    assert decode(data, "ConvolutionParameter") == {"num_output": 7, "bias_term": True}
    assert decode(key(1, 0) + varint(-5), "BlobShape") == {"dim": [-5]}


def test_packed_and_unpacked_dims_agree_and_chunks_concatenate():
    packed = bytes.fromhex("0a03020304")
    unpacked = bytes.fromhex("080208030804")
    assert decode(packed, "BlobShape") == {"dim": [2, 3, 4]}
    assert decode(unpacked, "BlobShape") == {"dim": [2, 3, 4]}
    mixed = bytes.fromhex("0a020203") + bytes.fromhex("0804") + bytes.fromhex("0a020506")
    assert decode(mixed, "BlobShape") == {"dim": [2, 3, 4, 5, 6]}


def test_unpacked_repeated_scalars_in_caffe_params():
    # CropParameter offsets 5, 7 as Caffe writes them (proto2 unpacked), and packed too
    assert decode(bytes.fromhex("10051007"), "CropParameter") == {"offset": [5, 7]}
    assert decode(bytes.fromhex("12020507"), "CropParameter") == {"offset": [5, 7]}
    coeff = key(2, 5) + f32(1.0) + key(2, 5) + f32(-0.5)
    assert decode(coeff, "EltwiseParameter") == {"coeff": [1.0, -0.5]}


def test_blob_data_packed_unpacked_and_double():
    values = [1.5, -2.25, 3.0]
    packed = bytes.fromhex("2a0c") + b"".join(f32(v) for v in values)
    unpacked = b"".join(bytes.fromhex("2d") + f32(v) for v in values)
    for data in (packed, unpacked):
        blob = decode(data, "BlobProto")
        assert blob["data"].dtype == np.float32
        np.testing.assert_array_equal(blob["data"], values)
    dbl = ld(8, struct.pack("<3d", 0.1, 0.2, 0.3))
    blob = decode(dbl, "BlobProto")
    assert blob["double_data"].dtype == np.float64
    np.testing.assert_array_equal(blob["double_data"], [0.1, 0.2, 0.3])


def test_long_unpacked_float_run_is_fast_and_interrupted_runs_concatenate():
    rng = np.random.default_rng(0)
    values = rng.standard_normal(200_000).astype(np.float32)
    rec = np.zeros(values.size, dtype=[("k", "u1"), ("v", "<f4")])
    rec["k"], rec["v"] = 0x2D, values
    data = rec.tobytes()
    t0 = time.perf_counter()
    blob = decode(data, "BlobProto")
    assert time.perf_counter() - t0 < 2.0
    np.testing.assert_array_equal(blob["data"], values)
    # a run interrupted by another field, then a packed chunk
    data = (bytes.fromhex("2d") + f32(1) + bytes.fromhex("2d") + f32(2) + bytes.fromhex("0803")
            + bytes.fromhex("2d") + f32(3) + bytes.fromhex("2a04") + f32(4))
    blob = decode(data, "BlobProto")
    np.testing.assert_array_equal(blob["data"], [1, 2, 3, 4])
    assert blob["num"] == 3


def test_unknown_fields_of_every_wire_type_are_skipped():
    unknown = (key(99, 0) + varint(-1) + key(98, 1) + b"\x00" * 8 + ld(97, b"anything")
               + key(96, 5) + b"\x01\x02\x03\x04"
               + key(95, 3) + key(1, 0) + varint(5) + key(2, 3) + key(2, 4) + key(95, 4))
    layer = ld(1, b"conv1") + unknown + ld(2, b"Convolution") + unknown + ld(4, b"conv1")
    assert decode(layer, "LayerParameter") == {"name": "conv1", "type": "Convolution",
                                               "top": ["conv1"]}


def test_known_field_with_wrong_wire_type_is_skipped_like_protobuf():
    data = key(1, 5) + f32(3.0) + key(5, 0) + varint(2)     # num_output as fixed32, group ok
    assert decode(data, "ConvolutionParameter") == {"group": 2}


def test_last_occurrence_of_optional_scalar_wins():
    data = key(1, 0) + varint(4) + key(1, 0) + varint(9)
    assert decode(data, "ConvolutionParameter") == {"num_output": 9}


def test_optional_submessage_occurring_twice_is_merged():
    first = ld(106, key(1, 0) + varint(4) + key(3, 0) + varint(1))
    second = ld(106, key(4, 0) + varint(3) + key(3, 0) + varint(2) + key(1, 0) + varint(8))
    layer = decode(first + second, "LayerParameter")
    assert layer == {"convolution_param": {"num_output": 8, "pad": [1, 2], "kernel_size": [3]}}
    blob1 = ld(7, ld(5, f32(1) + f32(2)))
    blob2 = ld(7, ld(5, f32(3)))
    blobs = decode(blob1 + blob2, "LayerParameter")["blobs"]
    assert len(blobs) == 2 and blobs[1]["data"].tolist() == [3.0]
    merged = decode(ld(3, ld(5, f32(1))) + ld(3, ld(5, f32(2))), "SolverState")
    assert len(merged["history"]) == 2
    twice = decode(ld(6, ld(3, b"a")) + ld(6, ld(3, b"b") + key(1, 0) + varint(0)), "NetParameter")
    assert twice == {"state": {"stage": ["a", "b"], "phase": "TRAIN"}}


def test_enums_decode_to_names_and_unknown_numbers_are_dropped():
    assert decode(key(1, 0) + varint(1), "PoolingParameter") == {"pool": "AVE"}
    assert decode(key(1, 0) + varint(1) + key(1, 0) + varint(77), "PoolingParameter") == \
        {"pool": "AVE"}
    assert decode(key(5, 0) + varint(4), "V1LayerParameter") == {"type": "CONVOLUTION"}


@pytest.mark.parametrize("data, needle", [
    (bytes.fromhex("0a05") + b"abc", "byte 2"),               # length 5, 3 bytes remain
    (bytes.fromhex("0aff7f") + b"x", "byte 3"),               # length 16383
    (bytes.fromhex("0a") + varint(1 << 62), "byte 10"),       # absurd length: no allocation
    (bytes.fromhex("08ffff"), "byte 1"),                      # truncated varint
    (bytes.fromhex("08") + b"\xff" * 10 + b"\x01", "byte 1"),  # varint over 10 bytes
    (bytes.fromhex("0e01"), "byte 0"),                        # wire type 6
    (bytes.fromhex("0f01"), "byte 0"),                        # wire type 7
    (bytes.fromhex("0001"), "byte 0"),                        # field number 0
    (bytes.fromhex("0c"), "byte 0"),                          # stray end-group
    (bytes.fromhex("1b0801"), "byte 0"),                      # group never closed
    (bytes.fromhex("2d0000"), "byte 1"),                      # truncated fixed32
    (bytes.fromhex("2a03000000"), "byte 2"),                  # packed floats, 3 bytes
])
def test_malformed_input_raises_format_error_with_offset(data, needle):
    with pytest.raises(FormatError) as info:
        decode(data, "BlobProto")
    assert needle in str(info.value)
    assert info.value.where == needle


def test_length_past_end_message_names_the_limit():
    with pytest.raises(FormatError) as info:
        decode(ld(1, b"conv1")[:-2], "LayerParameter")
    err = info.value
    assert err.where == "byte 2" and "length 5" in err.what and "at most 3 bytes" in err.expected


def test_deeply_nested_groups_are_rejected():
    deep = b"".join(key(90, 3) for _ in range(MAX_DEPTH + 5))
    deep += b"".join(key(90, 4) for _ in range(MAX_DEPTH + 5))
    with pytest.raises(FormatError, match="nested too deeply"):
        decode(deep, "NetParameter")
    ok = b"".join(key(90, 3) for _ in range(10)) + b"".join(key(90, 4) for _ in range(10))
    assert decode(ok, "NetParameter") == {}


def test_string_that_is_not_utf8_is_kept_as_caffe_does():
    # C++ proto2 does not check UTF-8 in string fields; the bytes survive (surrogateescape)
    layer = decode(ld(1, b"a\xff\xfe"), "LayerParameter")
    assert layer["name"] == "a\udcff\udcfe"
    assert encode(layer, "LayerParameter") == ld(1, b"a\xff\xfe")


def test_encoder_round_trip_of_every_field_kind():
    net = {"name": "t", "force_backward": True, "input_dim": [1, -2],
           "layer": [{"name": "c", "type": "Convolution", "loss_weight": [0.5],
                      "param": [{"lr_mult": 2.0, "share_mode": "PERMISSIVE"}],
                      "convolution_param": {"axis": -1, "pad": [1, 2], "engine": "CUDNN"},
                      "blobs": [{"shape": {"dim": [2]}, "data": np.array([1, 2], np.float32)},
                                {"num": 1, "double_data": np.array([0.25])}]}]}
    out = decode(encode(net, "NetParameter"), "NetParameter")
    blobs = out["layer"][0].pop("blobs")
    expected = {k: v for k, v in net.items()}
    expected["layer"] = [{k: v for k, v in net["layer"][0].items() if k != "blobs"}]
    assert out == expected
    assert blobs[0]["data"].tolist() == [1, 2] and blobs[1]["double_data"].tolist() == [0.25]
