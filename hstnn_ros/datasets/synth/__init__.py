"""Synthetic routes: a seeded corridor world, a vectorised renderer, an ESIM-style event simulator and three
lighting environments, written as real rosbag2 recordings so the package can be tried without a robot."""

from hstnn_ros.bags.enums import Storage
from hstnn_ros.datasets.synth.config import (
    LIGHTING,
    PRESETS,
    CameraConfig,
    EventSimConfig,
    LightingConfig,
    MotionConfig,
    RouteConfig,
    WorldConfig,
    preset_config,
)
from hstnn_ros.datasets.synth.enums import Preset
from hstnn_ros.datasets.synth.errors import SynthError
from hstnn_ros.datasets.synth.esim import EventSimulator, SimEvents
from hstnn_ros.datasets.synth.messages import TOPIC_DEPTH, TOPIC_EVENTS, TOPIC_ODOM, TOPIC_RGB
from hstnn_ros.datasets.synth.realism import real_bag_stats, synthetic_env_stats
from hstnn_ros.datasets.synth.route import (
    generate_route_set,
    traversal_name,
    write_traversal,
)
from hstnn_ros.datasets.synth.simulate import TraversalSimulator
from hstnn_ros.datasets.synth.stats import EventStats, StatsAccumulator, format_stats_table
from hstnn_ros.datasets.synth.world import World, build_world
from hstnn_ros.perception.events.enums import EventMessageKind

__all__ = [
    "LIGHTING",
    "PRESETS",
    "TOPIC_DEPTH",
    "TOPIC_EVENTS",
    "TOPIC_ODOM",
    "TOPIC_RGB",
    "CameraConfig",
    "EventMessageKind",
    "EventSimConfig",
    "EventSimulator",
    "EventStats",
    "LightingConfig",
    "MotionConfig",
    "Preset",
    "RouteConfig",
    "SimEvents",
    "StatsAccumulator",
    "Storage",
    "SynthError",
    "TraversalSimulator",
    "World",
    "WorldConfig",
    "build_world",
    "format_stats_table",
    "generate_route_set",
    "preset_config",
    "real_bag_stats",
    "synthetic_env_stats",
    "traversal_name",
    "write_traversal",
]
