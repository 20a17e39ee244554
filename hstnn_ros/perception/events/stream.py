"""Per-stream event decoding: one ``StreamDecoder`` per topic turns event messages (objects or CDR bytes) into
``EventBatch``es in ROS time, keeps the state of stateful encodings, and counts everything that was wrong.

Bad input never stops the stream (unless ``strict``): unknown encodings, truncated payloads, coordinates outside the
sensor, time going backwards, empty packets and resolution changes are counted in ``DecodeCounters`` with a
description of the last few problems, and the usable rest is returned.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hstnn_ros.perception.errors import DecodeError
from hstnn_ros.perception.events import codecs
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.cdr import DVS_MSGTYPES, decode_dvs_cdr
from hstnn_ros.perception.events.enums import Encoding, TimeMode
from hstnn_ros.perception.events.kernels import check_events

LOG = logging.getLogger(__name__)

PACKET_MSGTYPES = ("event_camera_msgs/msg/EventPacket", "event_array_msgs/msg/EventArray")
#: Every event message type the decoders read.
EVENT_MSGTYPES = PACKET_MSGTYPES + DVS_MSGTYPES

#: Encoders by ``EventPacket.encoding``: ``fn(batch) -> (payload bytes, time_base_ns)``.
ENCODERS: dict[str, Callable[[EventBatch], tuple[bytes, int]]] = {
    Encoding.EVT3.value: codecs.encode_evt3,
    Encoding.LIBCAER_CMP.value: codecs.encode_libcaer_cmp,
    Encoding.LIBCAER.value: codecs.encode_libcaer,
    Encoding.MONO.value: codecs.encode_mono,
}


@dataclass
class DecodeCounters:
    """What a stream decoder saw: messages, events, and each kind of problem (``recent`` keeps the last 20 problem
    descriptions)."""

    messages: int = 0
    events: int = 0
    triggers: int = 0
    empty_packets: int = 0
    unknown_encoding: int = 0
    truncated: int = 0
    malformed: int = 0
    out_of_bounds: int = 0
    time_backwards: int = 0
    resolution_changes: int = 0
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    def note(self, what: str) -> None:
        """Record a problem description (also logged at debug level)."""
        self.recent.append(what)
        LOG.debug(what)

    @property
    def problems(self) -> int:
        """Total count of problems of every kind."""
        return (self.unknown_encoding + self.truncated + self.malformed + self.out_of_bounds + self.time_backwards
                + self.resolution_changes)

    def summary(self) -> dict[str, int]:
        """Counts as a plain dict (for reports and diagnostics)."""
        return {k: v for k, v in vars(self).items() if isinstance(v, int)}


@dataclass(frozen=True)
class Triggers:
    """External trigger edges of one packet (evt3 EXT_TRIGGER words), in the same time base as the events."""

    t_ns: np.ndarray
    id: np.ndarray
    edge: np.ndarray


def _stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class StreamDecoder:
    """Decode one event stream (one topic) into ``EventBatch``es.

    ``decode(msg)`` takes a message object (``EventPacket``, legacy ``EventArray``, dvs/dv_ros2 ``EventArray``);
    ``decode(msgtype, data)`` takes serialized CDR bytes (what rosbags or an rclpy ``raw=True`` subscription gives).
    Returned batches are in ROS time (see ``TimeMode``), inside the sensor, and never go back in time relative to
    earlier batches of the stream (offending events are dropped and counted). ``last_triggers`` holds the previous
    packet's trigger edges.
    """

    def __init__(self, msgtype: str | None = None, time_mode: TimeMode = TimeMode.ROS, strict: bool = False) -> None:
        if msgtype is not None and msgtype not in EVENT_MSGTYPES:
            raise DecodeError(f"no event decoder for message type {msgtype}; supported: {EVENT_MSGTYPES}")
        self.msgtype = msgtype
        self.time_mode = TimeMode(time_mode)
        self.strict = strict
        self.counters = DecodeCounters()
        self.last_triggers = Triggers(np.zeros(0, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.uint8))
        self._evt3 = codecs.Evt3State()
        self._cmp = codecs.LibcaerCmpState()
        self._size: tuple[int, int] | None = None
        self._encoding: str | None = None
        self._offset_ns: int | None = None
        self._last_t = np.iinfo(np.int64).min

    def reset(self) -> None:
        """Forget the stream state (after a seek or a camera restart); counters are kept."""
        self._evt3, self._cmp = codecs.Evt3State(), codecs.LibcaerCmpState()
        self._size = self._encoding = self._offset_ns = None
        self._last_t = np.iinfo(np.int64).min

    def _problem(self, counter: str, what: str) -> None:
        setattr(self.counters, counter, getattr(self.counters, counter) + 1)
        self.counters.note(what)
        if self.strict:
            raise DecodeError(what)

    def decode(self, msg_or_msgtype: Any, data: bytes | memoryview | None = None) -> EventBatch:
        """One message -> its events (possibly empty). Raises ``DecodeError`` only in ``strict`` mode or for a
        message of a type this decoder cannot read at all."""
        self.counters.messages += 1
        if data is not None:
            msgtype = str(msg_or_msgtype)
            if msgtype in DVS_MSGTYPES:
                return self._decode_dvs(data)
            if msgtype not in PACKET_MSGTYPES:
                raise DecodeError(f"no event decoder for message type {msgtype}; supported: {EVENT_MSGTYPES}")
            from hstnn_ros.bags import typestore  # noqa: PLC0415  (bags is below perception)

            try:
                msg = typestore().deserialize_cdr(bytes(data), msgtype)
            except Exception as exc:  # rosbags raises assorted errors on malformed CDR
                self._problem("malformed", f"{msgtype}: undecodable CDR ({type(exc).__name__}: {exc})")
                return self._empty()
            return self._decode_packet(msg)
        msg = msg_or_msgtype
        if hasattr(msg, "encoding") and hasattr(msg, "time_base"):
            return self._decode_packet(msg)
        if hasattr(msg, "events") and hasattr(msg, "width"):
            return self._decode_dvs_obj(msg)
        raise DecodeError(f"not an event message: {type(msg).__name__}; supported: {EVENT_MSGTYPES}")

    def _empty(self) -> EventBatch:
        w, h = self._size or (1, 1)
        return EventBatch.empty(w, h)

    def _check_size(self, width: int, height: int) -> bool:
        if width <= 0 or height <= 0:
            self._problem("malformed", f"event message with sensor size {width}x{height}")
            return False
        if self._size is not None and self._size != (width, height):
            self._problem("resolution_changes", f"sensor size changed from {self._size[0]}x{self._size[1]} to "
                                                f"{width}x{height} mid-stream; stream state reset")
            size = (width, height)
            self.reset()
            self._size = size
        self._size = (width, height)
        return True

    def decode_many(self, msgs: Sequence[Any]) -> EventBatch:
        """The events of several consecutive message objects of this stream, as one batch. Runs of evt3 packets
        (one continuous word stream) are concatenated and decoded in one call, which removes the per-call overhead
        of small packets (replay, dataset building); the result equals decoding them one by one, except that a
        stream not yet anchored to ROS time is anchored to the run's first header stamp."""
        out: list[EventBatch] = []
        i = 0
        while i < len(msgs):
            m = msgs[i]
            j = i + 1
            if getattr(m, "encoding", None) == Encoding.EVT3:
                size = (m.width, m.height)
                while j < len(msgs) and getattr(msgs[j], "encoding", None) == Encoding.EVT3 and (
                        msgs[j].width, msgs[j].height) == size:
                    j += 1
            if j - i == 1:
                out.append(self.decode(m))
            else:
                group = msgs[i:j]
                self.counters.messages += len(group)
                self.counters.empty_packets += sum(1 for g in group[1:] if len(g.events) == 0)
                payload = np.concatenate([np.asarray(g.events, np.uint8) for g in group])
                out.append(self._decode_packet(m, payload))
            i = j
        return EventBatch.concat(out) if out else self._empty()

    def _decode_packet(self, msg: Any, payload: np.ndarray | None = None) -> EventBatch:
        width, height = int(msg.width), int(msg.height)
        if not self._check_size(width, height):
            return self._empty()
        enc = str(msg.encoding)
        payload = msg.events if payload is None else payload
        if len(payload) == 0:
            self.counters.empty_packets += 1
            return EventBatch.empty(width, height)
        if self._encoding is not None and enc != self._encoding and enc in ENCODERS:
            self.counters.note(f"encoding changed from {self._encoding} to {enc}; stream state reset")
            self._evt3, self._cmp, self._offset_ns = codecs.Evt3State(), codecs.LibcaerCmpState(), None
        try:
            if enc == Encoding.EVT3:
                d = codecs.decode_evt3(payload, self._evt3)
            elif enc == Encoding.LIBCAER_CMP:
                d = codecs.decode_libcaer_cmp(payload, int(msg.time_base), self._cmp)
            elif enc == Encoding.LIBCAER:
                d = codecs.decode_libcaer(payload, int(msg.time_base))
            elif enc == Encoding.MONO:
                d = codecs.decode_mono(payload, int(msg.time_base))
            else:
                self._problem("unknown_encoding", f"unknown event encoding {enc!r} (supported: {list(ENCODERS)}); "
                                                  "packet skipped")
                return EventBatch.empty(width, height)
        except (ValueError, IndexError, OverflowError) as exc:  # defensive: never let numpy errors escape
            self._problem("malformed", f"{enc}: undecodable payload of {len(payload)} bytes ({exc})")
            return EventBatch.empty(width, height)
        self._encoding = enc
        for what in d.problems:
            self._problem("truncated" if "truncated" in what else "malformed", what)
        t = d.t_ns
        trig_t = d.trig_t_ns
        if self.time_mode is TimeMode.ROS and enc == Encoding.EVT3:
            if self._offset_ns is None and len(t):
                self._offset_ns = _stamp_ns(msg.header) - int(t[0])
            off = self._offset_ns or 0
            t = t + off
            trig_t = trig_t + off
        if len(trig_t):
            self.counters.triggers += len(trig_t)
        self.last_triggers = Triggers(trig_t, d.trig_id, d.trig_edge)
        return self._finish(t, d.x, d.y, d.p, width=width, height=height)

    def _decode_dvs(self, data: bytes | memoryview) -> EventBatch:
        try:
            batch, _stamp, _fid = decode_dvs_cdr(data)
        except DecodeError as exc:
            self._problem("truncated" if "truncated" in str(exc) else "malformed", str(exc))
            return self._empty()
        if not self._check_size(batch.width, batch.height):
            return self._empty()
        if len(batch) == 0:
            self.counters.empty_packets += 1
        return self._finish(batch.t_ns, batch.x, batch.y, batch.p, width=batch.width, height=batch.height)

    def _decode_dvs_obj(self, msg: Any) -> EventBatch:
        width, height = int(msg.width), int(msg.height)
        if not self._check_size(width, height):
            return self._empty()
        ev = msg.events
        if len(ev) == 0:
            self.counters.empty_packets += 1
            return EventBatch.empty(width, height)
        x = np.fromiter((e.x for e in ev), np.int64, len(ev))
        y = np.fromiter((e.y for e in ev), np.int64, len(ev))
        t = np.fromiter((e.ts.sec * 1_000_000_000 + e.ts.nanosec for e in ev), np.int64, len(ev))
        p = np.fromiter((bool(e.polarity) for e in ev), np.int64, len(ev))
        return self._finish(t, x, y, p, width=width, height=height)

    def _finish(self, t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray, *, width: int,
                height: int) -> EventBatch:
        keep, bad, back, bx, by, last = check_events(t, x, y, width, height, self._last_t)
        self._last_t = int(last)
        if bad:
            self._problem("out_of_bounds", f"{bad} events outside the {width}x{height} sensor dropped (e.g. "
                                           f"x={int(bx)}, y={int(by)})")
        if back > 0:
            self._problem("time_backwards", f"{back} events earlier than the stream's latest time dropped")
        if bad or back:
            t, x, y, p = t[keep], x[keep], y[keep], p[keep]
        self.counters.events += len(t)
        return EventBatch(t, x, y, p, width, height)


class MessageDecoder(StreamDecoder):
    """A ``StreamDecoder`` for message objects whose ``decode(msg)`` returns a list: one batch, or none for an
    empty or unusable message (the shape the replay loop iterates over)."""

    def decode(self, msg_or_msgtype: Any, data: bytes | memoryview | None = None) -> list[EventBatch]:  # type: ignore[override]
        batch = super().decode(msg_or_msgtype, data)
        return [batch] if len(batch) else []


_WARM: list[float] = []  # seconds the one warm-up took (empty: not yet)


def warm_up() -> float:
    """Load (or compile) every compiled decoding kernel now by decoding a tiny packet of each encoding and a dvs
    EventArray, so that the first real message is not delayed by ~1 s (a node at start-up, a replay before its
    clock starts). Once per process; returns the seconds it took (0.0 after the first call)."""
    if _WARM:
        return 0.0
    import time  # noqa: PLC0415
    from types import SimpleNamespace  # noqa: PLC0415

    from hstnn_ros.perception.events.cdr import encode_dvs_event_array  # noqa: PLC0415

    t0 = time.perf_counter()
    batch = EventBatch(np.array([1_000, 2_000, 70_000_000], np.int64), np.array([1, 2, 3], np.uint16),
                       np.array([4, 5, 6], np.uint16), np.array([0, 1, 1], np.uint8), 8, 8)
    header = SimpleNamespace(stamp=SimpleNamespace(sec=0, nanosec=0), frame_id="")
    dec = StreamDecoder()
    for enc, encode in ENCODERS.items():
        payload, base = encode(batch)
        dec.reset()
        dec.decode(SimpleNamespace(encoding=enc, time_base=base, width=8, height=8, header=header,
                                   events=np.frombuffer(payload, np.uint8)))
    dec.reset()
    dec.decode(DVS_MSGTYPES[0], encode_dvs_event_array(batch))
    _WARM.append(time.perf_counter() - t0)
    return _WARM[0]


def make_decoder(msgtype: str, time_mode: TimeMode = TimeMode.ROS) -> MessageDecoder:
    """A per-topic decoder for ``msgtype`` (one of ``EVENT_MSGTYPES``)."""
    return MessageDecoder(msgtype, time_mode=time_mode)
