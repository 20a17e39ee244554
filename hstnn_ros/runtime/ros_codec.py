"""Event messages as ROS delivers them (serialized CDR bytes) -> ``EventBatch``es, without rclpy.

The node subscribes with ``raw=True`` and hands the bytes here; replay hands deserialized bag messages. Both go
through the same stateful stream decoder of ``hstnn_ros.perception.events`` (time-high words, wrap-around), one per
topic. Decoder errors become ``RuntimeEngineError`` so the node counts them as malformed messages.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from hstnn_ros.bags.cdr import PacketHeader
from hstnn_ros.bags.cdr import packet_header as cdr_header
from hstnn_ros.errors import HstnnError
from hstnn_ros.perception import events as pev
from hstnn_ros.perception.events.enums import EventMessageKind
from hstnn_ros.perception.images import decode_image
from hstnn_ros.runtime.errors import RuntimeEngineError


def stream_decoder(msgtype: str) -> Any:
    """A fresh stateful decoder for one event topic of ``msgtype`` (deserialized message -> EventBatches), its
    compiled kernels loaded (``warm_up``: the first message is not the one that waits for them)."""
    pev.warm_up()
    return pev.make_decoder(msgtype)


def packet_header(kind: EventMessageKind, raw: bytes | memoryview) -> PacketHeader | None:
    """Header stamp and ``seq`` of a serialized event message (``bags.cdr``: no deserialization), so the node can
    detect middleware loss (``seq`` gaps) and time jumps before decoding; ``None`` when the bytes are not CDR."""
    return cdr_header(raw, has_seq=kind is EventMessageKind.EVENT_PACKET)


class RawEventDecoder:
    """``raw CDR bytes -> list[EventBatch]`` for the node's event subscription; ``decoder`` is the stateful stream
    decoder underneath (its counters, ``reset`` after a time jump). Decoder errors become ``RuntimeEngineError``."""

    def __init__(self, kind: EventMessageKind) -> None:
        self.kind = kind
        self.decoder = stream_decoder(kind.value)

    def __call__(self, raw: bytes) -> list[Any]:
        try:
            return list(self.decoder.decode(self.kind.value, raw))
        except HstnnError as exc:
            raise RuntimeEngineError(f"{self.kind.value}: {exc}") from exc
        except (ValueError, IndexError, KeyError, AssertionError) as exc:  # truncated/garbled CDR
            raise RuntimeEngineError(f"{self.kind.value}: undecodable CDR ({exc})") from exc


def make_event_decoder(kind: EventMessageKind) -> RawEventDecoder:
    """A fresh raw-bytes decoder for one event topic of ``kind``."""
    return RawEventDecoder(kind)


def image_to_array(msg: Any) -> np.ndarray:
    """sensor_msgs/Image (rclpy or rosbags object) -> ``uint8 [H, W, 3]`` RGB or ``float32 [H, W]`` depth in metres,
    through the perception layer's decoder; its ``DecodeError`` becomes ``RuntimeEngineError`` (a malformed
    message for the node and replay counters)."""
    if isinstance(msg.data, (bytes, bytearray, memoryview)):  # rclpy may hand bytes; the decoder wants an array
        msg = SimpleNamespace(encoding=msg.encoding, height=msg.height, width=msg.width, step=msg.step,
                              is_bigendian=msg.is_bigendian, data=np.frombuffer(msg.data, np.uint8))
    try:
        return decode_image(msg)
    except HstnnError as exc:
        raise RuntimeEngineError(f"sensor_msgs/Image: {exc}") from exc
