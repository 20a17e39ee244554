"""``place_recognition_node``: the rclpy shell over ``hstnn_ros.runtime.PlaceRecognitionEngine``.

The only module that imports rclpy. Messages in -> engine -> messages out; all logic lives in the engine.

Subscriptions (sensor-data QoS: best effort, keep last, so live drivers and ``ros2 bag play`` both connect):
  ``events`` (``event_camera_msgs/msg/EventPacket`` or ``dvs_msgs/msg/EventArray``; raw CDR bytes decoded with the
  vectorised decoders), ``image`` (``sensor_msgs/Image``), optional ``depth`` (``sensor_msgs/Image``, paired to the
  colour frame by an ApproximateTimeSynchronizer).
Publications, stamped with the stamp of the window's last input (so ``use_sim_time`` replays line up):
  ``place`` (``vision_msgs/msg/Classification``: one ObjectHypothesis per top-k entry, ``class_id`` = place name,
  ``score`` = softmax probability, best first),
  ``ops`` (``diagnostic_msgs/msg/DiagnosticArray`` with one status ``hstnn_ros/ops``: named key-values of MACs / ACs
  by component, spike rates, latency. Chosen over ``Float64MultiArray`` because it carries a header for the stamp and
  self-describing keys, and every ROS 2 tool (rqt_runtime_monitor, ros2 topic echo) shows it),
  ``/diagnostics`` (``diagnostic_msgs/msg/DiagnosticArray``, 1 Hz: input rates, drops, malformed, latency).
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from vision_msgs.msg import Classification, ObjectHypothesis

from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine, PlaceResult
from hstnn_ros.runtime.enums import DropPolicy, Environment, EventBinning
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.loading import load_pipeline
from hstnn_ros.runtime.presets import (
    SceneMeter,
    choose_environment,
    load_references,
    parse_environment,
    resolve_bundle,
)
from hstnn_ros.runtime.ros_codec import EventMessageKind, image_to_array, make_event_decoder

#: Sensor time the ``auto`` preset measures before choosing an environment (s).
AUTO_MEASURE_S = 2.0

PARAMS: dict[str, tuple[Any, str]] = {
    "model_bundle": ("", "model bundle directory; empty = the shipped bundle of `environment`"),
    "environment": ("default", "environment preset: default | env1 | env2 | env3 | auto"),
    "events_topic": ("events", "event topic"),
    "event_msg_type": ("event_camera_msgs/msg/EventPacket",
                       "event message type: event_camera_msgs/msg/EventPacket or dvs_msgs/msg/EventArray"),
    "image_topic": ("image", "colour image topic (sensor_msgs/Image, rgb8/bgr8/mono8)"),
    "depth_topic": ("", "aligned depth topic (16UC1 mm or 32FC1 m); empty = no depth"),
    "sync_slop_s": (0.02, "max stamp difference between colour and depth pairs (s)"),
    "bin_ms": (7.0, "event-frame length for fixed binning (ms)"),
    "binning": ("fixed", "event binning: fixed (bins of bin_ms ending at the frame) | span (split the frame interval)"),
    "reorder_delay_ms": (50.0, "how long inputs may arrive out of order (ms)"),
    "frame_period_ms": (33.3, "decision period of events-only models (ms)"),
    "max_buffered_events": (4_000_000, "bound of the event buffer"),
    "max_pending_frames": (16, "bound of the frame reorder queue"),
    "drop_policy": ("drop_oldest", "full queue policy: drop_oldest | drop_newest"),
    "top_k": (5, "hypotheses per place message"),
    "device": ("cpu", "torch device: cpu | cuda | cuda:N"),
    "diagnostics_period_s": (1.0, "period of /diagnostics (s)"),
}


def _stamp(ns: int) -> Any:
    from builtin_interfaces.msg import Time  # noqa: PLC0415

    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


class PlaceRecognitionNode(Node):
    """Declares parameters, wires topics to a ``PlaceRecognitionEngine`` and publishes its results."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("place_recognition_node", **kwargs)
        for name, (default, text) in PARAMS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text))
        p = {name: self.get_parameter(name).value for name in PARAMS}
        self._auto = not p["model_bundle"] and parse_environment(p["environment"]) is Environment.AUTO
        bundle = Path(p["model_bundle"]) if p["model_bundle"] else resolve_bundle(p["environment"])
        config = EngineConfig(
            bin_ns=int(p["bin_ms"] * 1e6),
            binning=EventBinning(p["binning"]),
            reorder_delay_ns=int(p["reorder_delay_ms"] * 1e6),
            frame_period_ns=int(p["frame_period_ms"] * 1e6),
            max_buffered_events=int(p["max_buffered_events"]),
            max_pending_frames=int(p["max_pending_frames"]),
            drop_policy=DropPolicy(p["drop_policy"]),
            top_k=int(p["top_k"]),
            device=str(p["device"]),
        )
        self.engine = PlaceRecognitionEngine(load_pipeline(bundle), config)
        self._scene = SceneMeter(seconds=AUTO_MEASURE_S) if self._auto else None
        self.get_logger().info(f"model {bundle} ({self.engine.mode.value}) on {config.device}")

        kind = EventMessageKind.from_type_name(p["event_msg_type"])
        self._decode = make_event_decoder(kind)
        self.create_subscription(kind.message_class(), p["events_topic"], self._on_events,
                                 qos_profile_sensor_data, raw=True)
        if p["depth_topic"]:
            import message_filters  # noqa: PLC0415

            self._sync_subs = [
                message_filters.Subscriber(self, Image, p["image_topic"], qos_profile=qos_profile_sensor_data),
                message_filters.Subscriber(self, Image, p["depth_topic"], qos_profile=qos_profile_sensor_data),
            ]
            self._sync = message_filters.ApproximateTimeSynchronizer(self._sync_subs, 10, float(p["sync_slop_s"]))
            self._sync.registerCallback(self._on_rgbd)
        else:
            self.create_subscription(Image, p["image_topic"], self._on_image, qos_profile_sensor_data)

        self._pub_place = self.create_publisher(Classification, "place", 10)
        self._pub_ops = self.create_publisher(DiagnosticArray, "ops", 10)
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._latency = deque(maxlen=256)
        self._arrivals = {"events": deque(maxlen=512), "image": deque(maxlen=512)}
        self._decode_errors = 0
        self.create_timer(float(p["diagnostics_period_s"]), self._publish_diagnostics)

    # inputs --------------------------------------------------------------
    def _on_events(self, raw: bytes) -> None:
        self._arrivals["events"].append(time.monotonic())
        try:
            batches = self._decode(raw)
        except RuntimeEngineError as exc:  # the decoder's errors are mapped to the runtime's in ros_codec
            self._decode_errors += 1
            self.engine.counters.malformed += 1
            self.get_logger().warning(f"malformed event message dropped: {exc}", throttle_duration_sec=5.0)
            return
        for batch in batches:
            self.engine.push_events(batch)
            if self._scene is not None:
                self._scene.add_events(batch)
        self._maybe_choose_environment()
        self._emit(self.engine.poll())

    def _on_image(self, msg: Image) -> None:
        self._on_rgbd(msg, None)

    def _on_rgbd(self, msg: Image, depth_msg: Image | None) -> None:
        self._arrivals["image"].append(time.monotonic())
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        try:
            img = image_to_array(msg)
            depth = image_to_array(depth_msg) if depth_msg is not None else None
        except RuntimeEngineError as exc:
            self.engine.counters.malformed += 1
            self.get_logger().warning(f"image dropped: {exc}", throttle_duration_sec=5.0)
            return
        self.engine.push_frame(stamp, img, depth)
        if self._scene is not None:
            self._scene.add_image(stamp, img)
        self._maybe_choose_environment()
        self._emit(self.engine.poll())

    def _maybe_choose_environment(self) -> None:
        """``auto``: once AUTO_MEASURE_S of sensor time is measured, switch to the environment's bundle (once)."""
        if self._scene is None or not self._scene.ready:
            return
        stats, self._scene = self._scene.stats(), None
        env = choose_environment(stats, load_references())
        bundle = resolve_bundle(env)
        self.get_logger().info(f"auto preset: brightness {stats.brightness:.3f}, "
                               f"{stats.event_rate_hz_px:.3f} ev/s/px -> {env.value} ({bundle})")
        if str(bundle) != self.engine.pipeline.metadata.get("bundle"):
            counters = self.engine.counters
            self.engine = PlaceRecognitionEngine(load_pipeline(bundle), self.engine.config)
            self.engine.counters = counters

    # outputs -------------------------------------------------------------
    def _emit(self, results: list[PlaceResult]) -> None:
        for r in results:
            self._latency.append(r.latency_s)
            msg = Classification()
            msg.header.stamp = _stamp(r.stamp_ns)
            msg.header.frame_id = "place"
            for pid, prob in r.top_k:
                hyp = ObjectHypothesis()
                name = self.engine.pipeline.place_name(pid)
                if hasattr(hyp, "class_id"):  # vision_msgs >= 3.1 (Humble, Jazzy)
                    hyp.class_id = name
                else:  # vision_msgs 3.0 (Foxy) called it id
                    hyp.id = name
                hyp.score = float(prob)
                msg.results.append(hyp)
            self._pub_place.publish(msg)
            o = r.ops
            values = {
                "event_frontend_macs": o.event_frontend_macs, "event_frontend_acs": o.event_frontend_acs,
                "rgb_frontend_macs": o.rgb_frontend_macs, "rgb_frontend_acs": o.rgb_frontend_acs,
                "hstnn_macs": o.hstnn_macs, "hstnn_acs": o.hstnn_acs, "total_macs": o.total_macs,
                "total_acs": o.total_acs, "event_frontend_spike_rate": o.event_frontend_spike_rate,
                "hstnn_spike_rates": ",".join(f"{s:.4f}" for s in o.hstnn_spike_rates),
                "latency_s": r.latency_s, "place_id": r.place_id,
            }
            ops = DiagnosticArray()
            ops.header.stamp = _stamp(r.stamp_ns)
            ops.status.append(DiagnosticStatus(level=DiagnosticStatus.OK, name="hstnn_ros/ops",
                                               message="operations of this decision", hardware_id="hstnn",
                                               values=[KeyValue(key=k, value=str(v)) for k, v in values.items()]))
            self._pub_ops.publish(ops)

    def _publish_diagnostics(self) -> None:
        now = time.monotonic()
        values = {}
        for name, arr in self._arrivals.items():
            recent = [t for t in arr if now - t <= 5.0]
            values[f"{name}_rate_hz"] = f"{len(recent) / 5.0:.2f}"
        lat = np.asarray(self._latency) if self._latency else np.zeros(1)
        values["latency_p50_ms"] = f"{np.percentile(lat, 50) * 1e3:.2f}"
        values["latency_p99_ms"] = f"{np.percentile(lat, 99) * 1e3:.2f}"
        values.update({k: str(v) for k, v in self.engine.counters.as_dict().items()})
        c = self.engine.counters
        dropped = (c.frames_dropped_late + c.frames_dropped_overflow + c.frames_dropped_duplicate
                   + c.events_dropped_overflow + c.events_dropped_late)
        degraded = bool(dropped or c.malformed)
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status.append(DiagnosticStatus(
            level=DiagnosticStatus.WARN if degraded else DiagnosticStatus.OK,
            name="place_recognition_node: engine", hardware_id="hstnn",
            message="inputs dropped or malformed (see values)" if degraded else "ok",
            values=[KeyValue(key=k, value=v) for k, v in values.items()]))
        self._pub_diag.publish(msg)


def main(args: list[str] | None = None) -> int:
    """Entry point: ``rclpy.init`` / spin / ``destroy_node`` / ``shutdown``."""
    rclpy.init(args=args)
    node = None
    try:
        node = PlaceRecognitionNode()
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
