"""Choices of the synthetic route generator (size presets, event message kinds, storage); the lighting environments
are ``hstnn_ros.enums.Environment``."""

from __future__ import annotations

import enum


class Preset(enum.Enum):
    """Route sizes: ``demo`` takes seconds per traversal, ``bench`` minutes."""

    DEMO = "demo"
    DEFAULT = "default"
    BENCH = "bench"


class EventMessage(enum.Enum):
    """Message type used for the event topic."""

    EVENT_PACKET = "event_camera_msgs/msg/EventPacket"
    DVS_EVENT_ARRAY = "dvs_msgs/msg/EventArray"


class Storage(enum.Enum):
    """rosbag2 storage plugin."""

    MCAP = "mcap"
    SQLITE3 = "sqlite3"
