"""Online place recognition without ROS: the engine and its parts, sessions (preset or bundle -> engine), presets,
decision messages, replay and reports.

The rclpy node (``hstnn_ros.ros.node``), ``hstnn-replay`` and ``hstnn-demo`` are thin shells over this package.
"""

from hstnn_ros.runtime.engine import EngineConfig, EngineCounters, OpCounts, PlaceRecognitionEngine, PlaceResult
from hstnn_ros.runtime.enums import InputMode, ItemKind, Preset
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.loading import load_pipeline
from hstnn_ros.runtime.messages import decision_messages
from hstnn_ros.runtime.pipeline import ClassifierResult, FrontendResult, Pipeline
from hstnn_ros.runtime.presets import SceneMeter, SceneStats, choose_environment, parse_preset, resolve_bundle
from hstnn_ros.runtime.replay import GroundTruth, ReplayItem, ReplayOutcome, run_replay
from hstnn_ros.runtime.session import Session, open_session

__all__ = [
    "ClassifierResult",
    "EngineConfig",
    "EngineCounters",
    "FrontendResult",
    "GroundTruth",
    "InputMode",
    "ItemKind",
    "OpCounts",
    "Pipeline",
    "PlaceRecognitionEngine",
    "PlaceResult",
    "Preset",
    "ReplayItem",
    "ReplayOutcome",
    "RuntimeEngineError",
    "SceneMeter",
    "SceneStats",
    "Session",
    "choose_environment",
    "decision_messages",
    "load_pipeline",
    "open_session",
    "parse_preset",
    "resolve_bundle",
    "run_replay",
]
