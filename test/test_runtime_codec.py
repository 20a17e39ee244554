"""Event message kinds (parameter names accepted/refused) and sensor_msgs/Image decoding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hstnn_ros.perception.errors import DecodeError
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.ros_codec import EventMessageKind, image_to_array


def test_type_names() -> None:
    assert EventMessageKind.from_type_name("dvs_msgs/EventArray") is EventMessageKind.DVS_EVENT_ARRAY
    assert EventMessageKind.from_type_name(" event_camera_msgs/msg/EventPacket ") is EventMessageKind.EVENT_PACKET
    with pytest.raises(DecodeError, match="not supported"):
        EventMessageKind.from_type_name("prophesee_event_msgs/msg/EventArray")


def test_missing_ros_message_package_names_the_fix() -> None:
    try:
        import dvs_msgs  # noqa: F401
    except ImportError:
        with pytest.raises(DecodeError, match="ros-<distro>-dvs-msgs"):
            EventMessageKind.DVS_EVENT_ARRAY.message_class()
    else:
        assert EventMessageKind.DVS_EVENT_ARRAY.message_class().__name__ == "EventArray"


@dataclass
class ImageMsg:
    encoding: str
    height: int
    width: int
    step: int
    data: bytes
    is_bigendian: int = 0


@given(h=st.integers(1, 9), w=st.integers(1, 9), pad=st.integers(0, 5), seed=st.integers(0, 2**31))
def test_image_decoding_round_trip(h: int, w: int, pad: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    rows = np.zeros((h, w * 3 + pad), np.uint8)
    rows[:, : w * 3] = rgb.reshape(h, -1)
    assert np.array_equal(image_to_array(ImageMsg("rgb8", h, w, w * 3 + pad, rows.tobytes())), rgb)
    bgr = rgb[..., ::-1].copy()
    assert np.array_equal(image_to_array(ImageMsg("bgr8", h, w, w * 3, bgr.tobytes())), rgb)
    depth = rng.integers(0, 65535, (h, w), dtype=np.uint16)
    for big in (0, 1):
        data = depth.astype(">u2" if big else "<u2").tobytes()
        out = image_to_array(ImageMsg("16UC1", h, w, w * 2, data, big))
        assert out.dtype == np.float32 and np.allclose(out, depth * np.float32(1e-3))
    f = rng.random((h, w)).astype(np.float32)
    assert np.array_equal(image_to_array(ImageMsg("32FC1", h, w, w * 4, f.tobytes())), f)


@given(st.binary(max_size=64), st.integers(0, 8), st.integers(0, 8), st.integers(0, 30),
       st.sampled_from(["rgb8", "mono8", "16UC1", "32FC1", "yuv422", "bgra8"]))
def test_garbage_images_raise_runtime_error_only(data: bytes, h: int, w: int, step: int, enc: str) -> None:
    try:
        out = image_to_array(ImageMsg(enc, h, w, step, data))
    except RuntimeEngineError:
        return
    assert out.shape[:2] == (h, w)


@given(n=st.integers(1, 200), seed=st.integers(0, 2**31), cut=st.integers(1, 40))
def test_node_decoder_round_trips_dvs_event_arrays_and_counts_garbage(n: int, seed: int, cut: int) -> None:
    from hstnn_ros.perception.events.batch import EventBatch
    from hstnn_ros.perception.events.cdr import encode_dvs_event_array
    from hstnn_ros.runtime.ros_codec import make_event_decoder

    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(10**9, 2 * 10**9, n)).astype(np.int64)
    batch = EventBatch(t, rng.integers(0, 346, n), rng.integers(0, 260, n), rng.integers(0, 2, n), 346, 260)
    decode = make_event_decoder(EventMessageKind.DVS_EVENT_ARRAY)
    (out,) = decode(encode_dvs_event_array(batch))
    for name in ("t_ns", "x", "y", "p"):
        assert np.array_equal(getattr(out, name), getattr(batch, name))
    assert (out.width, out.height) == (346, 260)
    raw = encode_dvs_event_array(batch)
    try:  # a truncated message is refused as malformed or yields only whole events
        got = decode(raw[: len(raw) - cut])
    except RuntimeEngineError:
        return
    assert sum(len(b) for b in got) <= n
