"""Online place recognition without ROS: the engine, its pipeline protocol, presets, replay and reports.

The rclpy node (``hstnn_ros.ros.node``), ``hstnn-replay`` and ``hstnn-demo`` are thin shells over this package.
"""

from hstnn_ros.runtime.engine import EngineConfig, EngineCounters, OpCounts, PlaceRecognitionEngine, PlaceResult
from hstnn_ros.runtime.enums import DropPolicy, Environment, EventBinning, InputMode
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.loading import load_pipeline
from hstnn_ros.runtime.pipeline import ClassifierResult, EventFraming, FrontendResult, Pipeline
from hstnn_ros.runtime.presets import SceneMeter, SceneStats, choose_environment, parse_environment, resolve_bundle
from hstnn_ros.runtime.replay import GroundTruth, ItemKind, ReplayItem, ReplayOutcome, run_replay

__all__ = [
    "ClassifierResult",
    "DropPolicy",
    "EngineConfig",
    "EngineCounters",
    "Environment",
    "EventBinning",
    "EventFraming",
    "FrontendResult",
    "GroundTruth",
    "InputMode",
    "ItemKind",
    "OpCounts",
    "Pipeline",
    "PlaceRecognitionEngine",
    "PlaceResult",
    "ReplayItem",
    "ReplayOutcome",
    "RuntimeEngineError",
    "SceneMeter",
    "SceneStats",
    "choose_environment",
    "load_pipeline",
    "parse_environment",
    "resolve_bundle",
    "run_replay",
]
