"""A decision as ROS messages: the one definition of what the node publishes and what output bags record.

``decision_messages`` is pure: it takes a ``PlaceResult`` and a message factory (rclpy's message classes in the node,
the rosbags typestore in replay) and returns the ``place`` and ``ops`` messages. Standard message types only:

- ``place`` (``vision_msgs/msg/Classification``), stamped with the window's last input, ``frame_id`` of the input
  image; one ``ObjectHypothesis`` per top-k entry, best first (``class_id`` = place name, ``score`` = softmax
  probability, after the route filter when it is on). An **unknown place** (``PlaceResult.known`` False: the
  bundle's detector finds the window unlike the route's training windows, or, without one, the confidence is below
  the calibrated threshold: the robot is probably off its map) is published with a first hypothesis
  ``class_id = "unknown"`` (``UNKNOWN_CLASS_ID``, score = 1 - best probability) followed by the best guesses.
- ``place_raw`` (same type), only with the route filter on: the classifier's own top-k before filtering.
- ``ops`` (``diagnostic_msgs/msg/DiagnosticArray``, same header), one status ``hstnn_ros/ops`` whose key-values
  (``OPS_KEYS``) are the operations of that decision by component, spike rates, latency and the place id. A
  DiagnosticArray rather than ``Float64MultiArray`` because it carries the header and self-describing keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hstnn_ros.runtime.engine import PlaceResult

#: Relative topic names (the node's namespace; remap to move them). Output bags record them under "/".
PLACE_TOPIC = "place"
PLACE_RAW_TOPIC = "place_raw"
OPS_TOPIC = "ops"
#: ``class_id`` of the first hypothesis of a decision whose place is unknown.
UNKNOWN_CLASS_ID = "unknown"
PLACE_TYPE = "vision_msgs/msg/Classification"
OPS_TYPE = "diagnostic_msgs/msg/DiagnosticArray"
OPS_STATUS_NAME = "hstnn_ros/ops"
#: Keys of the ``ops`` status, in order.
OPS_KEYS = (
    "place_id", "known", "raw_place_id", "event_frontend_macs", "event_frontend_acs", "rgb_frontend_macs",
    "rgb_frontend_acs", "hstnn_macs", "hstnn_acs", "total_macs", "total_acs", "event_frontend_spike_rate",
    "hstnn_spike_rates", "latency_s",
)

#: ``factory(type_name, **fields) -> message``: builds a message of a ROS type from keyword fields.
MessageFactory = Callable[..., Any]


def ops_values(result: PlaceResult) -> dict[str, str]:
    """The ``ops`` key-values of a decision (``OPS_KEYS`` order; numbers as text, as KeyValue carries them)."""
    o = result.ops
    values: dict[str, Any] = {
        "place_id": result.place_id, "known": str(result.known).lower(), "raw_place_id": result.raw_place_id,
        "event_frontend_macs": o.event_frontend_macs, "event_frontend_acs": o.event_frontend_acs,
        "rgb_frontend_macs": o.rgb_frontend_macs, "rgb_frontend_acs": o.rgb_frontend_acs,
        "hstnn_macs": o.hstnn_macs, "hstnn_acs": o.hstnn_acs, "total_macs": o.total_macs, "total_acs": o.total_acs,
        "event_frontend_spike_rate": o.event_frontend_spike_rate,
        "hstnn_spike_rates": ",".join(f"{s:.4f}" for s in o.hstnn_spike_rates),
        "latency_s": result.latency_s,
    }
    return {k: str(values[k]) for k in OPS_KEYS}


def stamp_fields(stamp_ns: int) -> dict[str, int]:
    """``builtin_interfaces/Time`` fields of a stamp in ns."""
    return {"sec": int(stamp_ns // 1_000_000_000), "nanosec": int(stamp_ns % 1_000_000_000)}


def decision_messages(result: PlaceResult, factory: MessageFactory, *, frame_id: str = "") -> tuple[Any, Any, Any]:
    """The ``place``, ``ops`` and ``place_raw`` (``None`` without the route filter) messages of one decision, built
    with ``factory`` (see the module docstring)."""
    header = factory("std_msgs/msg/Header", stamp=factory("builtin_interfaces/msg/Time",
                                                          **stamp_fields(result.stamp_ns)), frame_id=frame_id)

    def hyp(name: str, score: float) -> Any:
        return factory("vision_msgs/msg/ObjectHypothesis", class_id=name, score=float(score))

    hyps = [hyp(name, p) for name, (_, p) in zip(result.top_k_names, result.top_k, strict=True)]
    if not result.known:
        hyps.insert(0, hyp(UNKNOWN_CLASS_ID, 1.0 - result.score))
    place = factory(PLACE_TYPE, header=header, results=hyps)
    raw = None
    if result.raw_top_k:
        raw = factory(PLACE_TYPE, header=header, results=[hyp(str(i), p) for i, p in result.raw_top_k])
    values = [factory("diagnostic_msgs/msg/KeyValue", key=k, value=v) for k, v in ops_values(result).items()]
    status = factory("diagnostic_msgs/msg/DiagnosticStatus", level=0, name=OPS_STATUS_NAME,
                     message="operations of this decision", hardware_id="hstnn", values=values)
    ops = factory(OPS_TYPE, header=header, status=[status])
    return place, ops, raw
