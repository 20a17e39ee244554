"""rosbag2 recordings as time-ordered ``ReplayItem``s, and an output bag with the node's topics.

Reading, message registration and storage quirks belong to ``hstnn_ros.bags``; event decoding to
``hstnn_ros.perception.events``; image decoding to ``hstnn_ros.perception.images``. This module only picks the topics,
wires the decoders and turns messages into engine inputs (the same path the node uses).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hstnn_ros import bags, defaults
from hstnn_ros.bags.cdr import read_event_packet
from hstnn_ros.datasets.errors import DatasetError
from hstnn_ros.datasets.topics import Topics, resolve_topics
from hstnn_ros.errors import HstnnError
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.stream import PACKET_MSGTYPES
from hstnn_ros.perception.pairing import Paired, RgbdPairer
from hstnn_ros.runtime.engine import PlaceResult
from hstnn_ros.runtime.enums import ItemKind
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.messages import (
    OPS_TOPIC,
    OPS_TYPE,
    PLACE_RAW_TOPIC,
    PLACE_TOPIC,
    PLACE_TYPE,
    decision_messages,
)
from hstnn_ros.runtime.pipeline import Pipeline
from hstnn_ros.runtime.presets import SceneMeter, SceneStats
from hstnn_ros.runtime.replay import ReplayItem
from hstnn_ros.runtime.ros_codec import image_to_array, stream_decoder

LOG = logging.getLogger(__name__)



@dataclass
class SourceSeconds:
    """Wall seconds a ``BagSource.items`` pass spent reading the bag (storage, as its messages come), decoding event
    messages and deserializing + decoding images (sums, not counting the consumer's time between items)."""

    read: float = 0.0
    events: float = 0.0
    images: float = 0.0


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
        self.path = Path(path)
        self._bags = bags
        try:
            with bags.BagReader(self.path) as reader:
                self.types = dict(reader.topics)
                self.counts = dict(getattr(reader, "message_counts", {}) or {})
        except HstnnError as exc:
            raise RuntimeEngineError(f"{self.path}: cannot open the bag: {exc}") from exc
        self.topics = self._resolve(topics)
        if self.topics.events is None:  # unreachable: topic discovery refuses a bag without an event topic
            raise RuntimeEngineError(f"{self.path}: no event topic")
        self._events_topic: str = self.topics.events
        self.message_count = sum(self.counts.get(t, 0) for t in self._selected()) or None
        stream_decoder(self.types[self._events_topic])  # loads the decoding kernels now, not in the first item

    def _resolve(self, want: BagTopics) -> BagTopics:
        """The topics to read: the one discovery rule of dataset building (``datasets.topics.resolve_topics``)."""
        try:
            t = resolve_topics(self.types, Topics(events=want.events, rgb=want.image, depth=want.depth,
                                                  label=want.label), source=self.path)
        except DatasetError as exc:
            raise RuntimeEngineError(str(exc).replace("--rgb-topic", "--image-topic")
                                     .replace("--label topic:NAME", "--label-topic")) from exc
        return BagTopics(events=t.events, image=t.rgb, depth=t.depth if t.rgb else None, label=t.label)

    def _selected(self) -> list[str]:
        t = self.topics
        return [x for x in (t.events, t.image, t.depth, t.label) if x]

    def items(self) -> Iterator[ReplayItem]:
        """Engine inputs in timestamp order (bag receive time). Colour frames are paired with depth by the one
        pairing rule (``RgbdPairer``: nearest stamp within the slop, a colour frame whose depth does not come goes on
        without it, counted); an undecodable message becomes a ``MALFORMED`` item (counted, never raised). Event
        messages are decoded from their CDR bytes (no message objects: the node's path; undecodable dvs arrays are
        counted by the decoder, ``decode_counters``)."""
        t = self.topics
        decoder = stream_decoder(self.types[self._events_topic])
        pairer: RgbdPairer[np.ndarray, np.ndarray] = RgbdPairer()
        self.pairing = pairer.counters

        def frames(ready: list[Paired]) -> Iterator[ReplayItem]:
            for f in ready:
                yield ReplayItem(ItemKind.IMAGE, f.stamp_ns, (f.colour, f.depth))

        sec = self.seconds = SourceSeconds()
        clock = time.perf_counter
        with self._bags.BagReader(self.path) as reader:
            messages = reader.messages(topics=self._selected())
            while True:
                t0 = clock()
                m = next(messages, None)
                t1 = clock()
                sec.read += t1 - t0
                if m is None:
                    break
                try:
                    if m.topic == t.events:
                        batches = _event_batches(decoder, m.msgtype, m.data)
                        sec.events += clock() - t1
                        for batch in batches:
                            if len(batch.t_ns):
                                yield ReplayItem(ItemKind.EVENTS, int(batch.t_ns[-1]), batch)
                        continue
                    msg = reader.deserialize(m)
                    if m.topic == t.label:
                        yield ReplayItem(ItemKind.LABEL, m.t_ns, int(msg.data))
                    else:
                        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                        img = image_to_array(msg)
                        sec.images += clock() - t1
                        if m.topic == t.depth:
                            yield from frames(pairer.push_depth(stamp, img))
                        elif t.depth is None:
                            yield ReplayItem(ItemKind.IMAGE, stamp, (img, None))
                        else:
                            yield from frames(pairer.push_colour(stamp, img))
                except HstnnError as exc:
                    yield ReplayItem(ItemKind.MALFORMED, m.t_ns, f"{m.topic}: {exc}")
            yield from frames(pairer.flush())
        self.decode_counters = decoder.counters

    def scene_stats(self, seconds: float = defaults.SCENE_SECONDS) -> SceneStats:
        """Scene statistics (``SceneMeter``) over the first ``seconds`` of the recording, for ``auto``."""
        meter = SceneMeter(seconds=seconds)
        for item in self.items():
            if item.kind is ItemKind.EVENTS:
                meter.add_events(item.payload)
            elif item.kind is ItemKind.IMAGE:
                meter.add_image(item.stamp_ns, item.payload[0])
            if meter.ready:
                break
        return meter.stats()


def _event_batches(decoder: Any, msgtype: str, data: bytes) -> list[EventBatch]:
    """The events of one message, straight from its CDR bytes as the node decodes them."""
    if msgtype in PACKET_MSGTYPES:
        try:
            fields = read_event_packet(data)
        except ValueError as exc:
            raise RuntimeEngineError(f"undecodable {msgtype} ({exc})") from exc
        batch = decoder.decode_fields(fields)
        return [batch] if len(batch) else []
    return decoder.decode(msgtype, data)


def check_model_fits(source: BagSource, pipeline: Pipeline) -> None:
    """Refuse, naming the fix, a model that needs RGB frames on a bag without a colour topic (event-only bags run only
    with an events-only model: the RGB part of each step must be what the model saw in training, not a silent zero)."""
    if not pipeline.events_only and source.topics.image is None:
        raise RuntimeEngineError(
            f"{source.path}: no colour image topic, but model {pipeline.metadata.get('bundle', '(given)')} needs RGB "
            "frames; replay it with an events-only model (--model models/events_only, shipped)"
        )


def open_bag(path: Path, topics: BagTopics | None = None) -> BagSource:
    """Open ``path`` for replay; raises ``RuntimeEngineError`` naming the bag and the missing piece."""
    if not Path(path).exists():
        raise RuntimeEngineError(f"{path}: no such bag directory")
    return BagSource(Path(path), topics or BagTopics())


class OutputBagWriter:
    """Writes results as the node publishes them (``decision_messages``): ``/place`` and ``/ops``, stamped and timed
    with the decision's stamp."""

    def __init__(self, out_dir: Path, frame_id: str = "") -> None:
        self.frame_id = frame_id
        self._ctx = bags.BagWriter(out_dir)
        self._w = self._ctx.__enter__()
        self._ts = self._w.typestore
        self._place = self._w.add_connection("/" + PLACE_TOPIC, PLACE_TYPE)
        self._ops = self._w.add_connection("/" + OPS_TOPIC, OPS_TYPE)
        self._raw: Any = None

    def _make(self, msgtype: str, **fields: Any) -> Any:
        return self._ts.types[msgtype](**fields)

    def write(self, results: list[PlaceResult]) -> None:
        """Append the messages of ``results``."""
        for r in results:
            place, ops, raw = decision_messages(r, self._make, frame_id=self.frame_id)
            self._w.write(self._place, r.stamp_ns, self._ts.serialize_cdr(place, PLACE_TYPE))
            self._w.write(self._ops, r.stamp_ns, self._ts.serialize_cdr(ops, OPS_TYPE))
            if raw is not None:
                if self._raw is None:
                    self._raw = self._w.add_connection("/" + PLACE_RAW_TOPIC, PLACE_TYPE)
                self._w.write(self._raw, r.stamp_ns, self._ts.serialize_cdr(raw, PLACE_TYPE))

    def close(self) -> None:
        """Finish the bag."""
        self._ctx.__exit__(None, None, None)


def output_bag_writer(out_dir: Path, frame_id: str = "") -> OutputBagWriter:
    """An output bag in ``out_dir`` (must not exist yet) with the node's topics."""
    if Path(out_dir).exists():
        raise RuntimeEngineError(f"{out_dir}: output bag exists already; remove it or choose another --out")
    return OutputBagWriter(Path(out_dir), frame_id)
