"""Vectorised decoders and encoders of ``event_camera_msgs/EventPacket`` payloads: evt3, libcaer_cmp, libcaer, mono.

Decoders are pure functions over the payload bytes and an explicit per-stream state (stateful formats carry the last
address/time words across packets). Stateful word streams (evt3 without vector words, libcaer_cmp) and libcaer (its
rollover) are decoded by one compiled pass each (``kernels.py``, numba); evt3 packets with vector words by numpy: the
most recent word of a kind at an event word is found by forward-filling word indices with ``np.maximum.accumulate``,
vector words are expanded with bit masks and merged into word order with ``searchsorted``. Never a per-word Python
loop. Encoders (used by the tests
and by the synthetic-route writer) produce payloads the decoders and the ros-event-camera C++ codecs read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hstnn_ros.perception.errors import DecodeError
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.kernels import evt3_scalar, libcaer_cmp_words, libcaer_events

#: The empty defaults of ``Decoded``, shared (five new empty arrays per packet cost as much as decoding a small one).
_NONE_I64: np.ndarray = np.zeros(0, np.int64)
_NONE_U8: np.ndarray = np.zeros(0, np.uint8)


@dataclass
class Decoded:
    """Raw decoder output: sensor time ``t_ns`` (unwrapped), coordinates, polarity, external triggers
    (``trig_t_ns``, ``trig_id``, ``trig_edge``) and notes on what was wrong (e.g. a truncated tail)."""

    t_ns: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    trig_t_ns: np.ndarray = field(default_factory=lambda: _NONE_I64)
    trig_id: np.ndarray = field(default_factory=lambda: _NONE_U8)
    trig_edge: np.ndarray = field(default_factory=lambda: _NONE_U8)
    problems: list[str] = field(default_factory=list)
    #: with ``marks`` (evt3): events and triggers decoded before each marked word (packet boundaries)
    ev_at_marks: np.ndarray = field(default_factory=lambda: _NONE_I64)
    trig_at_marks: np.ndarray = field(default_factory=lambda: _NONE_I64)


def _ffill(mask: np.ndarray) -> np.ndarray:
    """For each position, the index of the last True at or before it (-1 if none)."""
    idx = np.where(mask, np.arange(len(mask), dtype=np.int64), -1)
    return np.maximum.accumulate(idx) if len(idx) else idx


def _words(payload: bytes | np.ndarray, itemsize: int, dtype: str | np.dtype, what: str
           ) -> tuple[np.ndarray, list[str]]:
    buf = memoryview(payload).cast("B") if not isinstance(payload, np.ndarray) else payload.view(np.uint8)
    n = len(buf) // itemsize
    problems = []
    if len(buf) % itemsize:
        problems.append(f"{what}: payload of {len(buf)} bytes is not a multiple of {itemsize}; "
                        f"the last {len(buf) % itemsize} bytes were ignored (truncated packet?)")
    return np.frombuffer(buf, dtype=dtype, count=n), problems


def _expand_bits(values: np.ndarray, nbits: np.ndarray, max_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and bit positions of set bits (only the low ``nbits`` of each value count), row-major order."""
    bits = np.arange(max_bits, dtype=np.uint16)
    m = ((values[:, None] >> bits) & 1).astype(bool) & (bits[None, :] < nbits[:, None])
    rows, cols = np.nonzero(m)
    return rows, cols


def _merge_events(single_w: np.ndarray, vec_w: np.ndarray, vec_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Output positions of single-word events (at words ``single_w``) and vector events (row ``vec_rows`` of the
    vector words ``vec_w``) so that all events come out in word order (both word lists sorted)."""
    vec_counts = np.bincount(vec_rows, minlength=len(vec_w))
    cvc = np.concatenate([[0], np.cumsum(vec_counts)])
    pos_single = np.arange(len(single_w)) + cvc[np.searchsorted(vec_w, single_w)]
    rank = np.arange(len(vec_rows)) - cvc[vec_rows]
    pos_vec = np.searchsorted(single_w, vec_w[vec_rows]) + cvc[vec_rows] + rank
    return pos_single, pos_vec


# ----------------------------------------------------------------------------------------------------------- evt3
EVT3_ADDR_Y, EVT3_ADDR_X, EVT3_VECT_BASE_X, EVT3_VECT_12, EVT3_VECT_8 = 0x0, 0x2, 0x3, 0x4, 0x5
EVT3_TIME_LOW, EVT3_CONTINUED_4, EVT3_TIME_HIGH, EVT3_EXT_TRIGGER, EVT3_OTHERS, EVT3_CONTINUED_12 = (
    0x6, 0x7, 0x8, 0xA, 0xE, 0xF)
_EVT3_KNOWN = np.zeros(16, bool)
_EVT3_KNOWN[[0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xA, 0xE, 0xF]] = True
#: evt3 time is 24 bits of microseconds: TIME_HIGH holds bits 12-23 and wraps every 2**24 us (16.77 s).
EVT3_TIME_BITS = 24


@dataclass
class Evt3State:
    """What an evt3 stream carries across packets: last y, time high (incl. wrap count), time low, vector base."""

    y: int = 0
    high: int = -1  #: time-high counter incl. wraps (-1 = none seen yet)
    low: int = 0
    base_x: int = 0
    pol: int = 0


_NO_MARKS = np.zeros(0, np.int64)


def decode_evt3(payload: bytes | np.ndarray, state: Evt3State, marks: np.ndarray | None = None) -> Decoded:
    """Decode one evt3 payload (little-endian 16-bit words), updating ``state``. Packets without vector words (most
    Prophesee recordings) take one compiled pass (``kernels.evt3_scalar``); others ``_decode_evt3_general``, with
    the same results. ``marks`` (ascending word indices, e.g. where each packet of a concatenated run starts) fills
    ``ev_at_marks``/``trig_at_marks``."""
    w, problems = _words(payload, 2, "<u2", "evt3")
    marks = _NO_MARKS if marks is None else np.ascontiguousarray(marks, np.int64)
    t, x, y, p, tt, tid, tp, high, low, yy, unknown, back, dropped, has_vec, ev_at, tr_at = evt3_scalar(
        w, state.high, state.low, state.y, marks)
    if has_vec:
        return _decode_evt3_general(w, state, problems, marks)
    if unknown:
        problems.append(f"evt3: {unknown} words with unknown codes ignored")
    if back:
        problems.append(f"evt3: time went backwards {back} times (TIME_HIGH decreased without a wrap)")
    if dropped:
        problems.append(f"evt3: {dropped} events before the stream's first TIME_HIGH dropped")
    state.high, state.low, state.y = int(high), int(low), int(yy)
    return Decoded(t, x, y, p, tt, tid, tp, problems, ev_at, tr_at)


def _decode_evt3_general(w: np.ndarray, state: Evt3State, problems: list[str],  # noqa: PLR0915  evt3 decoder state machine
                         marks: np.ndarray = _NO_MARKS) -> Decoded:
    """Decode one evt3 payload (little-endian 16-bit words), updating ``state``. Times are sensor microseconds
    (unwrapped across TIME_HIGH wraps) in ns. Events before the first TIME_HIGH of a stream are dropped (their
    time is unknown), as are unknown word codes; both are noted in ``problems``."""
    n = len(w)
    code = (w >> 12).astype(np.uint8)
    val = (w & 0xFFF).astype(np.int64)
    unknown = int(np.count_nonzero(~_EVT3_KNOWN[code]))
    if unknown:
        problems.append(f"evt3: {unknown} words with unknown codes ignored")
    # time high with wrap detection (a drop by more than half the range is a wrap)
    th_w = np.flatnonzero(code == EVT3_TIME_HIGH)
    th = val[th_w]
    prev_high = state.high
    if len(th):
        seq = np.concatenate([[prev_high & 0xFFF if prev_high >= 0 else th[0]], th])
        wraps = np.cumsum(np.diff(seq) < -2048)
        epoch0 = (prev_high >> 12) if prev_high >= 0 else 0
        th_full = ((epoch0 + wraps) << 12) + th
        back = int(np.count_nonzero((np.diff(seq) < 0) & (np.diff(seq) >= -2048)))
        if back:
            problems.append(f"evt3: time went backwards {back} times (TIME_HIGH decreased without a wrap)")
    else:
        th_full = np.zeros(0, np.int64)
    high_at = np.full(n, prev_high, np.int64)
    i_th = _ffill(code == EVT3_TIME_HIGH)
    ok = i_th >= 0
    full_by_word = np.zeros(n, np.int64)
    full_by_word[th_w] = th_full
    high_at[ok] = full_by_word[i_th[ok]]
    # time low: the last TIME_LOW since the last TIME_HIGH (a TIME_HIGH resets it to 0)
    i_tl = _ffill((code == EVT3_TIME_LOW) | (code == EVT3_TIME_HIGH))
    low_at = np.full(n, state.low, np.int64)
    ok = i_tl >= 0
    low_at[ok] = np.where(code[i_tl[ok]] == EVT3_TIME_LOW, val[i_tl[ok]], 0)
    t_us = (high_at << 12) + low_at
    # y
    i_y = _ffill(code == EVT3_ADDR_Y)
    y_at = np.where(i_y >= 0, val[np.maximum(i_y, 0)] & 0x7FF, state.y)
    # vector base x and polarity, advanced by 12 / 8 after each vector word
    is_v12, is_v8 = code == EVT3_VECT_12, code == EVT3_VECT_8
    incr = np.where(is_v12, 12, np.where(is_v8, 8, 0)).astype(np.int64)
    cum_excl = np.cumsum(incr) - incr
    i_b = _ffill(code == EVT3_VECT_BASE_X)
    has_b = i_b >= 0
    ib = np.maximum(i_b, 0)
    base_at = np.where(has_b, (val[ib] & 0x7FF) + cum_excl - cum_excl[ib] if n else 0, state.base_x + cum_excl)
    vpol_at = np.where(has_b, (val[ib] >> 11) & 1, state.pol)
    # events
    sx = np.flatnonzero(code == EVT3_ADDR_X)
    vw = np.flatnonzero(is_v12 | is_v8)
    rows, bits = _expand_bits(val[vw], np.where(is_v12[vw], 12, 8), 12)
    pos_s, pos_v = _merge_events(sx, vw, rows)
    m = len(sx) + len(rows)
    t = np.empty(m, np.int64)
    x = np.empty(m, np.int64)
    y = np.empty(m, np.int64)
    p = np.empty(m, np.int64)
    t[pos_s], x[pos_s], y[pos_s], p[pos_s] = t_us[sx], val[sx] & 0x7FF, y_at[sx], (val[sx] >> 11) & 1
    vr = vw[rows]
    t[pos_v], x[pos_v], y[pos_v], p[pos_v] = t_us[vr], base_at[vr] + bits, y_at[vr], vpol_at[vr]
    word_of = np.empty(m, np.int64)
    word_of[pos_s], word_of[pos_v] = sx, vr
    timed = high_at[word_of] >= 0
    if not timed.all():
        problems.append(f"evt3: {int((~timed).sum())} events before the stream's first TIME_HIGH dropped")
        t, x, y, p, word_of = t[timed], x[timed], y[timed], p[timed], word_of[timed]
    tw = np.flatnonzero((code == EVT3_EXT_TRIGGER) & (high_at >= 0))
    ev_at, tr_at = np.searchsorted(word_of, marks), np.searchsorted(tw, marks)
    # state for the next packet
    if n:
        state.high = int(high_at[-1])
        state.low = int(low_at[-1])
        state.y = int(y_at[-1])
        state.base_x = int(base_at[-1] + incr[-1])
        state.pol = int(vpol_at[-1])
    return Decoded(t * 1000, x, y, p, t_us[tw] * 1000, ((val[tw] >> 8) & 0xF).astype(np.uint8),
                   (val[tw] & 1).astype(np.uint8), problems, ev_at.astype(np.int64), tr_at.astype(np.int64))


def encode_evt3(batch: EventBatch, triggers: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                use_vectors: bool = True) -> tuple[bytes, int]:
    """evt3 payload for ``batch`` (sensor time = ``t_ns // 1000`` us, 24-bit wrap); returns ``(payload, 0)``
    (evt3 does not use ``time_base``). Runs of events with one time, row and polarity at consecutive x are written
    as VECT_BASE_X + VECT_12 words when ``use_vectors``. ``triggers`` = (t_ns, id, edge) adds EXT_TRIGGER words."""
    t_us = batch.t_ns.astype(np.int64) // 1000
    n = len(t_us)
    kind = np.zeros(n, np.int64)  # 0 = event, 1 = trigger
    xs, ys, ps = batch.x.astype(np.int64), batch.y.astype(np.int64), batch.p.astype(np.int64)
    if triggers is not None and len(triggers[0]):
        tt = np.asarray(triggers[0], np.int64) // 1000
        order = np.argsort(np.concatenate([t_us, tt]), kind="stable")
        t_us = np.concatenate([t_us, tt])[order]
        kind = np.concatenate([kind, np.ones(len(tt), np.int64)])[order]
        xs = np.concatenate([xs, np.asarray(triggers[1], np.int64)])[order]  # id rides in x
        ys = np.concatenate([ys, np.zeros(len(tt), np.int64)])[order]
        ps = np.concatenate([ps, np.asarray(triggers[2], np.int64)])[order]
        n = len(t_us)
    if n == 0:
        return b"", 0
    high, low = (t_us >> 12) & 0xFFF, t_us & 0xFFF
    th_abs = t_us >> 12
    new_high = np.concatenate([[True], th_abs[1:] != th_abs[:-1]])
    new_t = np.concatenate([[True], t_us[1:] != t_us[:-1]])
    is_ev = kind == 0
    # y must be re-sent after a trigger too (simple rule: whenever y or time changes for an event)
    prev_y = np.concatenate([[-1], ys[:-1]])
    new_y = is_ev & ((ys != prev_y) | new_t | np.concatenate([[True], kind[:-1] == 1]))
    cols = np.zeros((n, 4), np.int64)
    mask = np.zeros((n, 4), bool)
    cols[:, 0] = (EVT3_TIME_HIGH << 12) | high
    mask[:, 0] = new_high
    cols[:, 1] = (EVT3_TIME_LOW << 12) | low
    mask[:, 1] = new_t
    cols[:, 2] = (EVT3_ADDR_Y << 12) | ys
    mask[:, 2] = new_y
    cols[:, 3] = np.where(is_ev, (EVT3_ADDR_X << 12) | (ps << 11) | xs,
                          (EVT3_EXT_TRIGGER << 12) | ((xs & 0xF) << 8) | (ps & 1))
    mask[:, 3] = True
    if use_vectors and n > 1:
        cols, mask = _evt3_vectorise(cols, mask, t_us, xs=xs, ys=ys, ps=ps, is_ev=is_ev)
    words = cols[mask].astype("<u2")
    return words.tobytes(), 0


def _evt3_vectorise(cols: np.ndarray, mask: np.ndarray, t_us: np.ndarray, *, xs: np.ndarray, ys: np.ndarray,
                    ps: np.ndarray, is_ev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace runs of >= 3 events (same time, y, polarity; x consecutive) by VECT_BASE_X + VECT_12 words."""
    n = len(t_us)
    same = np.zeros(n, bool)
    same[1:] = is_ev[1:] & is_ev[:-1] & (t_us[1:] == t_us[:-1]) & (ys[1:] == ys[:-1]) & (ps[1:] == ps[:-1]) & (
        xs[1:] == xs[:-1] + 1)
    run_start = ~same
    run_id = np.cumsum(run_start) - 1
    starts = np.flatnonzero(run_start)
    run_len = np.diff(np.append(starts, n))
    pos_in_run = np.arange(n) - starts[run_id]
    chunk = pos_in_run // 12
    in_vec = (run_len[run_id] >= 3) & is_ev
    chunk_start = in_vec & (pos_in_run % 12 == 0)
    # run start of a vector run: VECT_BASE_X replaces the ADDR_X word; each 12-chunk start gets a VECT_12
    # word holding the chunk's valid mask; other events in the chunk emit no address word.
    chunk_len = np.minimum(12, run_len[run_id] - chunk * 12)
    vec_mask = (1 << chunk_len) - 1
    ext = np.zeros((n, 2), np.int64)
    ext_mask = np.zeros((n, 2), bool)
    first = in_vec & (pos_in_run == 0)
    ext[:, 0] = (EVT3_VECT_BASE_X << 12) | (ps << 11) | xs
    ext_mask[:, 0] = first
    ext[:, 1] = (EVT3_VECT_12 << 12) | vec_mask
    ext_mask[:, 1] = chunk_start
    mask = mask.copy()
    mask[in_vec, 3] = False
    return np.concatenate([cols[:, :3], ext, cols[:, 3:]], axis=1), np.concatenate(
        [mask[:, :3], ext_mask, mask[:, 3:]], axis=1)


# ----------------------------------------------------------------------------------------------------- libcaer_cmp
CMP_TIME_HIGH, CMP_TIME_LOW, CMP_ADDR_X, CMP_ADDR_Y, CMP_VECT_BASE_Y, CMP_VECT_8 = 0, 1, 2, 3, 4, 5


@dataclass
class LibcaerCmpState:
    """libcaer_cmp carries only the current x across packets (time restarts at ``time_base`` per packet)."""

    x: int = -1


def decode_libcaer_cmp(payload: bytes | np.ndarray, time_base_ns: int, state: LibcaerCmpState) -> Decoded:
    """Decode one libcaer_cmp payload (16-bit words, 4-bit code); time = time_base + 24-bit us offset (time words
    restart with each packet, the current x carries over): one compiled pass (``kernels.libcaer_cmp_words``)."""
    w, problems = _words(payload, 2, "<u2", "libcaer_cmp")
    t, x, y, p, state.x, unknown, dropped = libcaer_cmp_words(w, int(time_base_ns), state.x)
    if unknown:
        problems.append(f"libcaer_cmp: {unknown} words with unsupported codes ignored")
    if dropped:
        problems.append(f"libcaer_cmp: {dropped} events before the stream's first ADDR_X dropped")
    return Decoded(t, x, y, p, problems=problems)


def encode_libcaer_cmp(batch: EventBatch) -> tuple[bytes, int]:
    """libcaer_cmp payload for ``batch``; returns ``(payload, time_base_ns)`` with time_base = the first event's
    time rounded down to a microsecond. The batch must span less than 2**24 us (16.7 s)."""
    n = len(batch)
    if n == 0:
        return b"", 0
    tb = int(batch.t_ns[0]) // 1000 * 1000
    off = (batch.t_ns.astype(np.int64) - tb) // 1000
    if off.min() < 0 or off.max() >= 1 << 24:
        raise DecodeError(f"encode_libcaer_cmp: batch spans {int(off.max())} us; libcaer_cmp packets must span "
                          "< 2**24 us and be time-sorted; split the batch")
    xs, ys, ps = batch.x.astype(np.int64), batch.y.astype(np.int64), batch.p.astype(np.int64)
    high, low = off >> 12, off & 0xFFF
    first = np.zeros(n, bool)
    first[0] = True
    cols = np.stack([(CMP_TIME_HIGH << 12) | high, (CMP_TIME_LOW << 12) | low, (CMP_ADDR_X << 12) | xs,
                     (CMP_ADDR_Y << 12) | (ps << 11) | ys], axis=1)
    mask = np.stack([first | np.concatenate([[True], high[1:] != high[:-1]]),
                     first | np.concatenate([[True], off[1:] != off[:-1]]),
                     first | np.concatenate([[True], xs[1:] != xs[:-1]]), np.ones(n, bool)], axis=1)
    return cols[mask].astype("<u2").tobytes(), tb


# --------------------------------------------------------------------------------------------------------- libcaer
_LIBCAER_DT = np.dtype([("data", "<u4"), ("ts", "<i4")])
#: libcaer timestamps are 31-bit microseconds; the driver folds the high bits into ``time_base``.
LIBCAER_TS_BITS = 31


def decode_libcaer(payload: bytes | np.ndarray, time_base_ns: int) -> Decoded:
    """Decode one libcaer polarity payload (8-byte events: uint32 data with x at bit 17, y at bit 2, polarity at
    bit 1; int32 microsecond timestamp). A timestamp more than 2**30 us below its predecessor inside a packet is a
    rollover of the 31-bit counter and adds 2**31 us (a smaller step back is an out-of-order, damaged stamp)."""
    a, problems = _words(payload, 8, _LIBCAER_DT, "libcaer")
    t, x, y, p = libcaer_events(a["data"], a["ts"], int(time_base_ns))  # one compiled pass
    return Decoded(t, x, y, p, problems=problems)


def encode_libcaer(batch: EventBatch) -> tuple[bytes, int]:
    """libcaer payload for ``batch``; returns ``(payload, time_base_ns)`` (first event time rounded down to a
    microsecond)."""
    if len(batch) == 0:
        return b"", 0
    tb = int(batch.t_ns[0]) // 1000 * 1000
    off = (batch.t_ns.astype(np.int64) - tb) // 1000
    if off.min() < 0 or off.max() >= 1 << LIBCAER_TS_BITS:
        raise DecodeError("encode_libcaer: batch must be time-sorted and span < 2**31 us; split it")
    a = np.empty(len(batch), _LIBCAER_DT)
    a["data"] = (batch.x.astype(np.uint32) << 17) | (batch.y.astype(np.uint32) << 2) | (
        batch.p.astype(np.uint32) << 1) | 1
    a["ts"] = off
    return a.tobytes(), tb


# ------------------------------------------------------------------------------------------------------------ mono
def decode_mono(payload: bytes | np.ndarray, time_base_ns: int) -> Decoded:
    """Decode one mono payload (little-endian uint64: ns offset in bits 0-31, x 32-47, y 48-62, polarity 63)."""
    w, problems = _words(payload, 8, "<u8", "mono")
    t = int(time_base_ns) + (w & 0xFFFFFFFF).astype(np.int64)
    return Decoded(t, (w >> 32) & 0xFFFF, (w >> 48) & 0x7FFF, w >> 63, problems=problems)


def encode_mono(batch: EventBatch) -> tuple[bytes, int]:
    """mono payload for ``batch``; returns ``(payload, time_base_ns)`` with time_base = the first event time.
    The batch must span < 2**32 ns (4.29 s)."""
    if len(batch) == 0:
        return b"", 0
    tb = int(batch.t_ns[0])
    off = batch.t_ns.astype(np.int64) - tb
    if off.min() < 0 or off.max() >= 1 << 32:
        raise DecodeError("encode_mono: batch must be time-sorted and span < 2**32 ns; split it")
    w = off.astype(np.uint64) | (batch.x.astype(np.uint64) << np.uint64(32)) | (
        batch.y.astype(np.uint64) << np.uint64(48)) | (batch.p.astype(np.uint64) << np.uint64(63))
    return w.astype("<u8").tobytes(), tb
