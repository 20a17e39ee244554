"""Event message kinds: parameter names accepted and refused."""

from __future__ import annotations

import pytest

from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.ros_codec import EventMessageKind


def test_type_names() -> None:
    assert EventMessageKind.from_type_name("dvs_msgs/EventArray") is EventMessageKind.DVS_EVENT_ARRAY
    assert EventMessageKind.from_type_name(" event_camera_msgs/msg/EventPacket ") is EventMessageKind.EVENT_PACKET
    with pytest.raises(RuntimeEngineError, match="not supported"):
        EventMessageKind.from_type_name("prophesee_event_msgs/msg/EventArray")


def test_missing_ros_message_package_names_the_fix() -> None:
    try:
        import dvs_msgs  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeEngineError, match="ros-<distro>-dvs-msgs"):
            EventMessageKind.DVS_EVENT_ARRAY.message_class()
    else:
        assert EventMessageKind.DVS_EVENT_ARRAY.message_class().__name__ == "EventArray"
