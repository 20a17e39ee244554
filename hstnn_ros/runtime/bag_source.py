"""rosbag2 recordings as time-ordered ``ReplayItem``s, and an output bag with the node's topics.

Reading, message registration and storage quirks belong to ``hstnn_ros.bags``; event decoding to
``hstnn_ros.perception.events``; image decoding to ``hstnn_ros.perception.images``. This module only picks the topics,
wires the decoders and turns messages into engine inputs (the same path the node uses).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hstnn_ros.errors import HstnnError
from hstnn_ros.runtime.engine import PlaceResult
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.pipeline import Pipeline
from hstnn_ros.runtime.presets import SceneStats
from hstnn_ros.runtime.replay import ItemKind, ReplayItem
from hstnn_ros.runtime.ros_codec import image_to_array, stream_decoder

LOG = logging.getLogger(__name__)

EVENT_TYPES = (
    "event_camera_msgs/msg/EventPacket",
    "event_array_msgs/msg/EventArray",
    "dvs_msgs/msg/EventArray",
    "dv_ros2_msgs/msg/EventArray",
)
IMAGE_TYPE = "sensor_msgs/msg/Image"
LABEL_TYPES = ("std_msgs/msg/UInt32", "std_msgs/msg/Int32", "std_msgs/msg/UInt16", "std_msgs/msg/Int64")
#: Output topics of the node (and of ``--output-bag``).
OUT_PLACE, OUT_OPS = "/place", "/place/ops"


@dataclass(frozen=True)
class BagTopics:
    """Topic names to read; ``None`` = discover from the bag's connections."""

    events: str | None = None
    image: str | None = None
    depth: str | None = None
    label: str | None = None


class BagSource:
    """One rosbag2 recording as engine inputs (see ``items``)."""

    def __init__(self, path: Path, topics: BagTopics) -> None:
        from hstnn_ros import bags  # noqa: PLC0415

        self.path = Path(path)
        self._bags = bags
        try:
            with bags.BagReader(self.path) as reader:
                self.types = dict(reader.topics)
                self.counts = dict(getattr(reader, "message_counts", {}) or {})
        except HstnnError as exc:
            raise RuntimeEngineError(f"{self.path}: cannot open the bag: {exc}") from exc
        self.topics = self._resolve(topics)
        self.message_count = sum(self.counts.get(t, 0) for t in self._selected()) or None
        stream_decoder(self.types[self.topics.events])  # loads the decoding kernels now, not in the first item

    def _resolve(self, want: BagTopics) -> BagTopics:
        def pick(name: str | None, ok: tuple[str, ...], what: str, prefer: str = "") -> str | None:
            if name is not None:
                if name not in self.types:
                    raise RuntimeEngineError(f"{self.path}: no topic {name!r} (topics: {sorted(self.types)})")
                if self.types[name] not in ok:
                    raise RuntimeEngineError(f"{self.path}: {what} topic {name!r} is {self.types[name]}, expected "
                                             f"one of {ok}")
                return name
            cands = sorted(t for t, ty in self.types.items() if ty in ok)
            if prefer:
                cands = [t for t in cands if (prefer in t) == (prefer == "depth")] or []
            return cands[0] if cands else None

        events = pick(want.events, EVENT_TYPES, "event")
        if events is None:
            raise RuntimeEngineError(f"{self.path}: no event topic of types {EVENT_TYPES} (topics: "
                                     f"{sorted(self.types)}); pass --events-topic")
        depth = pick(want.depth, (IMAGE_TYPE,), "depth", prefer="depth")
        image = want.image
        if image is None:
            colour = sorted(t for t, ty in self.types.items() if ty == IMAGE_TYPE and "depth" not in t)
            image = colour[0] if colour else None
        else:
            pick(image, (IMAGE_TYPE,), "image")
        label = pick(want.label, LABEL_TYPES, "label") if want.label else None
        return BagTopics(events=events, image=image, depth=depth if image else None, label=label)

    def _selected(self) -> list[str]:
        t = self.topics
        return [x for x in (t.events, t.image, t.depth, t.label) if x]

    def items(self) -> Iterator[ReplayItem]:
        """Engine inputs in timestamp order (bag receive time). Depth frames are paired with the colour frame of the
        same header stamp; an undecodable message becomes a ``MALFORMED`` item (counted, never raised)."""
        t = self.topics
        decoder = stream_decoder(self.types[t.events])
        depth_by_stamp: dict[int, np.ndarray] = {}
        pending_rgb: dict[int, tuple[int, np.ndarray]] = {}
        with self._bags.BagReader(self.path) as reader:
            for m in reader.messages(topics=self._selected()):
                try:
                    msg = reader.deserialize(m)
                    if m.topic == t.events:
                        for batch in decoder.decode(msg):
                            if len(batch.t_ns):
                                yield ReplayItem(ItemKind.EVENTS, int(batch.t_ns[-1]), batch)
                    elif m.topic == t.label:
                        yield ReplayItem(ItemKind.LABEL, m.t_ns, int(msg.data))
                    else:
                        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                        img = image_to_array(msg)
                        if m.topic == t.depth:
                            if stamp in pending_rgb:
                                _, rgb = pending_rgb.pop(stamp)
                                yield ReplayItem(ItemKind.IMAGE, stamp, (rgb, img))
                            else:
                                depth_by_stamp[stamp] = img
                        elif t.depth is None:
                            yield ReplayItem(ItemKind.IMAGE, stamp, (img, None))
                        elif stamp in depth_by_stamp:
                            yield ReplayItem(ItemKind.IMAGE, stamp, (img, depth_by_stamp.pop(stamp)))
                        else:
                            pending_rgb[stamp] = (m.t_ns, img)
                        # a colour frame whose depth never came is used without depth after 1 s of bag time
                        for s in [s for s, (tr, _) in pending_rgb.items() if m.t_ns - tr > 1_000_000_000]:
                            yield ReplayItem(ItemKind.IMAGE, s, (pending_rgb.pop(s)[1], None))
                        for s in [s for s in depth_by_stamp if stamp - s > 1_000_000_000]:
                            del depth_by_stamp[s]
                except HstnnError as exc:
                    yield ReplayItem(ItemKind.MALFORMED, m.t_ns, f"{m.topic}: {exc}")
            for s, (_, rgb) in sorted(pending_rgb.items()):
                yield ReplayItem(ItemKind.IMAGE, s, (rgb, None))

    def scene_stats(self, seconds: float = 1.0) -> SceneStats:
        """Mean RGB brightness and events/s/pixel over the first ``seconds`` of the recording (for ``auto``)."""
        n_ev, t0, t1, bright, wh = 0, None, None, [], None
        for item in replace_depth(self.items()):
            t0 = item.stamp_ns if t0 is None else t0
            if item.stamp_ns - t0 > seconds * 1e9:
                break
            t1 = item.stamp_ns
            if item.kind is ItemKind.EVENTS:
                n_ev += len(item.payload.t_ns)
                wh = (item.payload.width, item.payload.height)
            elif item.kind is ItemKind.IMAGE:
                bright.append(float(item.payload[0].mean()) / 255.0)
        span = max(((t1 or 0) - (t0 or 0)) / 1e9, 1e-3)
        rate = n_ev / span / (wh[0] * wh[1]) if wh else 0.0
        return SceneStats(float(np.mean(bright)) if bright else math.nan, rate)


def check_model_fits(source: BagSource, pipeline: Pipeline) -> None:
    """Refuse, naming the fix, a model that needs RGB frames on a bag without a colour topic (event-only bags run only
    with an events-only model: the RGB part of each step must be what the model saw in training, not a silent zero)."""
    if not pipeline.events_only and source.topics.image is None:
        raise RuntimeEngineError(
            f"{source.path}: no colour image topic, but model {pipeline.metadata.get('bundle', '(given)')} needs RGB "
            "frames; replay it with an events-only model (--model models/events_only, shipped)"
        )


def replace_depth(items: Iterator[ReplayItem]) -> Iterator[ReplayItem]:
    """Items with depth dropped (statistics need colour only)."""
    for it in items:
        yield replace(it, payload=(it.payload[0], None)) if it.kind is ItemKind.IMAGE else it


def open_bag(path: Path, topics: BagTopics | None = None) -> BagSource:
    """Open ``path`` for replay; raises ``RuntimeEngineError`` naming the bag and the missing piece."""
    if not Path(path).exists():
        raise RuntimeEngineError(f"{path}: no such bag directory")
    return BagSource(Path(path), topics or BagTopics())


class OutputBagWriter:
    """Writes results as the node publishes them: ``/place`` (vision_msgs/Classification) and ``/place/ops``
    (diagnostic_msgs/DiagnosticArray), stamped and timed with the decision's stamp."""

    def __init__(self, out_dir: Path, pipeline: Pipeline) -> None:
        from hstnn_ros import bags  # noqa: PLC0415

        self.pipeline = pipeline
        self._ctx = bags.BagWriter(out_dir)
        self._w = self._ctx.__enter__()
        self._ts = self._w.typestore
        self._place = self._w.add_connection(OUT_PLACE, "vision_msgs/msg/Classification")
        self._ops = self._w.add_connection(OUT_OPS, "diagnostic_msgs/msg/DiagnosticArray")

    def _header(self, ns: int, frame: str) -> Any:
        T = self._ts.types
        stamp = T["builtin_interfaces/msg/Time"](sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
        return T["std_msgs/msg/Header"](stamp=stamp, frame_id=frame)

    def write(self, results: list[PlaceResult]) -> None:
        """Append the messages of ``results``."""
        T = self._ts.types
        for r in results:
            hyps = [T["vision_msgs/msg/ObjectHypothesis"](class_id=self.pipeline.place_name(i), score=float(p))
                    for i, p in r.top_k]
            msg = T["vision_msgs/msg/Classification"](header=self._header(r.stamp_ns, "place"), results=hyps)
            self._w.write(self._place, r.stamp_ns, self._ts.serialize_cdr(msg, "vision_msgs/msg/Classification"))
            kv = T["diagnostic_msgs/msg/KeyValue"]
            o = r.ops
            values = [kv(key=k, value=str(v)) for k, v in (
                ("event_frontend_macs", o.event_frontend_macs), ("event_frontend_acs", o.event_frontend_acs),
                ("rgb_frontend_macs", o.rgb_frontend_macs), ("hstnn_macs", o.hstnn_macs), ("hstnn_acs", o.hstnn_acs),
                ("total_macs", o.total_macs), ("total_acs", o.total_acs), ("latency_s", r.latency_s))]
            status = T["diagnostic_msgs/msg/DiagnosticStatus"](level=0, name="hstnn_ros/ops",
                                                                message="operations of this decision",
                                                                hardware_id="hstnn", values=values)
            arr = T["diagnostic_msgs/msg/DiagnosticArray"](header=self._header(r.stamp_ns, ""), status=[status])
            self._w.write(self._ops, r.stamp_ns, self._ts.serialize_cdr(arr, "diagnostic_msgs/msg/DiagnosticArray"))

    def close(self) -> None:
        """Finish the bag."""
        self._ctx.__exit__(None, None, None)


def output_bag_writer(out_dir: Path, pipeline: Pipeline) -> OutputBagWriter:
    """An output bag in ``out_dir`` (must not exist yet) with the node's topics."""
    if Path(out_dir).exists():
        raise RuntimeEngineError(f"{out_dir}: output bag exists already; remove it or choose another --out")
    return OutputBagWriter(Path(out_dir), pipeline)
