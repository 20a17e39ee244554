"""Event messages as ROS delivers them (serialized CDR bytes) -> ``EventBatch``es, without rclpy.

The node subscribes with ``raw=True`` and hands the bytes here; replay hands deserialized bag messages. Both go
through the same stateful stream decoder of ``hstnn_ros.perception.events`` (time-high words, wrap-around), one per
topic. Decoder errors become ``RuntimeEngineError`` so the node counts them as malformed messages.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import numpy as np

from hstnn_ros.errors import HstnnError
from hstnn_ros.runtime.errors import RuntimeEngineError


class EventMessageKind(enum.Enum):
    """Event message types the node subscribes to (parameter ``event_msg_type``)."""

    EVENT_PACKET = "event_camera_msgs/msg/EventPacket"
    DVS_EVENT_ARRAY = "dvs_msgs/msg/EventArray"

    @classmethod
    def from_type_name(cls, name: str) -> EventMessageKind:
        """``"event_camera_msgs/msg/EventPacket"`` (or without ``/msg``) -> kind; unknown names list the choices."""
        norm = name.strip()
        if norm.count("/") == 1:
            pkg, typ = norm.split("/")
            norm = f"{pkg}/msg/{typ}"
        try:
            return cls(norm)
        except ValueError as exc:
            raise RuntimeEngineError(f"event_msg_type {name!r} is not supported: use one of "
                                     f"{[k.value for k in cls]}") from exc

    def message_class(self) -> Any:
        """The rclpy message class (needs the ROS 2 message package installed)."""
        pkg, _, typ = self.value.split("/")
        try:
            module = __import__(f"{pkg}.msg", fromlist=[typ])
        except ImportError as exc:
            raise RuntimeEngineError(f"ROS message package {pkg!r} is not installed: install ros-<distro>-"
                                     f"{pkg.replace('_', '-')} or choose another event_msg_type") from exc
        return getattr(module, typ)


def stream_decoder(msgtype: str) -> Any:
    """A fresh stateful decoder for one event topic of ``msgtype`` (deserialized message -> EventBatches)."""
    from hstnn_ros.perception import events as pev  # noqa: PLC0415

    return pev.make_decoder(msgtype)


def make_event_decoder(kind: EventMessageKind) -> Callable[[bytes], list[Any]]:
    """``raw CDR bytes -> list[EventBatch]`` for the node's event subscription."""
    decoder = stream_decoder(kind.value)

    def decode(raw: bytes) -> list[Any]:
        try:
            return list(decoder.decode(kind.value, raw))
        except HstnnError as exc:
            raise RuntimeEngineError(f"{kind.value}: {exc}") from exc
        except (ValueError, IndexError, KeyError, AssertionError) as exc:  # truncated/garbled CDR
            raise RuntimeEngineError(f"{kind.value}: undecodable CDR ({exc})") from exc

    return decode


def image_to_array(msg: Any) -> np.ndarray:
    """sensor_msgs/Image (rclpy or rosbags object) -> ``[H, W, 3]`` uint8 RGB, or ``[H, W]`` depth (16UC1 as uint16
    millimetres, 32FC1 as float32 metres). Raises ``RuntimeEngineError`` for encodings and sizes it cannot decode."""
    enc = str(msg.encoding).lower()
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    raw = bytes(msg.data)
    if h <= 0 or w <= 0 or h * step > len(raw):
        raise RuntimeEngineError(f"image {w}x{h} ({enc}) step {step} needs {h * step} bytes, got {len(raw)}")
    depth = {"16uc1": np.uint16, "mono16": np.uint16, "32fc1": np.float32}.get(enc)
    if depth is not None:
        dt = np.dtype(depth).newbyteorder(">" if msg.is_bigendian else "<")
        if step < w * dt.itemsize:
            raise RuntimeEngineError(f"image step {step} < width {w} x {dt.itemsize} bytes ({enc})")
        rows = np.frombuffer(raw[: h * step], np.uint8).reshape(h, step)[:, : w * dt.itemsize]
        return np.ascontiguousarray(rows).view(dt).reshape(h, w).astype(depth)
    ch = {"rgb8": 3, "bgr8": 3, "mono8": 1, "8uc1": 1, "rgba8": 4, "bgra8": 4, "8uc3": 3}.get(enc)
    if ch is None:
        raise RuntimeEngineError(f"unsupported image encoding {msg.encoding!r}: publish rgb8, bgr8, mono8 or rgba8")
    if step < w * ch:
        raise RuntimeEngineError(f"image step {step} < width {w} x {ch} channels ({enc})")
    img = np.frombuffer(raw[: h * step], np.uint8).reshape(h, step)[:, : w * ch].reshape(h, w, ch)
    if ch == 1:
        return np.repeat(img, 3, axis=2)
    if enc.startswith("bgr"):
        img = img[..., [2, 1, 0]]
    return np.ascontiguousarray(img[..., :3])
