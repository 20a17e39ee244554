"""Per-stream event decoding: one ``StreamDecoder`` per topic turns event messages (objects or CDR bytes) into
``EventBatch``es in ROS time, keeps the state of stateful encodings, and counts everything that was wrong.

Bad input never stops the stream (unless ``strict``): unknown encodings, truncated payloads, coordinates outside the
sensor, time going backwards, empty packets and resolution changes are counted in ``DecodeCounters`` with a
description of the last few problems, and the usable rest is returned.

Damaged packets cost themselves, not the stream (``clock.PacketClock``): each packet's events are checked against
where its header stamp says they lie, given how the stream's stamps related to its event times over the last packets,
and against the stream itself. Events a whole number of sensor-clock wraps off (a corrupt evt3 TIME_HIGH word taken
for a wrap, a libcaer stamp taken for a rollover) are moved back, events below the window are dropped, events above
it are held until the next packet confirms or refutes them, events out of time order with their neighbours (a
damaged time word) are dropped, a stamp its events and the stream contradict is ignored, and the carried evt3 time
state is re-anchored to the stamp. Every change is counted (``packets_resynced``, ``events_dropped_resync``,
``events_retimed``, ``reanchors``). Undamaged packets keep their times exactly: the check only acts on events that
disagree with both witnesses.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hstnn_ros.perception.errors import DecodeError
from hstnn_ros.perception.events import codecs
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.cdr import DVS_MSGTYPES, decode_dvs_cdr
from hstnn_ros.perception.events.clock import FIRST_TOL_NS, MAX_WRAPS, PacketClock, Verdict
from hstnn_ros.perception.events.enums import Encoding, TimeMode
from hstnn_ros.perception.events.kernels import check_events, resync_events

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


#: Sensor-clock wrap periods in ns, by encoding: the packet check may move events by whole periods (evt3 time is 24
#: bits of us, libcaer stamps 31 bits of us); encodings whose time is an offset from ``time_base`` have none.
WRAP_NS = {Encoding.EVT3.value: (1 << codecs.EVT3_TIME_BITS) * 1000,
           Encoding.LIBCAER.value: (1 << codecs.LIBCAER_TS_BITS) * 1000}
_NO_TIME = int(np.iinfo(np.int64).min)  # "no time yet" for the stream's latest time
#: Most evt3 packets ``decode_many`` decodes in one call (a run with a packet that needs the check is decoded again
#: message by message: the cap bounds that cost).
RUN_PACKETS = 32
#: Largest plausible sensor side (the widest coordinate field, mono's 16-bit x): a larger size is a damaged field.
MAX_SENSOR_SIDE = 1 << 16
#: ``time_base`` values from 2**62 ns (year 2116) on are damaged fields (they would overflow the int64 event times).
MAX_TIME_BASE_NS = 1 << 62


@dataclass
class DecodeCounters:
    """What a stream decoder saw: messages, events, and each kind of problem (``recent`` keeps the last 20 problem
    descriptions). Every field only grows; problem fields count messages unless named ``events_*``."""

    messages: int = 0  #: messages given to the decoder
    events: int = 0  #: events returned
    triggers: int = 0  #: external trigger edges returned (evt3)
    empty_packets: int = 0  #: messages without events
    unknown_encoding: int = 0  #: packets of an encoding no decoder reads (skipped)
    truncated: int = 0  #: payloads cut short (the whole words before the cut are decoded)
    malformed: int = 0  #: undecodable messages or bad fields (unknown words, impossible sizes or time_base, ...)
    out_of_bounds: int = 0  #: packets with events outside the sensor (those events dropped)
    time_backwards: int = 0  #: packets with events earlier than the stream's latest time (those events dropped)
    resolution_changes: int = 0  #: confirmed sensor size changes (decoder state reset; time never goes back)
    packets_resynced: int = 0  #: packets whose events disagreed with their header stamp or neighbours (see module)
    events_dropped_resync: int = 0  #: events dropped by that check (outside the stamp's window, or out of order)
    events_retimed: int = 0  #: events moved by whole sensor-clock wraps to agree with their stamp
    reanchors: int = 0  #: times a stream's stamp/event-time relation was re-learned after consistent disagreement
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=20))

    def note(self, what: str) -> None:
        """Record a problem description (also logged at debug level)."""
        self.recent.append(what)
        LOG.debug(what)

    @property
    def problems(self) -> int:
        """Total count of problems of every kind."""
        return (self.unknown_encoding + self.truncated + self.malformed + self.out_of_bounds + self.time_backwards
                + self.resolution_changes + self.packets_resynced + self.reanchors)

    def summary(self) -> dict[str, int]:
        """Counts as a plain dict (for reports and diagnostics)."""
        return {k: v for k, v in vars(self).items() if isinstance(v, int)}


@dataclass(frozen=True)
class Triggers:
    """External trigger edges of one packet (evt3 EXT_TRIGGER words), in the same time base as the events."""

    t_ns: np.ndarray
    id: np.ndarray
    edge: np.ndarray


@dataclass(frozen=True)
class _Held:
    """Events held above their packet's window (see ``clock.py``), that packet's stamp and whether, released, they
    may teach the stamp relation (the packet also had events inside its window)."""

    t_ns: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    stamp: int
    teaches: bool


@dataclass(frozen=True)
class _Columns:
    """Event columns of a dvs message object (int64, not yet an ``EventBatch``)."""

    t_ns: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    width: int
    height: int


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
        self._clock = PacketClock()
        self._held: _Held | None = None  # events above their packet's window, waiting for the next packet
        self._size: tuple[int, int] | None = None
        self._pending_size: tuple[int, int] | None = None
        self._encoding: str | None = None
        self._offset_ns: int | None = None
        self._last_t = _NO_TIME

    def reset(self) -> None:
        """Forget the stream state (after a seek or a camera restart); counters are kept."""
        self._evt3, self._cmp = codecs.Evt3State(), codecs.LibcaerCmpState()
        self._clock = PacketClock()
        self._held = None
        self._size = self._pending_size = self._encoding = self._offset_ns = None
        self._last_t = _NO_TIME

    def _problem(self, counter: str, what: str, n: int = 1) -> None:
        setattr(self.counters, counter, getattr(self.counters, counter) + n)
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

    def _check_size(self, width: int, height: int) -> tuple[int, int] | None:
        """The sensor size to decode a message with (None: skip it). A size no sensor has (0, or beyond 16-bit
        coordinates) is a damaged field: the stream's size is used. A new plausible size is taken only when a
        second consecutive message confirms it (then the stream state is reset); until then the message is decoded
        with the stream's size, so one damaged field costs no events and no state."""
        if not (0 < width <= MAX_SENSOR_SIDE and 0 < height <= MAX_SENSOR_SIDE):
            self._problem("malformed", f"event message with sensor size {width}x{height}"
                          + ("; decoded with the stream's size" if self._size else "; skipped"))
            return self._size
        size = (width, height)
        if self._size is None or size == self._size:
            self._size = size
            self._pending_size = None
            return size
        if self._pending_size == size:
            self._problem("resolution_changes", f"sensor size changed from {self._size[0]}x{self._size[1]} to "
                                                f"{width}x{height} mid-stream; decoder state reset")
            self._evt3, self._cmp = codecs.Evt3State(), codecs.LibcaerCmpState()
            self._offset_ns = self._held = self._pending_size = None
            self._size = size
            return size
        self._pending_size = size
        self._problem("malformed", f"sensor size {width}x{height} in one message differs from the stream's "
                                   f"{self._size[0]}x{self._size[1]}; decoded with the stream's until a second "
                                   "message confirms the change")
        return self._size

    def decode_many(self, msgs: Sequence[Any]) -> EventBatch:
        """The events of several consecutive message objects of this stream, as one batch. Runs of evt3 packets
        (one continuous word stream) are concatenated and decoded in one call, which removes the per-call overhead
        of small packets (replay, dataset building); each packet of the run is then checked against its own stamp,
        and a run where any check would act (or any word was odd) is decoded again message by message, so the
        result always equals decoding them one by one (a stream's first packet is always decoded alone)."""
        out: list[EventBatch] = []
        i = 0
        while i < len(msgs):
            m = msgs[i]
            j = i + 1
            if getattr(m, "encoding", None) == Encoding.EVT3 and self._evt3_ready(m):
                while j < len(msgs) and j - i < RUN_PACKETS and getattr(msgs[j], "encoding", None) == Encoding.EVT3 \
                        and (int(msgs[j].width), int(msgs[j].height)) == self._size:
                    j += 1
            batch = self._decode_evt3_run(msgs[i:j]) if j - i > 1 else None
            if batch is None:
                out.extend(self.decode(g) for g in msgs[i:j])
            else:
                out.append(batch)
            i = j
        return EventBatch.concat(out) if out else self._empty()

    def _evt3_ready(self, m: Any) -> bool:
        """Whether ``m`` can start a one-call evt3 run: the stream already decodes evt3 at ``m``'s size."""
        return self._encoding == Encoding.EVT3 and self._size == (int(m.width), int(m.height)) and \
            self._pending_size is None

    def _decode_evt3_run(self, group: Sequence[Any]) -> EventBatch | None:
        """Decode consecutive evt3 packets in one call; None (and nothing changed) if any packet is not plain."""
        payloads = [np.asarray(g.events, np.uint8) for g in group]
        sizes = np.array([len(p) for p in payloads], np.int64)
        if np.any(sizes % 2):
            return None
        state = replace(self._evt3)
        marks = np.cumsum(sizes)[:-1] // 2
        try:
            d = codecs.decode_evt3(np.concatenate(payloads), state, marks)
        except (ValueError, IndexError, OverflowError):
            return None
        if d.problems:
            return None
        t, trig_t = d.t_ns, d.trig_t_ns
        if self.time_mode is TimeMode.ROS:
            if self._offset_ns is None:
                return None
            t, trig_t = t + self._offset_ns, trig_t + self._offset_ns
        if self._clock.doubting or self._held is not None:
            return None
        bounds = np.concatenate([[0], d.ev_at_marks, [len(t)]])
        tbounds = np.concatenate([[0], d.trig_at_marks, [len(trig_t)]])
        clock = self._clock.copy()
        last = self._last_t
        for k, g in enumerate(group):
            part = t[bounds[k]:bounds[k + 1]]
            trig = trig_t[tbounds[k]:tbounds[k + 1]]
            stamp = _stamp_ns(g.header)
            w = clock.window(stamp)
            if w is None or (len(part) and (part[0] < max(w[0], last) or part[-1] > w[1]
                                            or np.any(np.diff(part) < 0))) or \
                    np.any((trig < w[0]) | (trig > w[1] + FIRST_TOL_NS)):
                return None
            if sizes[k]:  # (an empty message is only counted, as ``decode`` does)
                clock.plain(stamp, int(part[0]) if len(part) else None, int(part[-1]) if len(part) else None)
            last = int(part[-1]) if len(part) else last
        _keep, bad, _back, _bx, _by, _new = check_events(t, d.x, d.y, self._size[0], self._size[1], self._last_t)
        if bad:
            return None
        # every packet is plain: commit
        self._evt3, self._clock = state, clock
        self.counters.messages += len(group)
        self.counters.empty_packets += int(np.count_nonzero(sizes == 0))
        if len(trig_t):
            self.counters.triggers += len(trig_t)
        last_trig = d.trig_at_marks[-1] if len(d.trig_at_marks) else 0
        self.last_triggers = Triggers(trig_t[last_trig:], d.trig_id[last_trig:], d.trig_edge[last_trig:])
        return self._finish(t, d.x, d.y, d.p, width=self._size[0], height=self._size[1])

    def _decode_packet(self, msg: Any) -> EventBatch:
        size = self._check_size(int(msg.width), int(msg.height))
        if size is None:
            return self._empty()
        width, height = size
        enc = str(msg.encoding)
        payload = msg.events
        if len(payload) == 0:
            self.counters.empty_packets += 1
            return EventBatch.empty(width, height)
        if self._encoding is not None and enc != self._encoding and enc in ENCODERS:
            self.counters.note(f"encoding changed from {self._encoding} to {enc}; stream state reset")
            self._evt3, self._cmp, self._offset_ns = codecs.Evt3State(), codecs.LibcaerCmpState(), None
        stamp = _stamp_ns(msg.header)
        time_base = int(msg.time_base)
        bad_base = enc != Encoding.EVT3 and not 0 <= time_base < MAX_TIME_BASE_NS
        try:
            if enc == Encoding.EVT3:
                d = codecs.decode_evt3(payload, self._evt3)
            elif enc == Encoding.LIBCAER_CMP:
                d = codecs.decode_libcaer_cmp(payload, 0 if bad_base else time_base, self._cmp)
            elif enc == Encoding.LIBCAER:
                d = codecs.decode_libcaer(payload, 0 if bad_base else time_base)
            elif enc == Encoding.MONO:
                d = codecs.decode_mono(payload, 0 if bad_base else time_base)
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
        if bad_base:  # the field is damaged: place the packet by its stamp (its events keep their spacing), not
            # before the stream's latest time (stamps jitter; the packet follows the previous one)
            shift = stamp + self._clock.d_last() - int(t[-1]) if len(t) else 0
            if len(t) and self._last_t > _NO_TIME:
                shift = max(shift, self._last_t - int(t[0]))
            t = t + shift
            if len(t) and not self._clock.continues(t, self._last_t):  # the stamp is damaged too
                self.counters.events_dropped_resync += len(t)
                self._problem("malformed", f"{enc}: time_base {time_base} out of range and a header stamp that does "
                                           "not continue the stream; packet dropped")
                return EventBatch.empty(width, height)
            self._problem("malformed", f"{enc}: time_base {time_base} out of range; the packet's events were timed "
                                       "from its header stamp")
        if self.time_mode is TimeMode.ROS and enc == Encoding.EVT3:
            if self._offset_ns is None and len(t):
                self._offset_ns = stamp - int(t[0])
            off = self._offset_ns or 0
            t = t + off
            trig_t = trig_t + off
        period = WRAP_NS.get(enc, 0)
        ros = self.time_mode is TimeMode.ROS or enc != Encoding.EVT3
        v = self._clock.check(t, stamp, period, self._last_t, shiftable=enc == Encoding.EVT3 and ros, ros_clock=ros)
        t = v.t
        if v.reanchored:
            self._offset_ns = (self._offset_ns or 0) + v.shift if v.shift else self._offset_ns
            trig_t = trig_t + v.shift
            self._problem("reanchors", f"{enc}: two consecutive packets disagreed with the stream's stamp/time "
                                       f"relation by the same offset; relation re-learned"
                                       + (f", times moved by {v.shift} ns" if v.shift else "")
                                       + ("; the stamps do not follow event time: stamp checks off for this stream"
                                          if self._clock.off else ""))
        self._note_resync(enc, v, len(t))
        trig_id, trig_edge = d.trig_id, d.trig_edge
        # triggers do not move the stream's clock: only those far off (a whole wrap) are re-timed or dropped
        tw = (v.window[0], v.window[1] + FIRST_TOL_NS) if v.window is not None else None
        if len(trig_t) and tw is not None and (trig_t.min() < tw[0] or trig_t.max() > tw[1]):
            tv = resync_events(trig_t, tw[0], tw[1], tw[0], period, MAX_WRAPS, _NO_TIME, False)
            trig_t, trig_id, trig_edge = tv[0][tv[1]], trig_id[tv[1]], trig_edge[tv[1]]
        if enc == Encoding.EVT3 and v.window is not None and not v.plain:  # (a plain packet: the state agrees)
            self._reanchor_evt3_state(v.window)
        if len(trig_t):
            self.counters.triggers += len(trig_t)
        self.last_triggers = Triggers(trig_t, trig_id, trig_edge)
        return self._emit(v, _Columns(t, d.x, d.y, d.p, width, height), stamp)

    def _emit(self, v: Verdict, c: _Columns, stamp: int) -> EventBatch:
        """The checked events of one packet: the previous packet's held tail first if this packet's events all come
        after it (else it is dropped as damaged), then this packet's kept events; its events above the window are
        held for the next packet (see ``clock.py``)."""
        floor = self._last_t
        if self._held is None and v.plain:  # the common case: nothing to select, release or hold
            batch = self._finish(c.t_ns, c.x, c.y, c.p, width=c.width, height=c.height)
            if v.teaches and len(batch):
                self._clock.accept(stamp, int(batch.t_ns[0]), int(batch.t_ns[-1]))
            return batch
        keep, above = v.keep, v.above
        parts: list[_Held] = []
        if self._held is not None and (v.held or np.any(keep)):
            h = self._held
            self._held = None
            if int(h.t_ns[-1]) <= int(c.t_ns[keep | above].min()):
                parts.append(h)
                if h.teaches:
                    self._clock.widen(h.stamp, int(h.t_ns[-1]))
            else:
                self.counters.events_dropped_resync += len(h.t_ns)
                self._problem("packets_resynced", f"{len(h.t_ns)} events held above their packet's window were "
                                                  "not followed by the next packet (damaged times); dropped")
        if v.held:
            ht = c.t_ns[above]
            ok = ht >= np.maximum.accumulate(ht)
            if not ok.all():
                self.counters.events_dropped_resync += int(np.count_nonzero(~ok))
            sel = np.flatnonzero(above)[ok]
            self._held = _Held(c.t_ns[sel], c.x[sel], c.y[sel], c.p[sel], stamp, bool(np.any(keep)) and v.teaches)
        own = c.t_ns[keep]
        parts.append(_Held(own, c.x[keep], c.y[keep], c.p[keep], stamp, False))
        batch = self._finish(np.concatenate([q.t_ns for q in parts]), np.concatenate([q.x for q in parts]),
                             np.concatenate([q.y for q in parts]), np.concatenate([q.p for q in parts]),
                             width=c.width, height=c.height)
        own = own[own >= floor]
        if v.teaches and len(own):
            self._clock.accept(stamp, int(own.min()), int(own.max()))
        return batch

    def flush(self) -> EventBatch:
        """Events still held at the end of a stream (the tail of its last packet, above that packet's window and not
        yet confirmed by a following packet; see ``clock.py``): returned unconfirmed, or an empty batch."""
        h, self._held = self._held, None
        if h is None:
            return self._empty()
        w, hh = self._size or (1, 1)
        return self._finish(h.t_ns, h.x, h.y, h.p, width=w, height=hh)

    def _note_resync(self, enc: str, v: Verdict, n: int) -> None:
        """Count what the packet check did (see ``clock.py``)."""
        if v.refused:
            self.counters.events_dropped_resync += n
            self._problem("packets_resynced", f"{enc}: the {n} events of a packet neither agree with its header stamp "
                                              "nor continue the stream (damaged time field or words); dropped")
            return
        if v.stamp_doubted:
            self._problem("packets_resynced", f"{enc}: a packet's header stamp disagrees with its events, which "
                                              "continue the stream (damaged stamp); stamp ignored")
        if v.retimed or v.outside or v.disorder:
            self.counters.events_retimed += v.retimed
            self.counters.events_dropped_resync += v.outside + v.disorder
            self._problem("packets_resynced", f"{enc}: packet disagreed with its header stamp or neighbours: "
                                              f"{v.retimed} events moved by whole clock wraps, {v.outside} outside "
                                              f"the stamp's window and {v.disorder} out of order dropped")

    def _reanchor_evt3_state(self, window: tuple[int, int]) -> None:
        """Put the carried evt3 time-high back in the wrap period its packet's stamp says (a corrupt TIME_HIGH word
        taken for a wrap would otherwise shift the rest of the stream by 16.78 s)."""
        st = self._evt3
        if st.high < 0:
            return
        off = self._offset_ns if self.time_mode is TimeMode.ROS and self._offset_ns is not None else 0
        at = ((st.high << 12) + st.low) * 1000 + off
        mid = window[0] + (window[1] - window[0]) // 2
        period = WRAP_NS[Encoding.EVT3]
        k = (mid - at + period // 2) // period
        if k:
            st.high += int(k) << 12
            self.counters.note(f"evt3: carried TIME_HIGH moved by {int(k)} wrap(s) to agree with the header stamp")

    def _decode_dvs(self, data: bytes | memoryview) -> EventBatch:
        try:
            batch, stamp, _fid = decode_dvs_cdr(data)
        except DecodeError as exc:
            self._problem("truncated" if "truncated" in str(exc) else "malformed", str(exc))
            return self._empty()
        return self._dvs_events(batch, stamp)

    def _decode_dvs_obj(self, msg: Any) -> EventBatch:
        ev = msg.events
        x = np.fromiter((e.x for e in ev), np.int64, len(ev))
        y = np.fromiter((e.y for e in ev), np.int64, len(ev))
        t = np.fromiter((e.ts.sec * 1_000_000_000 + e.ts.nanosec for e in ev), np.int64, len(ev))
        p = np.fromiter((bool(e.polarity) for e in ev), np.int64, len(ev))
        return self._dvs_events(_Columns(t, x, y, p, int(msg.width), int(msg.height)), _stamp_ns(msg.header))

    def _dvs_events(self, b: EventBatch | _Columns, stamp: int) -> EventBatch:
        """dvs arrays carry a full time per event: the packet check drops the ones their stamp and neighbours
        contradict (no wraps to undo)."""
        t, x, y, p = b.t_ns, b.x, b.y, b.p
        size = self._check_size(b.width, b.height)
        if size is None:
            return self._empty()
        if len(t) == 0:
            self.counters.empty_packets += 1
            return EventBatch.empty(*size)
        v = self._clock.check(t, stamp, 0, self._last_t, shiftable=False, ros_clock=True)
        if v.reanchored:
            self._problem("reanchors", "dvs: two consecutive arrays disagreed with the stream's stamp/time relation "
                                       "by the same offset; relation re-learned"
                                       + ("; the stamps do not follow event time: stamp checks off for this stream"
                                          if self._clock.off else ""))
        self._note_resync("dvs", v, len(t))
        return self._emit(v, _Columns(v.t, x, y, p, size[0], size[1]), stamp)

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
