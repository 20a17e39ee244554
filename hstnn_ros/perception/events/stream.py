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
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from hstnn_ros.bags.cdr import EventPacketFields, read_event_packet
from hstnn_ros.perception.errors import DecodeError
from hstnn_ros.perception.events import codecs
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.cdr import DVS_MSGTYPES, decode_dvs_cdr, encode_dvs_event_array
from hstnn_ros.perception.events.clock import FIRST_TOL_NS, KERNEL_PARAMS, MAX_WRAPS, PacketClock, Verdict
from hstnn_ros.perception.events.enums import Encoding, TimeMode
from hstnn_ros.perception.events.framing import events_to_frames
from hstnn_ros.perception.events.kernels import (
    aedat_events_ok,
    check_events,
    evt3_plain,
    libcaer_plain,
    plain_check,
    resync_events,
    scan_columns,
)

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
#: The fast path's encoding, bound once: the per-message checks compare against a module global (a plain str
#: comparison), where ``Encoding.EVT3`` would look the member up on the class each time (~70 ns a check).
_EVT3 = Encoding.EVT3
_LIBCAER = Encoding.LIBCAER
_I4 = np.dtype("<i4")
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


_I64, _U16, _U8, _U2 = np.dtype(np.int64), np.dtype(np.uint16), np.dtype(np.uint8), np.dtype("<u2")
_NO_TRIGGERS = Triggers(np.zeros(0, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.uint8))
#: Encodings whose decoded packets take ``kernels.plain_check`` (their codecs give the batch dtypes; mono does not).
_PLAIN_CHECKED = (Encoding.LIBCAER.value, Encoding.LIBCAER_CMP.value)


def _stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class StreamDecoder:
    """Decode one event stream (one topic) into ``EventBatch``es.

    ``decode(msg)`` takes a message object (``EventPacket``, legacy ``EventArray``, dvs/dv_ros2 ``EventArray``);
    ``decode(msgtype, data)`` takes serialized CDR bytes (what rosbags or an rclpy ``raw=True`` subscription gives).
    Returned batches are in ROS time (see ``TimeMode``), inside the sensor, and never go back in time relative to
    earlier batches of the stream (offending events are dropped and counted). ``last_triggers`` holds the previous
    packet's trigger edges.

    ``fast`` (default): a packet the checks would keep as decoded (*plain*: the common case) takes one compiled pass
    (``kernels.evt3_plain`` and ``kernels.libcaer_plain`` decode and check evt3 and libcaer; ``kernels.plain_check``
    checks decoded libcaer_cmp packets and dvs arrays); any other packet, and every packet with ``fast=False``, the
    full path. Both give the same batches, counters and state (``test_event_fastpath.py``).
    """

    def __init__(self, msgtype: str | None = None, time_mode: TimeMode = TimeMode.ROS, strict: bool = False,
                 fast: bool = True) -> None:
        if msgtype is not None and msgtype not in EVENT_MSGTYPES:
            raise DecodeError(f"no event decoder for message type {msgtype}; supported: {EVENT_MSGTYPES}")
        self.msgtype = msgtype
        self.time_mode = TimeMode(time_mode)
        self.strict = strict
        self.fast = fast  #: take the compiled plain-packet path where it applies (False: the full path only)
        self._marks1 = np.zeros(2, np.int64)  # one packet's word marks and stamp for the fast path
        self._stamp1 = np.zeros(1, np.int64)
        self.counters = DecodeCounters()
        self._triggers = _NO_TRIGGERS
        self._trigger_views: tuple[np.ndarray, int, int, int, int] | None = None  # see ``last_triggers``
        self._evt3 = codecs.Evt3State()
        self._cmp = codecs.LibcaerCmpState()
        self._clock = PacketClock()
        self._held: _Held | None = None  # events above their packet's window, waiting for the next packet
        self._size: tuple[int, int] | None = None
        self._pending_size: tuple[int, int] | None = None
        self._encoding: str | None = None
        self._offset_ns: int | None = None
        self._last_t = _NO_TIME

    @property
    def last_triggers(self) -> Triggers:
        """The trigger edges of the previous packet. The fast path leaves them in its output buffer and they are
        viewed only when read (few streams read them; three views per packet cost about as much as decoding a
        hundred events)."""
        if self._trigger_views is not None:
            buf, n, at_t, at_id, at_edge = self._trigger_views  # (the fast path's buffer: count and byte offsets)
            self._triggers = Triggers(np.ndarray(n, _I64, buf, at_t), np.ndarray(n, _U8, buf, at_id),
                                      np.ndarray(n, _U8, buf, at_edge))
            self._trigger_views = None
        return self._triggers

    @last_triggers.setter
    def last_triggers(self, value: Triggers) -> None:
        self._triggers, self._trigger_views = value, None

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
            if msgtype in PACKET_MSGTYPES:
                try:
                    f = read_event_packet(data)
                except ValueError as exc:
                    self._problem("malformed", f"{msgtype}: undecodable CDR ({exc})")
                    return self._empty()
                return self._packet(f.stamp_ns, f.width, f.height, f.encoding, f.time_base, f.events)
            if msgtype in DVS_MSGTYPES:
                return self._decode_dvs(data)
            raise DecodeError(f"no event decoder for message type {msgtype}; supported: {EVENT_MSGTYPES}")
        msg = msg_or_msgtype
        enc = getattr(msg, "encoding", None)
        if enc == _EVT3 and self.fast and self._encoding == _EVT3 and self._held is None:
            st = msg.header.stamp  # the fast path first (see ``_plain_one``)
            batch = self._plain_one(int(st.sec) * 1_000_000_000 + int(st.nanosec), int(msg.width), int(msg.height),
                                    msg.events)
            if batch is not None:
                return batch
            return self._decode_packet(msg, try_fast=False)
        if enc is not None and hasattr(msg, "time_base"):
            return self._decode_packet(msg)
        if hasattr(msg, "events") and hasattr(msg, "width"):
            return self._decode_dvs_obj(msg)
        raise DecodeError(f"not an event message: {type(msg).__name__}; supported: {EVENT_MSGTYPES}")

    def decode_fields(self, f: EventPacketFields) -> EventBatch:
        """One ``EventPacket`` from its fields as ``bags.cdr.read_event_packet`` reads them (for a caller that read
        them already, e.g. to tell undecodable bytes apart); the same as ``decode(msgtype, data)``."""
        self.counters.messages += 1
        return self._packet(f.stamp_ns, f.width, f.height, f.encoding, f.time_base, f.events)

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
        """The events of several consecutive message objects of this stream, as one batch, always equal to decoding
        them one by one. Runs of evt3 packets (replay, dataset building) go through the compiled fast path in one
        call of up to ``RUN_PACKETS`` packets (``kernels.evt3_plain``: one call's overhead instead of one per
        packet); it stops at the first packet that is not plain, which the full path then decodes. Other messages
        are decoded one by one. A confirmed change of sensor size among them raises ``DecodeError`` (one batch has
        one size): decode such streams message by message."""
        out: list[EventBatch] = []
        i, n = 0, len(msgs)
        decode = self.decode
        while i < n:
            if self._encoding != _EVT3 or not self.fast:  # nothing to run together: message by message
                batch = decode(msgs[i])
                if len(batch) or not out:
                    out.append(batch)
                i += 1
                continue
            j = self._evt3_run_end(msgs, i)
            if j - i > 1:
                run, done = self._decode_evt3_run(msgs[i:j])
                if run is not None and len(run):
                    out.append(run)
                i += done
                if i == j:
                    continue
            out.append(decode(msgs[i]))
            i += 1
        out = [b for b in out if len(b)] or out[:1]
        if len(out) == 1:
            return out[0]
        return EventBatch.concat(out) if out else self._empty()

    def _evt3_run_end(self, msgs: Sequence[Any], i: int) -> int:
        """How far from ``i`` the messages are evt3 packets the fast path may take in one call (``i + 1``: none):
        the stream already decodes evt3 at their size, holds nothing, knows its time offset, payloads of whole
        words."""
        if not (self.fast and self._encoding == _EVT3 and self._held is None and self._size is not None and
                (self._offset_ns is not None or self.time_mode is not TimeMode.ROS)):
            return i + 1
        j = i
        while j < len(msgs) and j - i < RUN_PACKETS:
            m = msgs[j]
            ev = getattr(m, "events", None)
            if getattr(m, "encoding", None) != _EVT3 or (int(m.width), int(m.height)) != self._size or not (
                    isinstance(ev, (bytes, bytearray)) or (isinstance(ev, np.ndarray) and ev.dtype == np.uint8
                                                           and ev.ndim == 1 and ev.flags.c_contiguous)) or len(ev) % 2:
                break
            j += 1
        return max(j, i + 1)

    def _decode_evt3_run(self, group: Sequence[Any]) -> tuple[EventBatch | None, int]:
        """The fast path over consecutive evt3 packets (see ``decode_many``): their events and how many it took."""
        payloads = [np.frombuffer(g.events, np.uint8) for g in group]
        sizes = np.array([len(q) for q in payloads], np.int64)
        marks = np.zeros(len(group) + 1, np.int64)
        np.cumsum(sizes // 2, out=marks[1:])
        stamps = np.array([_stamp_ns(g.header) for g in group], np.int64)
        words = np.concatenate(payloads).view(_U2)
        off = self._offset_ns if self.time_mode is TimeMode.ROS else 0
        batch, done = self._plain(words, marks, stamps, off or 0)
        self.counters.messages += done
        self.counters.empty_packets += int(np.count_nonzero(sizes[:done] == 0))
        return batch, done

    def _decode_packet(self, msg: Any, try_fast: bool = True) -> EventBatch:
        return self._packet(_stamp_ns(msg.header), int(msg.width), int(msg.height), str(msg.encoding),
                            int(msg.time_base), msg.events, try_fast)

    def _packet(self, stamp: int, width: int, height: int, enc: str, time_base: int,  # noqa: PLR0917, C901, PLR0912, PLR0915  packet validation, checks in order
                payload: Any, try_fast: bool = True) -> EventBatch:
        """One event packet from its fields (a message object's, or read straight from CDR bytes); ``try_fast``:
        the fast path (evt3, libcaer) was not tried on it yet."""
        if try_fast and self.fast and enc == self._encoding and self._held is None:
            if enc == _EVT3:
                batch = self._plain_one(stamp, width, height, payload)
            elif enc == _LIBCAER:
                batch = self._plain_libcaer(stamp, width, height, time_base, payload)
            else:
                batch = None
            if batch is not None:
                return batch
        size = self._check_size(width, height)
        if size is None:
            return self._empty()
        width, height = size
        if len(payload) == 0:
            self.counters.empty_packets += 1
            return EventBatch.empty(width, height)
        if self._encoding is not None and enc != self._encoding and enc in ENCODERS:
            self.counters.note(f"encoding changed from {self._encoding} to {enc}; stream state reset")
            self._evt3, self._cmp, self._offset_ns = codecs.Evt3State(), codecs.LibcaerCmpState(), None
        bad_base = enc != _EVT3 and not 0 <= time_base < MAX_TIME_BASE_NS
        try:
            if enc == _EVT3:
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
        if enc in _PLAIN_CHECKED and not d.problems and not bad_base:  # libcaer, libcaer_cmp: the fast check first
            batch = self._plain_columns(d.t_ns, d.x, d.y, d.p, stamp, width, height)
            if batch is not None:
                self.last_triggers = _NO_TRIGGERS
                return batch
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
        if self.time_mode is TimeMode.ROS and enc == _EVT3:
            if self._offset_ns is None and len(t):
                self._offset_ns = stamp - int(t[0])
            off = self._offset_ns or 0
            t = t + off
            trig_t = trig_t + off
        period = WRAP_NS.get(enc, 0)
        ros = self.time_mode is TimeMode.ROS or enc != _EVT3
        v = self._clock.check(t, stamp, period, self._last_t, shiftable=enc == _EVT3 and ros, ros_clock=ros)
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
        if enc == _EVT3 and v.window is not None and not v.plain:  # (a plain packet: the state agrees)
            self._reanchor_evt3_state(v.window)
        if len(trig_t):
            self.counters.triggers += len(trig_t)
        self.last_triggers = Triggers(trig_t, trig_id, trig_edge)
        return self._emit(v, _Columns(t, d.x, d.y, d.p, width, height), stamp)

    def _plain_one(self, stamp: int, width: int, height: int, payload: Any) -> EventBatch | None:
        """The compiled fast path (``kernels.evt3_plain``) for one evt3 packet of a stream already decoding evt3 at
        this size, with nothing held; None (nothing changed) if the packet is not plain or the path does not apply
        (then the full path decodes it, with the same result for plain packets)."""
        off = self._offset_ns if self.time_mode is TimeMode.ROS else 0
        if off is None or (width, height) != self._size:
            return None
        try:
            w = np.frombuffer(payload, _U2)
        except (ValueError, TypeError):  # not a contiguous buffer of whole words, or empty: the full path says why
            return None
        if not len(w):  # an empty packet: counted by the full path
            return None
        self._marks1[1] = len(w)
        self._stamp1[0] = stamp
        return self._plain(w, self._marks1, self._stamp1, off)[0]

    def _plain_libcaer(self, stamp: int, width: int, height: int, time_base: int,
                       payload: Any) -> EventBatch | None:
        """The compiled fast path (``kernels.libcaer_plain``: decode and check in one pass) for one libcaer packet of
        a stream already decoding libcaer at this size; None (nothing changed) when the packet is not plain or the
        path does not apply (then the full path decodes it, with the same result for plain packets)."""
        if (width, height) != self._size or not 0 <= time_base < MAX_TIME_BASE_NS:
            return None
        try:
            w = np.frombuffer(payload, _I4)
        except (ValueError, TypeError):  # not whole words: the full path says why
            return None
        if not len(w) or len(w) % 2:  # empty, or a truncated event: counted by the full path
            return None
        plain, t, x, y, p, last = libcaer_plain(w, time_base, self._clock.h, self._last_t, stamp, width, height,
                                                KERNEL_PARAMS)
        if not plain:
            return None
        self._last_t = last
        self._pending_size = None
        self.counters.events += len(t)
        self.last_triggers = _NO_TRIGGERS
        return EventBatch.trusted(t, x, y, p, width, height)

    def _plain_columns(self, t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray, stamp: int,  # noqa: PLR0917
                       width: int, height: int) -> EventBatch | None:
        """The fast path for a decoded packet of int64 / uint16 / uint16 / uint8 columns (``kernels.plain_check``):
        its batch as decoded if the full check would keep it so (the clock state updated as it would be), else None
        and nothing changed."""
        if not self.fast or self._held is not None:
            return None
        plain, last = plain_check(t, x, y, self._clock.h, self._last_t, stamp, width, height, KERNEL_PARAMS)
        if not plain:
            return None
        self._last_t = last
        self.counters.events += len(t)
        return EventBatch.trusted(t, x, y, p, width, height)

    def _plain(self, w: np.ndarray, marks: np.ndarray, stamps: np.ndarray, off: int) -> tuple[EventBatch | None, int]:
        """Run ``kernels.evt3_plain`` over the packets ``marks`` delimits in ``w`` and commit those it took: their
        events as one batch (None if it took none) and how many packets it took."""
        if self._size is None:  # no packet has set the sensor size yet: leave them to the message-by-message path
            return None, 0
        width, height = self._size
        ev = self._evt3
        buf, done, k, j, tr_last, n_x, n_tr, high, low, yy, last = evt3_plain(
            w, marks, stamps, self._clock.h, ev.high, ev.low, ev.y, off, self._last_t, width, height,
            KERNEL_PARAMS)
        if not done:
            return None, 0
        ev.high, ev.low, ev.y, self._last_t = high, low, yy, last
        self._pending_size = None
        c = self.counters
        c.events += k
        if tr_last >= 0:
            if j:
                c.triggers += j
                tr = 13 * n_x + 8 * n_tr
                self._trigger_views = (buf, j - tr_last, 8 * (n_x + tr_last), tr + tr_last, tr + n_tr + tr_last)
            else:
                self.last_triggers = _NO_TRIGGERS
        at = 8 * (n_x + n_tr)
        return EventBatch.trusted(np.ndarray(k, _I64, buf, 0), np.ndarray(k, _U16, buf, at),
                                  np.ndarray(k, _U16, buf, at + 2 * n_x), np.ndarray(k, _U8, buf, at + 4 * n_x),
                                  width, height), done

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
        if isinstance(b, EventBatch):  # from CDR bytes (columns of the batch dtypes): the fast check first
            batch = self._plain_columns(t, x, y, p, stamp, *size)
            if batch is not None:
                return batch
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
    """Load (or compile) every compiled kernel now by decoding a tiny packet of each encoding and a dvs EventArray
    (and framing and buffering them, and checking a tiny AEDAT4 event vector), so that the first real message is not
    delayed by ~1 s (a node at start-up, a replay before its clock starts). Once per process; returns the seconds it
    took (0.0 after the first call)."""
    if _WARM:
        return 0.0

    t0 = time.perf_counter()
    batch = EventBatch(np.array([1_000, 2_000, 70_000_000], np.int64), np.array([1, 2, 3], np.uint16),
                       np.array([4, 5, 6], np.uint16), np.array([0, 1, 1], np.uint8), 8, 8)
    header = SimpleNamespace(stamp=SimpleNamespace(sec=0, nanosec=0), frame_id="")
    dec = StreamDecoder()
    for enc, encode in ENCODERS.items():
        payload, base = encode(batch)
        dec.reset()
        # evt3 and libcaer twice more: the second packet of a stream takes the fast path (read-only and writable
        # payloads)
        ro = np.frombuffer(payload, np.uint8)
        for events in [ro, ro, bytearray(payload)] if enc in (_EVT3, _LIBCAER) else [ro]:
            dec.decode(SimpleNamespace(encoding=enc, time_base=base, width=8, height=8, header=header, events=events))
    dec.reset()
    dec.decode(DVS_MSGTYPES[0], encode_dvs_event_array(batch))

    events_to_frames(batch, [0, 5_000, 80_000_000], (4, 4))  # and the framing kernel
    aedat_events_ok(np.frombuffer(bytes(16), np.uint8), 0, 1, 8, 8)  # and the AEDAT4 check
    scan_columns(batch.t_ns, batch.x, batch.y, batch.p, 8, 8, 0)  # and the event buffer's scan
    _WARM.append(time.perf_counter() - t0)
    return _WARM[0]


def make_decoder(msgtype: str, time_mode: TimeMode = TimeMode.ROS) -> MessageDecoder:
    """A per-topic decoder for ``msgtype`` (one of ``EVENT_MSGTYPES``)."""
    return MessageDecoder(msgtype, time_mode=time_mode)
