"""The node's parameters: one table (name, type, default, description, valid values) derived from the engine's and the
session's own defaults, and its validation into ``NodeSettings``. ROS-free: the rclpy node declares exactly this
table (with ranges, choices and read-only flags as descriptors) and hands the values back here.

How inputs are windowed (bins, bin length, framing, depth range) is the model's and comes from its bundle; it is not
a parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hstnn_ros import defaults
from hstnn_ros.perception.enums import DropPolicy
from hstnn_ros.runtime.engine import EngineConfig
from hstnn_ros.runtime.enums import Preset
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.ros_codec import EventMessageKind

_ENGINE = EngineConfig()


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter.

    Attributes:
        name: parameter name.
        default: default value (its Python type is the parameter's type: bool, int, float or str).
        description: what it does (``ros2 param describe``).
        choices: the valid values of a string parameter (``None``: any).
        low, high: inclusive range of a number (``None``: unbounded on that side).
    """

    name: str
    default: Any
    description: str
    choices: tuple[str, ...] | None = None
    low: float | None = None
    high: float | None = None

    @property
    def type(self) -> type:
        """bool, int, float or str."""
        return type(self.default)

    def valid_values(self) -> str:
        """The valid values, as an error message names them."""
        if self.choices is not None:
            return " | ".join(self.choices)
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{self.type.__name__} in [{lo}, {hi}]"

    def check(self, value: Any) -> Any:
        """``value`` converted to the parameter's type; ``RuntimeEngineError`` naming the parameter, the value and
        the valid ones."""
        try:
            if self.type is bool:
                if not isinstance(value, bool):
                    raise TypeError("not a bool")
                v: Any = value
            elif self.type is int:
                if isinstance(value, bool) or float(value) != int(value):
                    raise TypeError("not an integer")
                v = int(value)
            elif self.type is float:
                if isinstance(value, bool):
                    raise TypeError("not a number")
                v = float(value)
            else:
                v = str(value).strip()
        except (TypeError, ValueError) as exc:
            raise RuntimeEngineError(f"parameter {self.name}={value!r}: {exc}; valid: {self.valid_values()}") from exc
        if self.choices is not None and v not in self.choices:
            raise RuntimeEngineError(f"parameter {self.name}={value!r} is not valid; choose one of: "
                                     f"{self.valid_values()}")
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise RuntimeEngineError(f"parameter {self.name}={value!r} is out of range; valid: {self.valid_values()}")
        return v


#: Every parameter of ``place_recognition_node`` (all read-only: they are used at start-up).
PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("model_bundle", "", "model bundle directory; empty = the shipped bundle of `environment`"),
    ParamSpec("environment", Preset.DEFAULT.value, "model preset (auto: chosen from the first seconds of input)",
              choices=tuple(p.value for p in Preset)),
    ParamSpec("event_msg_type", EventMessageKind.EVENT_PACKET.value, "message type of the `events` topic",
              choices=tuple(k.value for k in EventMessageKind)),
    ParamSpec("use_depth", False, "subscribe to `depth` (aligned, 16UC1 mm or 32FC1 m) and pair it with `image`"),
    ParamSpec("sync_slop_ms", defaults.RGBD_SLOP_NS / 1e6, "max stamp difference of a colour/depth pair (ms)",
              low=0.0, high=1000.0),
    ParamSpec("reorder_delay_ms", _ENGINE.reorder_delay_ns / 1e6, "how long inputs may arrive out of order (ms)",
              low=0.0, high=10_000.0),
    ParamSpec("release_on_events", _ENGINE.release_on_events,
              "decide a frame as soon as the events pass its stamp (one event publisher, in time order); false: "
              "always wait reorder_delay_ms"),
    ParamSpec("time_jump_ms", _ENGINE.time_jump_ns / 1e6,
              "an input this much older than the newest one is a jump back in time: the engine resets (ms)",
              low=1.0, high=3_600_000.0),
    ParamSpec("frame_period_ms", _ENGINE.frame_period_ns / 1e6, "decision period of events-only models (ms)",
              low=1.0, high=10_000.0),
    ParamSpec("max_buffered_events", _ENGINE.max_buffered_events, "bound of the event buffer", low=1_000,
              high=1e9),
    ParamSpec("max_pending_frames", _ENGINE.max_pending_frames, "bound of the frame reorder queue", low=1,
              high=10_000),
    ParamSpec("drop_policy", _ENGINE.drop_policy.value, "what a full queue drops",
              choices=tuple(p.value for p in DropPolicy)),
    ParamSpec("top_k", _ENGINE.top_k, "hypotheses per place message", low=1, high=1000),
    ParamSpec("route_filter", _ENGINE.route_filter,
              "filter place posteriors along the route (the raw decision is published on `place_raw`)"),
    ParamSpec("unknown_threshold", -1.0,
              "softmax confidence below which the place is `unknown`; -1: the bundle's calibrated detector "
              "(novelty of the window's representation) or, in bundles without one, its softmax threshold; 0: never",
              low=-1.0, high=1.0),
    ParamSpec("device", _ENGINE.device, "torch device: cpu | cuda | cuda:N"),
    ParamSpec("threads", _ENGINE.threads or 0, "torch intra-op threads (0: leave torch's setting)", low=0, high=256),
    ParamSpec("event_queue_depth", 200, "subscription queue depth of `events` (sized for bursts of packets)", low=1,
              high=100_000),
    ParamSpec("image_queue_depth", 10, "subscription queue depth of `image` and `depth`", low=1, high=1000),
    ParamSpec("work_queue_size", 2000,
              "messages waiting for the inference worker; beyond it the oldest are dropped and counted", low=1,
              high=1_000_000),
    ParamSpec("diagnostics_period_s", 1.0, "period of /diagnostics (s)", low=0.05, high=3600.0),
)
PARAMS_BY_NAME = {p.name: p for p in PARAMS}


@dataclass(frozen=True)
class NodeSettings:
    """Validated node parameters: the session to open, the engine settings and the shell's own settings."""

    model_bundle: str
    preset: Preset
    event_msg_type: EventMessageKind
    use_depth: bool
    sync_slop_ns: int
    engine: EngineConfig
    event_queue_depth: int
    image_queue_depth: int
    work_queue_size: int
    diagnostics_period_s: float


def node_settings(values: Mapping[str, Any], *, overridden: set[str] | None = None) -> NodeSettings:
    """Validate parameter ``values`` (name -> value; missing names take their default). ``overridden``: names the
    user set (a params file, ``-p``, a launch file); one that is not a parameter is refused, listing the valid
    names, rather than silently ignored. Raises ``RuntimeEngineError`` naming the parameter, value and fix."""
    unknown = sorted((overridden or set()) - set(PARAMS_BY_NAME) - {"use_sim_time"})
    unknown = [n for n in unknown if not n.startswith("qos_overrides.")]
    if unknown:
        raise RuntimeEngineError(f"unknown parameter(s) {unknown}: valid ones are {sorted(PARAMS_BY_NAME)} (the "
                                 "event window -- bins, bin length, framing -- comes from the model bundle)")
    v = {p.name: p.check(values.get(p.name, p.default)) for p in PARAMS}
    try:
        engine = EngineConfig(
            reorder_delay_ns=round(v["reorder_delay_ms"] * 1e6), release_on_events=v["release_on_events"],
            time_jump_ns=round(v["time_jump_ms"] * 1e6),
            frame_period_ns=round(v["frame_period_ms"] * 1e6), max_buffered_events=v["max_buffered_events"],
            max_pending_frames=v["max_pending_frames"], drop_policy=DropPolicy(v["drop_policy"]), top_k=v["top_k"],
            device=v["device"], threads=v["threads"] or None, route_filter=v["route_filter"],
            unknown_threshold=None if v["unknown_threshold"] < 0 else v["unknown_threshold"],
        )
    except RuntimeEngineError as exc:
        raise RuntimeEngineError(f"parameters: {exc}") from exc
    return NodeSettings(
        model_bundle=v["model_bundle"], preset=Preset(v["environment"]),
        event_msg_type=EventMessageKind(v["event_msg_type"]), use_depth=v["use_depth"],
        sync_slop_ns=round(v["sync_slop_ms"] * 1e6), engine=engine, event_queue_depth=v["event_queue_depth"],
        image_queue_depth=v["image_queue_depth"], work_queue_size=v["work_queue_size"],
        diagnostics_period_s=v["diagnostics_period_s"],
    )

