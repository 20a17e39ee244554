"""sensor_msgs/Image and CompressedImage decoding and RGB-D preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.bags import typestore
from hstnn_ros.perception import DecodeError, decode_image, encode_image, preprocess_rgbd


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), enc=st.sampled_from(["rgb8", "bgr8", "mono8"]),
       big=st.booleans(), pad=st.integers(0, 7), seed=st.integers(0, 2**31))
def test_colour_round_trip_with_padding(*, h: int, w: int, enc: str, big: bool, pad: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    if enc == "mono8":
        rgb[:] = rgb[:, :, :1]
    msg = encode_image(rgb, enc, big_endian=big, row_padding=pad)
    assert msg.step == w * (1 if enc == "mono8" else 3) + pad
    # through real CDR bytes, as a bag or subscription delivers it
    data = typestore().serialize_cdr(msg, "sensor_msgs/msg/Image")
    np.testing.assert_array_equal(decode_image(typestore().deserialize_cdr(data, "sensor_msgs/msg/Image")), rgb)


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), big=st.booleans(), pad=st.integers(0, 5),
       seed=st.integers(0, 2**31))
def test_depth_encodings_give_metres(*, h: int, w: int, big: bool, pad: int, seed: int) -> None:
    depth = np.random.default_rng(seed).uniform(0, 60, (h, w)).astype(np.float32)
    mm = decode_image(encode_image(depth, "16UC1", big_endian=big, row_padding=pad * 2))
    np.testing.assert_allclose(mm, depth, atol=5e-4)
    m = decode_image(encode_image(depth, "32FC1", big_endian=big, row_padding=pad * 4))
    np.testing.assert_array_equal(m, depth)


def test_bad_images_raise_decode_error() -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    msg = encode_image(rgb, "rgb8")
    msg.encoding = "yuv422"
    with pytest.raises(DecodeError, match="yuv422"):
        decode_image(msg)
    msg = encode_image(rgb, "rgb8")
    msg.data = msg.data[:-4]
    with pytest.raises(DecodeError, match="truncated"):
        decode_image(msg)
    msg = encode_image(rgb, "rgb8")
    msg.step = 3
    with pytest.raises(DecodeError, match="step"):
        decode_image(msg)


def test_preprocess_rgbd_shapes_ranges_and_depth_channel() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (480, 640, 3)).astype(np.uint8)
    depth = rng.uniform(0, 20, (480, 640)).astype(np.float32)
    depth[0, 0] = np.nan
    x = preprocess_rgbd(rgb)
    assert x.shape == (3, 180, 240) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    np.testing.assert_allclose(x.mean(axis=(1, 2)), rgb.reshape(-1, 3).mean(0) / 255, atol=1e-3)
    xd = preprocess_rgbd(rgb, depth, depth_max_m=10.0)
    assert xd.shape == (4, 180, 240)
    np.testing.assert_array_equal(xd[:3], x)
    assert xd[3].min() >= 0 and xd[3].max() == 1.0  # depths beyond 10 m clip to 1
    flat = np.full((480, 640), 2.5, np.float32)
    np.testing.assert_allclose(preprocess_rgbd(rgb, flat)[3], 0.25)
    with pytest.raises(DecodeError, match="rgb"):
        preprocess_rgbd(depth)
