"""``place_recognition_node``: the rclpy shell over ``hstnn_ros.runtime.online.OnlineRecognizer``.

The only module (with the bag player) that imports rclpy. Messages in -> library -> messages out; all logic lives in
the ROS-free runtime, so the node and ``hstnn-replay`` decide alike.

Topics (relative names: remap them, or push the node into a namespace, to move them):
  subscribes ``events`` (``event_camera_msgs/msg/EventPacket`` or ``dvs_msgs/msg/EventArray``, taken as raw CDR bytes
  and decoded by the vectorised decoders), ``image`` (``sensor_msgs/Image``) and, with ``use_depth``, ``depth``
  (aligned ``sensor_msgs/Image``, paired with ``image`` by stamp); all with sensor-data QoS (best effort) so live
  drivers and bag players both connect, and queue depths sized by parameters;
  publishes ``place``, ``ops`` and, with ``route_filter``, ``place_raw`` (``runtime.messages``: one definition
  shared with output bags; an unknown place is a first hypothesis ``class_id: unknown``) stamped with the
  window's last input and the colour image's ``frame_id``, and ``/diagnostics`` (``diagnostic_msgs``, status
  ``place_recognition_node: engine``: message counts since start, losses and drops by cause, rates over the last
  period, latency; WARN only while the last period lost or dropped something).
Parameters: ``runtime.params.PARAMS`` (declared read-only with their ranges and choices; an impossible value or an
unknown name ends the node at start with one line naming it and the valid values).
"""

from __future__ import annotations

import sys
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rosidl_runtime_py.utilities import get_message
from sensor_msgs.msg import Image

from hstnn_ros.errors import HstnnError
from hstnn_ros.runtime.engine import PlaceResult
from hstnn_ros.runtime.messages import (
    OPS_TOPIC,
    OPS_TYPE,
    PLACE_RAW_TOPIC,
    PLACE_TOPIC,
    PLACE_TYPE,
    decision_messages,
)
from hstnn_ros.runtime.online import OnlineRecognizer
from hstnn_ros.runtime.params import PARAMS, ParamSpec, node_settings

NODE_NAME = "place_recognition_node"
DIAGNOSTICS_NAME = f"{NODE_NAME}: engine"


class StartupError(Exception):
    """The node cannot start: the message names the parameter or file and the fix."""


def _descriptor(p: ParamSpec) -> ParameterDescriptor:
    d = ParameterDescriptor(description=p.description, read_only=True)
    if p.choices is not None:
        d.additional_constraints = "one of: " + ", ".join(p.choices)
    elif p.type is int and p.low is not None and p.high is not None:
        d.integer_range = [IntegerRange(from_value=int(p.low), to_value=int(p.high), step=1)]
    elif p.type is float and p.low is not None and p.high is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(p.low), to_value=float(p.high), step=0.0)]
    return d


def _make(msgtype: str, **fields: Any) -> Any:
    return get_message(msgtype)(**fields)


class PlaceRecognitionNode(Node):
    """Declares the parameters, wires the topics to an ``OnlineRecognizer`` and publishes its results."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        values = {}
        overrides = dict(getattr(self, "_parameter_overrides", {}))  # what the user set (params file, -p, launch)
        for p in PARAMS:
            try:
                values[p.name] = self.declare_parameter(p.name, p.default, _descriptor(p)).value
            except ParameterException as exc:  # rclpy refused the type or the range of the descriptor
                given = overrides[p.name].value if p.name in overrides else "?"
                why = "wrong type" if isinstance(exc, InvalidParameterTypeException) else "out of range"
                raise StartupError(f"parameter {p.name}={given!r}: {why}; valid: {p.valid_values()}") from exc
        overridden = set(overrides)
        try:
            settings = node_settings(values, overridden=overridden)
            self.core = OnlineRecognizer(settings, self._publish_results)
        except HstnnError as exc:
            raise StartupError(str(exc)) from exc
        engine = self.core.session.engine
        self.get_logger().info(f"model {self.core.session.bundle} ({engine.mode.value}) on {settings.engine.device}")

        sensor = qos_profile_sensor_data
        events_qos = QoSProfile(history=sensor.history, depth=settings.event_queue_depth,
                                reliability=sensor.reliability, durability=sensor.durability)
        image_qos = QoSProfile(history=sensor.history, depth=settings.image_queue_depth,
                               reliability=sensor.reliability, durability=sensor.durability)
        self.create_subscription(settings.event_msg_type.message_class(), "events", self.core.offer_events,
                                 events_qos, raw=True)
        self.create_subscription(Image, "image", self.core.offer_image, image_qos)
        if settings.use_depth:
            self.create_subscription(Image, "depth", self.core.offer_depth, image_qos)
        self._pub_place = self.create_publisher(get_message(PLACE_TYPE), PLACE_TOPIC, 10)
        self._pub_ops = self.create_publisher(get_message(OPS_TYPE), OPS_TOPIC, 10)
        self._pub_raw = (self.create_publisher(get_message(PLACE_TYPE), PLACE_RAW_TOPIC, 10)
                         if settings.engine.route_filter else None)
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(settings.diagnostics_period_s, self._publish_diagnostics)

    def _publish_results(self, results: list[PlaceResult], frame_id: str) -> None:
        """Called by the inference worker with each batch of new decisions."""
        for r in results:
            place, ops, raw = decision_messages(r, _make, frame_id=frame_id)
            try:
                self._pub_place.publish(place)
                self._pub_ops.publish(ops)
                if raw is not None and self._pub_raw is not None:
                    self._pub_raw.publish(raw)
            except Exception:
                if self.context.ok():
                    raise
                return

    def _publish_diagnostics(self) -> None:
        d = self.core.diagnostics()
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.status.append(DiagnosticStatus(
            level=DiagnosticStatus.WARN if d.level else DiagnosticStatus.OK, name=DIAGNOSTICS_NAME,
            hardware_id="hstnn", message=d.message,
            values=[KeyValue(key=k, value=v) for k, v in d.values.items()]))
        self._pub_diag.publish(msg)

    def destroy_node(self) -> None:
        """Stop the worker after the queued messages; publish the last decisions while the context still allows
        (after Ctrl-C rclpy has shut it down already: they are dropped, which the log says)."""
        if hasattr(self, "core"):
            alive = self.context.ok()
            self.core.close(flush=alive)
            if not alive:
                self.get_logger().info("shutting down: decisions still queued were not published")
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point: ``rclpy.init`` / spin / ``destroy_node`` / ``shutdown``; a start-up error is one log line and
    exit status 2 (the launch files end the launch on it)."""
    rclpy.init(args=args)
    node = None
    try:
        node = PlaceRecognitionNode()
        rclpy.spin(node)
    except StartupError as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {exc}")
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
