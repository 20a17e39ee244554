"""Choices of the event layer."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from hstnn_ros.perception.errors import DecodeError


class Encoding(StrEnum):
    """``EventPacket.encoding`` values this package decodes and encodes."""

    EVT3 = "evt3"
    LIBCAER_CMP = "libcaer_cmp"
    LIBCAER = "libcaer"
    MONO = "mono"


class TimeMode(StrEnum):
    """How decoded sensor time becomes event time.

    ``ROS``: ROS time; encodings whose sensor clock is not ROS time (evt3) are anchored to the first packet's header
    stamp (offset = stamp - first event's sensor time); libcaer, libcaer_cmp and mono carry ROS time via
    ``time_base`` already. ``SENSOR``: unwrapped sensor time as decoded, no anchoring.
    """

    ROS = "ros"
    SENSOR = "sensor"


class ResizeMode(StrEnum):
    """How sensor coordinates map onto the front-end resolution (coordinates are mapped, never images)."""

    SCALE = "scale"  #: x' = x * out_w // width, y' likewise (aspect may change)
    CROP = "crop"  #: centre crop of out_w x out_h sensor pixels, no scaling
    FIT = "fit"  #: scale by the larger ratio so the frame is covered, then centre crop


class Normalization(StrEnum):
    """Per-frame normalisation of event counts."""

    NONE = "none"  #: raw counts (after optional clipping)
    MAX = "max"  #: divided by the frame's largest count
    CLIP = "clip"  #: clipped at ``clip`` then divided by ``clip`` (range [0, 1])


class EventMessageKind(StrEnum):
    """ROS event message types a node subscribes to and the synthetic generator writes (node parameter
    ``event_msg_type``; route.json ``event_message``)."""

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
            raise DecodeError(f"event_msg_type {name!r} is not supported: use one of "
                              f"{[k.value for k in cls]}") from exc

    def message_class(self) -> Any:
        """The ROS message class (needs the ROS 2 message package installed; rclpy is not imported here)."""
        pkg, _, typ = self.value.split("/")
        try:
            module = __import__(f"{pkg}.msg", fromlist=[typ])
        except ImportError as exc:
            raise DecodeError(f"ROS message package {pkg!r} is not installed: install ros-<distro>-"
                              f"{pkg.replace('_', '-')} or choose another event_msg_type") from exc
        return getattr(module, typ)
