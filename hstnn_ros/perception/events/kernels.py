"""Compiled (numba) inner loops of the stateful word-stream decoders.

evt3 and libcaer_cmp are sequences of 16-bit words where an event word takes the time and address of the most recent
words of other kinds: a single pass carrying those registers is the natural algorithm, and compiled it runs at memory
speed (the numpy formulation needs a dozen whole-packet passes). Word codes and semantics are those of
``codecs.py``; evt3 packets with vector words keep the vectorised numpy path. The tests check the kernels against the
encoders, a word-by-word reference and (evt3) the numpy path, on real bags and random word streams.

Machine code is cached beside this module (``__pycache__``), else in the user's cache directory; where neither is
writable (read-only install, no home) numba would refuse at import, so the kernels compile in memory at first use
instead (about a second in all) with a ``RuntimeWarning``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

# evt3 word codes (duplicated from codecs.py: numba needs them as module globals it can freeze)
_E_ADDR_Y, _E_ADDR_X, _E_VECT_BASE_X, _E_VECT_8, _E_TIME_LOW, _E_TIME_HIGH, _E_EXT_TRIGGER = (
    0x0, 0x2, 0x3, 0x5, 0x6, 0x8, 0xA)
_C_TIME_HIGH, _C_TIME_LOW, _C_ADDR_X, _C_ADDR_Y, _C_VECT_BASE_Y, _C_VECT_8 = 0, 1, 2, 3, 4, 5


def _compiled(**options: Any) -> Callable[[Callable], Any]:
    """``njit(cache=True, nogil=True, **options)``, or without the cache where numba finds no writable location."""

    def wrap(fn: Callable) -> Any:
        try:
            return njit(cache=True, nogil=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            warnings.warn("no writable numba cache location: event kernels compile in memory at first use",
                          RuntimeWarning, stacklevel=1)
            return njit(nogil=True, **options)(fn)

    return wrap


@_compiled()
def evt3_scalar(w: np.ndarray, high: int, low: int, y: int, marks: np.ndarray) -> tuple:  # noqa: C901, PLR0912, PLR0915  numba decoder state machine; calls cost per event
    """evt3 without vector words. ``high`` is the carried TIME_HIGH incl. wraps (-1: none yet), ``low`` the
    carried TIME_LOW, ``y`` the carried ADDR_Y; ``marks`` are ascending word indices (packet starts when several
    packets are decoded in one call). Returns event arrays (t in ns), trigger arrays, the new ``(high, low, y)``,
    counts (unknown words, backward TIME_HIGH steps, untimed events dropped), whether the packet has vector words,
    in which case nothing was decoded (the caller takes the vectorised path), and the number of events and of
    triggers decoded before each mark."""
    n = w.shape[0]
    n_marks = marks.shape[0]
    ev_at = np.zeros(n_marks, np.int64)
    tr_at = np.zeros(n_marks, np.int64)
    m = 0
    n_x = 0
    n_tr = 0
    has_vec = False
    for i in range(n):  # branch-free: the compiler vectorises it (1.5x faster than if/elif on the real bags)
        c = w[i] >> 12
        n_x += c == _E_ADDR_X
        n_tr += c == _E_EXT_TRIGGER
        has_vec |= (c >= _E_VECT_BASE_X) & (c <= _E_VECT_8)
    if has_vec:
        n_x = 0
        n_tr = 0
        n = 0
    t = np.empty(n_x, np.int64)
    xs = np.empty(n_x, np.uint16)
    ys = np.empty(n_x, np.uint16)
    ps = np.empty(n_x, np.uint8)
    tt = np.empty(n_tr, np.int64)
    tid = np.empty(n_tr, np.uint8)
    tp = np.empty(n_tr, np.uint8)
    fresh = high < 0
    epoch = 0 if fresh else high >> 12
    prev = -1 if fresh else high & 0xFFF
    cur_low = low
    unknown = 0
    back = 0
    dropped = 0
    k = 0
    j = 0
    for i in range(n):
        while m < n_marks and marks[m] <= i:
            ev_at[m] = k
            tr_at[m] = j
            m += 1
        word = w[i]
        c = word >> 12
        v = word & 0xFFF
        if c == _E_ADDR_X:
            if high >= 0:
                t[k] = ((high << 12) + cur_low) * 1000
                xs[k] = v & 0x7FF
                ys[k] = y
                ps[k] = (v >> 11) & 1
                k += 1
            else:
                dropped += 1
        elif c == _E_ADDR_Y:
            y = v & 0x7FF
        elif c == _E_TIME_LOW:
            cur_low = v
        elif c == _E_TIME_HIGH:
            if prev >= 0:
                d = v - prev
                if d < -2048:
                    epoch += 1
                elif d < 0:
                    back += 1
            prev = v
            high = (epoch << 12) + v
            cur_low = 0
        elif c == _E_EXT_TRIGGER:
            if high >= 0:
                tt[j] = ((high << 12) + cur_low) * 1000
                tid[j] = (v >> 8) & 0xF
                tp[j] = v & 1
                j += 1
        elif c == 1 or (c >= 0xB and c <= 0xD):
            unknown += 1
    if high >= 0:
        low = cur_low
    while m < n_marks:
        ev_at[m] = k
        tr_at[m] = j
        m += 1
    return (t[:k], xs[:k], ys[:k], ps[:k], tt[:j], tid[:j], tp[:j], high, low, y, unknown, back, dropped, has_vec,
            ev_at, tr_at)


@_compiled()
def libcaer_cmp_words(w: np.ndarray, time_base_ns: int, x: int) -> tuple:  # noqa: PLR0912, PLR0915  numba decoder state machine; calls cost per event
    """libcaer_cmp: time words restart with each packet, ``x`` carries over (-1: none yet); VECT_BASE_Y sets the
    base y and polarity of the following VECT_8 words (8 y positions each, base advancing by 8; base 0 and OFF
    when a packet has none). Returns event arrays (t in ns) in word order, the new ``x`` and counts (unsupported
    words, events before any ADDR_X)."""
    n = w.shape[0]
    cap = 0
    for i in range(n):
        c = w[i] >> 12
        if c == _C_ADDR_Y:
            cap += 1
        elif c == _C_VECT_8:
            cap += 8
    t = np.empty(cap, np.int64)
    xs = np.empty(cap, np.uint16)
    ys = np.empty(cap, np.uint16)
    ps = np.empty(cap, np.uint8)
    th = 0
    tl = 0
    base_y = 0
    vpol = 0
    unknown = 0
    dropped = 0
    k = 0
    for i in range(n):
        word = w[i]
        c = word >> 12
        v = word & 0xFFF
        if c == _C_ADDR_Y:
            if x >= 0:
                t[k] = time_base_ns + ((th << 12) | tl) * 1000
                xs[k] = x
                ys[k] = v & 0x7FF
                ps[k] = (v >> 11) & 1
                k += 1
            else:
                dropped += 1
        elif c == _C_ADDR_X:
            x = v & 0x7FF
        elif c == _C_TIME_LOW:
            tl = v
        elif c == _C_TIME_HIGH:
            th = v
        elif c == _C_VECT_BASE_Y:
            base_y = v & 0x7FF
            vpol = (v >> 11) & 1
        elif c == _C_VECT_8:
            for b in range(8):
                if (v >> b) & 1:
                    if x >= 0:
                        t[k] = time_base_ns + ((th << 12) | tl) * 1000
                        xs[k] = x
                        ys[k] = base_y + b
                        ps[k] = vpol
                        k += 1
                    else:
                        dropped += 1
            base_y += 8
        else:
            unknown += 1
    return t[:k], xs[:k], ys[:k], ps[:k], x, unknown, dropped


@_compiled(inline="always")
def _u32(b3: np.uint8, b2: np.uint8, b1: np.uint8, b0: np.uint8) -> np.int64:
    """The unsigned 32-bit value of bytes most significant first."""
    return (np.int64(b3) << 24) | (np.int64(b2) << 16) | (np.int64(b1) << 8) | np.int64(b0)


@_compiled()
def dvs_events(b: np.ndarray, off: int, n: int, little: bool) -> tuple:
    """The ``n`` CDR ``Event`` elements of a dvs EventArray starting at byte ``off`` of ``b`` (uint8, after the
    encapsulation header): the first is 14 bytes (x@0 y@2 sec@4 nsec@8 pol@12), later ones 16 (x@0 y@2 sec@6
    nsec@10 pol@14). Returns x, y, t (ns; sec is int32), p (0/1)."""
    xs = np.empty(n, np.uint16)
    ys = np.empty(n, np.uint16)
    t = np.empty(n, np.int64)
    ps = np.empty(n, np.uint8)
    for i in range(n):
        o = off if i == 0 else off + 14 + 16 * (i - 1)
        s = o + 4 if i == 0 else o + 6
        if little:
            xs[i] = b[o] | (np.uint16(b[o + 1]) << 8)
            ys[i] = b[o + 2] | (np.uint16(b[o + 3]) << 8)
            sec = _u32(b[s + 3], b[s + 2], b[s + 1], b[s])
            ns = _u32(b[s + 7], b[s + 6], b[s + 5], b[s + 4])
        else:
            xs[i] = (np.uint16(b[o]) << 8) | b[o + 1]
            ys[i] = (np.uint16(b[o + 2]) << 8) | b[o + 3]
            sec = _u32(b[s], b[s + 1], b[s + 2], b[s + 3])
            ns = _u32(b[s + 4], b[s + 5], b[s + 6], b[s + 7])
        if sec >= 0x80000000:
            sec -= 0x100000000
        t[i] = sec * 1_000_000_000 + ns
        ps[i] = 1 if b[s + 8] != 0 else 0
    return xs, ys, t, ps


@_compiled()
def check_events(t: np.ndarray, x: np.ndarray, y: np.ndarray, width: int, height: int,  # noqa: PLR0917
                 last_t: int) -> tuple:
    """One pass of the stream checks: ``keep`` is False for events outside the sensor and for events earlier than
    the stream's running maximum time (``last_t`` before the batch; every event's time counts, kept or not).
    Returns keep, the count outside, the count earlier (in-bounds only), the first outside (x, y), and the new
    ``last_t`` (the time of the last kept event if any is later)."""
    n = t.shape[0]
    keep = np.empty(n, np.bool_)
    outside = 0
    back = 0
    bx = -1
    by = -1
    run = last_t
    new_last = last_t
    for i in range(n):
        inside = x[i] >= 0 and x[i] < width and y[i] >= 0 and y[i] < height
        mono = t[i] >= run
        run = max(run, t[i])
        if not inside:
            if outside == 0:
                bx = x[i]
                by = y[i]
            outside += 1
        elif not mono:
            back += 1
        keep[i] = inside and mono
        if keep[i]:
            new_last = t[i] if t[i] > new_last else new_last
    return keep, outside, back, bx, by, new_last


@_compiled()
def libcaer_events(data: np.ndarray, ts: np.ndarray, time_base_ns: int) -> tuple:
    """libcaer polarity events from the uint32 ``data`` words (x at bit 17, y at bit 2, polarity at bit 1) and the
    int32 microsecond stamps ``ts``. A stamp more than half the 31-bit range (2**30 us) below its predecessor is a
    rollover of the counter (+2**31 us); a smaller step back is not (it is out of order: a damaged stamp, which the
    stream's checks drop, must not shift the rest of the packet by 2**31 us). Returns t (ns), x, y, p."""
    n = data.shape[0]
    t = np.empty(n, np.int64)
    xs = np.empty(n, np.uint16)
    ys = np.empty(n, np.uint16)
    ps = np.empty(n, np.uint8)
    roll = 0
    prev = np.int64(0)
    for i in range(n):
        s = np.int64(ts[i])
        if i > 0 and s < prev - (1 << 30):
            roll += 1
        prev = s
        t[i] = time_base_ns + (s + (roll << 31)) * 1000
        d = data[i]
        xs[i] = (d >> 17) & 0x7FFF
        ys[i] = (d >> 2) & 0x7FFF
        ps[i] = (d >> 1) & 1
    return t, xs, ys, ps


@_compiled()
def _lnds(t: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Positions (into ``idx``) of a longest non-decreasing subsequence of ``t[idx]`` (patience sorting with
    predecessor links, O(n log n))."""
    n = idx.shape[0]
    tails = np.empty(n, np.int64)  # position (into idx) of the smallest tail of each subsequence length
    prev = np.full(n, -1, np.int64)
    length = 0
    for q in range(n):
        v = t[idx[q]]
        lo = 0
        hi = length
        while lo < hi:  # first length whose tail is > v (non-decreasing: equal values extend)
            mid = (lo + hi) // 2
            if t[idx[tails[mid]]] <= v:
                lo = mid + 1
            else:
                hi = mid
        if lo > 0:
            prev[q] = tails[lo - 1]
        tails[lo] = q
        if lo == length:
            length += 1
    out = np.empty(length, np.int64)
    q = tails[length - 1] if length else -1
    for r in range(length - 1, -1, -1):
        out[r] = q
        q = prev[q]
    return out


@_compiled()
def resync_events(t: np.ndarray, lo: int, hi: int, reach: int, period: int, max_wraps: int,  # noqa: PLR0917, C901, PLR0912, PLR0915  numba per-event repair rules; calls cost per event
                  floor: int, order: bool) -> tuple:
    """One packet's consistency check (``clock.PacketClock`` chooses the window and the mode). ``[lo, hi]`` is
    where the packet's header stamp says its events lie (``lo > hi``: no window); events from ``reach`` up to ``lo``
    continue the previous packet and are kept as they are. An event outside is moved by the whole number of
    ``period``s (a wrap of the sensor clock; 0: none), at most ``max_wraps``, that brings it inside, if any; else
    one below is dropped and one above is marked ``above`` (the caller holds it until the next packet says whether
    it was a long packet's tail or a damaged time). With ``order``, of the remaining events not earlier than
    ``floor`` (the stream's latest time; earlier ones are left to the stream's time check) those outside a longest
    non-decreasing subsequence are dropped too: a damaged time is an outlier among its neighbours. Returns the times
    (re-timed), the keep and above masks and the counts re-timed, dropped below, dropped out of order, held above
    and of events below ``reach`` before any re-timing."""
    n = t.shape[0]
    out = t.copy()
    keep = np.ones(n, np.bool_)
    above = np.zeros(n, np.bool_)
    retimed = 0
    below = 0
    n_above = 0
    raw_below = 0
    if lo <= hi:
        mid = lo + (hi - lo) // 2
        for i in range(n):
            v = out[i]
            if (v >= lo and v <= hi) or (v >= reach and v < lo):
                continue
            if v < reach:
                raw_below += 1
            if period > 0:
                k = (mid - v + period // 2) // period
                if k != 0 and abs(k) <= max_wraps:
                    v2 = v + k * period
                    if v2 >= lo and v2 <= hi:
                        out[i] = v2
                        retimed += 1
                        continue
            keep[i] = False
            if v > hi:
                above[i] = True
                n_above += 1
            else:
                below += 1
    disorder = 0
    if order:
        sorted_ = True
        last = floor
        m = 0
        for i in range(n):
            if keep[i] and out[i] >= floor:
                m += 1
                if out[i] < last:
                    sorted_ = False
                last = out[i]
        if not sorted_:
            idx = np.empty(m, np.int64)
            q = 0
            for i in range(n):
                if keep[i] and out[i] >= floor:
                    idx[q] = i
                    q += 1
            best = _lnds(out, idx)
            chosen = np.zeros(m, np.bool_)
            for r in range(best.shape[0]):
                chosen[best[r]] = True
            for q in range(m):
                if not chosen[q]:
                    keep[idx[q]] = False
                    disorder += 1
    return out, keep, above, retimed, below, disorder, n_above, raw_below


@_compiled(inline="always")
def _clock_window(hist: np.ndarray, stamp: int, floor: int, prm: np.ndarray) -> tuple:
    """``clock.PacketClock.window`` for a stream with history (and ``reach``, as ``check`` computes it) from its state
    array: ``(known, lo, hi, reach)``; ``known`` False when the clock is off or has no history yet."""
    n_hist, warmup, warm_tol, tol_min, tol_above, max_reach, no_floor = (
        prm[0], prm[1], prm[2], prm[3], prm[4], prm[5], prm[7])
    h_last, h_stamps, h_n = n_hist, 2 * n_hist, 3 * n_hist
    n = hist[h_n]
    if hist[h_n + 5] != 0 or n == 0:
        return False, 0, 0, 0
    lo_d = hist[h_last - n]
    hi_d = hist[h_stamps - n]
    lo_last = hi_d
    for r in range(n):
        lo_d = min(lo_d, hist[h_last - n + r])
        hi_d = max(hi_d, hist[h_stamps - n + r])
        lo_last = min(lo_last, hist[h_stamps - n + r])
    below = warm_tol if n < warmup else max(tol_min, hi_d - lo_d)
    above = max(tol_above, (hi_d - lo_last) // 2)
    lo = stamp + lo_d - below
    hi = stamp + hi_d + above
    reach = lo if floor == no_floor else max(min(lo, floor), lo - max_reach)
    return True, lo, hi, reach


@_compiled(inline="always")
def _clock_plain(hist: np.ndarray, stamp: int, has_events: bool, first: int, last: int,  # noqa: PLR0917
                 prm: np.ndarray) -> None:
    """What ``PacketClock.check`` + ``accept`` record for a plain packet stamped ``stamp`` whose events (if any) run
    from ``first`` to ``last``, on the state array."""
    n_hist = prm[0]
    h_last, h_stamps, h_n = n_hist, 2 * n_hist, 3 * n_hist
    for r in range(h_stamps, h_n - 1):
        hist[r] = hist[r + 1]
    hist[h_n - 1] = stamp
    hist[h_n + 1] = min(hist[h_n + 1] + 1, n_hist)
    hist[h_n + 4] += 1
    if has_events:
        hist[h_n + 2] = 0
        hist[h_n + 3] = 0
        for r in range(h_stamps - 1):  # both d histories shift by one (the slot between them is overwritten)
            hist[r] = hist[r + 1]
        hist[h_last - 1] = first - stamp
        hist[h_stamps - 1] = last - stamp
        hist[h_n] = min(hist[h_n] + 1, n_hist)


@_compiled()
def plain_check(t: np.ndarray, x: np.ndarray, y: np.ndarray, hist: np.ndarray, floor: int,  # noqa: PLR0917
                stamp: int, width: int, height: int, prm: np.ndarray) -> tuple:
    """The fast path of ``StreamDecoder`` for decoded packets of the other encodings (libcaer, libcaer_cmp, dvs
    arrays): whether the packet is *plain* (events inside the sensor, in order, not earlier than ``floor``, inside
    the window of its stamp or continuing the previous packet; see ``evt3_plain``), in which case the full check
    keeps it as decoded, and the clock state ``hist`` is updated as it would. Returns ``(plain, new floor)``;
    nothing changes when it is not plain."""
    known, _lo, hi, reach = _clock_window(hist, stamp, floor, prm)
    if not known:
        return False, floor
    last = floor
    for i in range(t.shape[0]):
        tv = t[i]
        if tv < reach or tv > hi or tv < last or x[i] >= width or y[i] >= height:
            return False, floor
        last = tv
    n = t.shape[0]
    _clock_plain(hist, stamp, n > 0, t[0] if n else 0, t[n - 1] if n else 0, prm)
    return True, last


@_compiled()
def libcaer_plain(w: np.ndarray, time_base_ns: int, hist: np.ndarray, floor: int, stamp: int,  # noqa: PLR0917
                  width: int, height: int, prm: np.ndarray) -> tuple:
    """The fast path of ``StreamDecoder`` for one libcaer polarity packet: ``libcaer_events`` and ``plain_check`` in
    one call on the payload's little-endian int32 words ``w`` (data, stamp pairs). Returns ``(plain, t, x, y, p,
    new floor)``; when the packet is not plain (see ``plain_check``) the clock state is unchanged and the full path
    decides. Times must only rise in a plain packet, so only its first event is compared with ``floor`` and the
    window's reach, and only its last with the window's top; the per-event checks are branch-free (they
    vectorise), which is faster than stopping at the first bad event in packets that are almost always plain."""
    n = w.shape[0] // 2
    t = np.empty(n, np.int64)
    xs = np.empty(n, np.uint16)
    ys = np.empty(n, np.uint16)
    ps = np.empty(n, np.uint8)
    known, _lo, hi, reach = _clock_window(hist, stamp, floor, prm)
    if not known:
        return False, t, xs, ys, ps, floor
    roll = 0
    prev = np.int64(0)
    for i in range(n):
        s = np.int64(w[2 * i + 1])
        if i > 0 and s < prev - (1 << 30):
            roll += 1
        prev = s
        t[i] = time_base_ns + (s + (roll << 31)) * 1000
    bad = False
    for i in range(n):
        d = np.int64(w[2 * i]) & 0xFFFFFFFF
        xv = (d >> 17) & 0x7FFF
        yv = (d >> 2) & 0x7FFF
        bad |= bool((xv >= width) | (yv >= height))
        xs[i] = xv
        ys[i] = yv
        ps[i] = (d >> 1) & 1
    for i in range(1, n):
        bad |= t[i] < t[i - 1]
    if bad or (n and (t[0] < max(floor, reach) or t[n - 1] > hi)):
        return False, t, xs, ys, ps, floor
    _clock_plain(hist, stamp, n > 0, t[0] if n else 0, t[n - 1] if n else 0, prm)
    return True, t, xs, ys, ps, t[n - 1] if n else floor


@_compiled()
def evt3_plain(w: np.ndarray, marks: np.ndarray, stamps: np.ndarray, hist: np.ndarray,  # noqa: PLR0917, C901, PLR0912, PLR0915  numba decoder state machine; calls cost per event
               high: int, low: int, y: int, off: int, floor: int, width: int, height: int, prm: np.ndarray) -> tuple:
    """The fast path of ``StreamDecoder`` for evt3 packets without vector words: decode, packet check and stream
    checks in one pass, for each packet ``q`` (words ``marks[q]:marks[q + 1]`` of ``w``, header stamp ``stamps[q]``)
    in turn, as long as the packet is *plain*: every word known, no TIME_HIGH step back, every event timed, inside
    the sensor, not earlier than the one before (nor than ``floor``, the stream's latest time) and inside the window
    its stamp gives (``clock.PacketClock.window``, or continuing the previous packet from ``reach``), its triggers
    too. Exactly then the full path (``codecs.decode_evt3`` + ``PacketClock.check`` + ``check_events``) keeps every
    event as decoded, so the result is the same. The first packet that is not plain stops the run, untouched (its
    words may be damaged: the full path decides).

    ``hist`` is the ``PacketClock`` state (``clock.H_*`` layout), updated in place for each packet taken as
    ``check`` + ``accept`` would; ``high``/``low``/``y`` the carried evt3 state, ``off`` the ROS-time offset.
    ``prm``: ``HISTORY, WARMUP, WARM_TOL_NS, TOL_MIN_NS, TOL_ABOVE_NS, MAX_REACH_NS, FIRST_TOL_NS, no-floor``.
    Returns one buffer (capacity ``n_x`` events and ``n_tr`` triggers: event t int64, trigger t int64, x uint16,
    y uint16, p uint8, trigger id uint8, trigger edge uint8), the packets taken, the events and triggers they hold,
    where the last taken non-empty packet's triggers start (-1: none taken), ``n_x``, ``n_tr`` and the new
    ``high, low, y, floor``."""
    first_tol = prm[6]
    n_packets = stamps.shape[0]
    n_x = 0
    n_tr = 0
    for i in range(marks[n_packets]):  # branch-free: the compiler vectorises it
        c = w[i] >> 12
        n_x += c == _E_ADDR_X
        n_tr += c == _E_EXT_TRIGGER
    buf = np.empty(13 * n_x + 10 * n_tr, np.uint8)
    t = buf[:8 * n_x].view(np.int64)
    tt = buf[8 * n_x:8 * (n_x + n_tr)].view(np.int64)
    at = 8 * (n_x + n_tr)
    xs = buf[at:at + 2 * n_x].view(np.uint16)
    ys = buf[at + 2 * n_x:at + 4 * n_x].view(np.uint16)
    ps = buf[at + 4 * n_x:at + 5 * n_x]
    tid = buf[at + 5 * n_x:at + 5 * n_x + n_tr]
    tp = buf[at + 5 * n_x + n_tr:at + 5 * n_x + 2 * n_tr]
    k = 0
    j = 0
    done = 0
    tr_last = -1
    for q in range(n_packets):
        a = marks[q]
        b = marks[q + 1]
        if a == b:  # an empty payload: only counted (by the caller)
            done += 1
            continue
        stamp = stamps[q]
        known, lo, hi, reach = _clock_window(hist, stamp, floor, prm)
        if not known:
            break
        k0 = k
        j0 = j
        hh = high
        cur_low = low
        yy = y
        epoch = 0 if hh < 0 else hh >> 12
        prev = -1 if hh < 0 else hh & 0xFFF
        last = floor
        # Per event only what can change per event: in order (times only rise within a packet, so the first
        # event is the only one to compare with floor and reach, and the last the only one to compare with hi,
        # after the loop), timed, inside the sensor. The time itself changes only with time words.
        earliest = max(floor, reach)
        tv = ((hh << 12) + cur_low) * 1000 + off
        ok = True
        for i in range(a, b):
            word = w[i]
            c = word >> 12
            v = word & 0xFFF
            if c == _E_ADDR_X:
                xv = v & 0x7FF
                if hh < 0 or tv < earliest or xv >= width or yy >= height:
                    ok = False
                    break
                t[k] = tv
                xs[k] = xv
                ys[k] = yy
                ps[k] = (v >> 11) & 1
                k += 1
                earliest = tv
            elif c == _E_ADDR_Y:
                yy = v & 0x7FF
            elif c == _E_TIME_LOW:
                cur_low = v
                tv = ((hh << 12) + cur_low) * 1000 + off
            elif c == _E_TIME_HIGH:
                if prev >= 0:
                    d = v - prev
                    if d < -2048:
                        epoch += 1
                    elif d < 0:
                        ok = False
                        break
                prev = v
                hh = (epoch << 12) + v
                cur_low = 0
                tv = (hh << 12) * 1000 + off
            elif c == _E_EXT_TRIGGER:
                if hh >= 0:
                    tt[j] = ((hh << 12) + cur_low) * 1000 + off
                    tid[j] = (v >> 8) & 0xF
                    tp[j] = v & 1
                    j += 1
            elif c == 1 or (c >= _E_VECT_BASE_X and c <= _E_VECT_8) or (c >= 0xB and c <= 0xD):
                ok = False  # unknown words, or vector words (the vectorised path decodes those)
                break
        if ok and k > k0:
            last = t[k - 1]
            ok = last <= hi
        if ok and k > k0:
            for r in range(j0, j):
                if tt[r] < lo or tt[r] > hi + first_tol:
                    ok = False
                    break
        if not ok:
            k = k0
            j = j0
            break
        high = hh
        if hh >= 0:
            low = cur_low
        y = yy
        floor = last
        _clock_plain(hist, stamp, k > k0, t[k0] if k > k0 else 0, t[k - 1] if k > k0 else 0, prm)
        tr_last = j0
        done += 1
    return buf, done, k, j, tr_last, n_x, n_tr, high, low, y, floor


@_compiled()
def frame_counts(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray, edges: np.ndarray,  # noqa: PLR0917
                 lut_x: np.ndarray, lut_y: np.ndarray, width: int, out: np.ndarray) -> int:
    """Add each event with ``edges[b] <= t < edges[b + 1]`` to ``out[b, p * plane + lut_y[y] * width + lut_x[x]]``
    (``plane`` = ``out.shape[1] // 2``; events mapped to -1 are cropped away): the event frames of ``framing`` in one
    pass, without per-event index arrays. Counts are exact below 2**24 per cell (float32). Returns how many events
    had coordinates beyond the tables or a polarity above 1 (not counted)."""
    nb = edges.shape[0] - 1
    bad = 0
    plane = out.shape[1] // 2
    b = 0
    for i in range(t.shape[0]):
        ti = t[i]
        if b >= nb or ti < edges[b] or ti >= edges[b + 1]:  # (sorted input: the bin only moves forward)
            if ti < edges[0] or ti >= edges[nb]:
                continue
            lo = 0
            hi = nb
            while hi - lo > 1:  # the bin whose [edges[k], edges[k + 1]) holds ti
                mid = (lo + hi) // 2
                if edges[mid] <= ti:
                    lo = mid
                else:
                    hi = mid
            b = lo
        if x[i] >= lut_x.shape[0] or y[i] >= lut_y.shape[0] or p[i] > 1:
            bad += 1
            continue
        xo = lut_x[x[i]]
        yo = lut_y[y[i]]
        if xo >= 0 and yo >= 0:
            out[b, p[i] * plane + yo * width + xo] += 1.0
    return bad


@_compiled()
def aedat_events_ok(b: np.ndarray, start: int, n: int, width: int, height: int) -> tuple:
    """Whether the ``n`` AEDAT4 ``Event`` structs at byte ``start`` of the flatbuffer ``b`` (uint8; 16 bytes each,
    little endian: int64 timestamp, int16 x, int16 y, bool polarity) are sane: time never decreasing, polarity 0/1,
    coordinates inside ``width`` x ``height`` (0: unknown, only >= 0). Returns it with the first and last timestamps
    (0 for none): one pass, for the check that runs before dv-processing reads a file."""
    prev = np.int64(0)
    first = np.int64(0)
    for i in range(n):
        o = start + 16 * i
        ts = np.int64(0)
        for k in range(7, -1, -1):
            ts = (ts << 8) | np.int64(b[o + k])
        x = np.int64(b[o + 8]) | (np.int64(b[o + 9]) << 8)
        y = np.int64(b[o + 10]) | (np.int64(b[o + 11]) << 8)
        if x >= 0x8000:
            x -= 0x10000
        if y >= 0x8000:
            y -= 0x10000
        if (i > 0 and ts < prev) or b[o + 12] > 1 or x < 0 or y < 0 or (width > 0 and x >= width) or \
                (height > 0 and y >= height):
            return False, first, prev
        if i == 0:
            first = ts
        prev = ts
    return True, first, prev


@_compiled()
def scan_columns(t: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray, width: int,  # noqa: PLR0917
                 height: int, horizon: int) -> tuple:
    """One pass over an event batch's columns for the event buffer: how many events lie outside the
    ``width`` x ``height`` sensor or have a polarity above 1, how many are earlier than ``horizon`` (late), and of
    the others whether their times never decrease and their smallest and largest time (0 when none)."""
    bad = 0
    late = 0
    ordered = True
    prev = np.int64(0)
    tmin = np.int64(0)
    tmax = np.int64(0)
    kept = 0
    for i in range(t.shape[0]):
        if x[i] >= width or y[i] >= height or p[i] > 1:
            bad += 1
        v = t[i]
        if v < horizon:
            late += 1
            continue
        if kept == 0:
            tmin = v
            tmax = v
        else:
            if v < prev:
                ordered = False
            tmin = min(tmin, v)
            tmax = max(tmax, v)
        prev = v
        kept += 1
    return bad, late, ordered, tmin, tmax
