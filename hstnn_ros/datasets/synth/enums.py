"""Choices of the synthetic route generator (lighting environments, size presets, event message kinds)."""

from __future__ import annotations

import enum


class LightingEnv(enum.Enum):
    """The paper's three lighting environments."""

    ENV1 = "env1"  #: bright indoor, stable light
    ENV2 = "env2"  #: outdoor, illumination drifting over time with moving cloud shadows
    ENV3 = "env3"  #: indoor low light, sensor noise (more background activity, noisy RGB)


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
