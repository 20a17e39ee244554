"""A rosbags typestore for ROS 2 Jazzy plus the event-camera messages and the node's output types.

The event messages are registered from their verified definitions (DESIGN.md section 6) because bags often do not
store message definitions.
"""

from __future__ import annotations

from functools import lru_cache

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

_PACKET = """std_msgs/Header header
uint32 height
uint32 width
uint64 seq
uint64 time_base
string encoding
bool is_bigendian
uint8[] events
"""
_DVS_EVENT = """uint16 x
uint16 y
builtin_interfaces/Time ts
bool polarity
"""
_DVS_ARRAY = """std_msgs/Header header
uint32 height
uint32 width
{pkg}/Event[] events
"""
_HYPOTHESIS = """string class_id
float64 score
"""
_CLASSIFICATION = """std_msgs/Header header
vision_msgs/ObjectHypothesis[] results
"""

#: Message definitions registered on top of the Jazzy store (type name -> .msg text).
CUSTOM_MSGDEFS: dict[str, str] = {
    "event_camera_msgs/msg/EventPacket": _PACKET,
    "event_array_msgs/msg/EventArray": _PACKET,
    "dvs_msgs/msg/Event": _DVS_EVENT,
    "dvs_msgs/msg/EventArray": _DVS_ARRAY.format(pkg="dvs_msgs"),
    "dv_ros2_msgs/msg/Event": _DVS_EVENT,
    "dv_ros2_msgs/msg/EventArray": _DVS_ARRAY.format(pkg="dv_ros2_msgs"),
    "vision_msgs/msg/ObjectHypothesis": _HYPOTHESIS,
    "vision_msgs/msg/Classification": _CLASSIFICATION,
}


@lru_cache(maxsize=1)
def typestore() -> Typestore:
    """The shared typestore: ROS 2 Jazzy (std_msgs, sensor_msgs, nav_msgs, diagnostic_msgs, ...) plus
    ``CUSTOM_MSGDEFS`` (types the store already has are left as they are)."""
    store = get_typestore(Stores.ROS2_JAZZY)
    add = {}
    for name, text in CUSTOM_MSGDEFS.items():
        if name not in store.types:
            add.update(get_types_from_msg(text, name))
    store.register(add)
    return store
