"""How a stream's event times relate to its packets' header stamps, and the check of each packet against it.

Drivers stamp each packet with a time close to its events (metavision: about the first event; libcaer: about the
last). A damaged time word or field moves events away from that stamp, or out of order with their neighbours; a
damaged stamp moves the stamp away from its events. Two witnesses therefore say where a packet's events belong: its
stamp, and the stream itself (a packet continues where the previous one ended). ``PacketClock`` learns the stamp
relation from the last packets (``d = event time - stamp`` of each packet's first and last kept event) and gives a
packet the window ``[stamp + min d_first - below, stamp + max d_last + above]`` (``below`` = the spread of those d, at
least ``TOL_MIN_NS``, ``WARM_TOL_NS`` during the first ``WARMUP`` packets; ``above`` = half the spread of d_last, at
least ``TOL_ABOVE_NS``: tight, since events above are only held; ``stamp +- FIRST_TOL_NS`` for a stream's first
packet when its times are ROS times). Then, by what most of the packet's events say:

- most events inside or above the window (the normal case; always for undamaged packets). Events below it but not
  earlier than the previous packet's end continue that packet and are kept (however long the packet). An event
  outside is moved by the whole number of sensor-clock wraps (at most ``MAX_WRAPS``) that brings it inside (a
  corrupt evt3 TIME_HIGH word taken for a wrap, a libcaer stamp taken for a rollover), else dropped if below, or,
  if above, held back by the decoder until the next packet: if that packet's events all come after it, it was the
  tail of a packet longer than any recent one (or the stamp was early) and is released, else its time was damaged
  and it is dropped. Events out of time order with their neighbours (a damaged time word) are dropped.
- most events below, but a whole number of wraps away, and then continuing the stream: the carried wrap count was
  wrong (a false wrap at the very start of the packet): they are moved.
- most events below, and the events as decoded continue the stream: the stamp is damaged (late). The packet is
  taken as decoded (only the order check applies) and teaches nothing.
- neither: the packet is refused (its times are damaged, or the stream jumped back).
- all events above: held like any (the next packet judges them), and counted as a disagreement.

A re-timing is never trusted to a stamp alone: a damaged stamp a whole number of wraps off must not move a good
packet. When two consecutive packets disagree with the relation by the same offset, it is the relation that changed
(the anchor packet was damaged, the camera restarted, the clock jumped): it is re-learned from that packet
("re-anchor"); where the events did not continue the stream, evt3 times in ROS time are moved to follow the stamps.
A second re-anchor within ``HISTORY`` packets means the stream's stamps do not follow its event time at all (a
driver stamping zeros): the stamp check is turned off for that stream, leaving the order and time checks.

Every packet not refused and whose stamp was used teaches the relation with the times it keeps (released tails
too), so the window follows streams whose packets grow longer. What stays undetected: a shift inside the window (up
to ``above`` past the packet's expected end). A forward one at the end of a packet makes the stream's time check drop
the next packet's events earlier than it (part of the next packet, not beyond). The first packet of a stream is only
checked grossly (``FIRST_TOL_NS``): it sets the relation, and for evt3 the anchor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hstnn_ros.perception.events.kernels import resync_events

#: Packets of history the window is computed from.
HISTORY = 16
#: Packets a stream needs before the fine window applies (the gross one before).
WARMUP = 4
#: Least margin of the fine window (stamps jitter by ~1 ms in real recordings).
TOL_MIN_NS = 2_000_000
#: Least margin above the window: events above it are only held for a packet, so it can be tight; it bounds how
#: far an undetected forward shift can hold the stream's clock ahead (in the next packet, not beyond).
TOL_ABOVE_NS = 500_000
#: Margin below the window used while warming up (real packets span 1-20 ms).
WARM_TOL_NS = 200_000_000
#: Margin around the stamp for a stream's first packet (nothing learned yet; well inside half an evt3 wrap period, so
#: a wrap inside the packet is still undone).
FIRST_TOL_NS = 5_000_000_000
#: How far below its stamp's window a packet may reach to continue the previous one.
MAX_REACH_NS = 4_000_000_000
#: Most wraps an event may be moved by (a corrupt word fakes one wrap; two at most in one packet).
MAX_WRAPS = 2
#: How far after the stream's latest time a packet whose stamp is doubted may start and still "continue the stream"
#: (at least; four typical packet spacings if more).
CONTINUE_NS = 200_000_000

_NO_FLOOR = int(np.iinfo(np.int64).min)


@dataclass(slots=True)
class Verdict:
    """The outcome of one packet's check: its times (re-timed), which events to keep and which lie above the window
    (to hold), the counts re-timed, dropped below the window and dropped out of order, the window (None: not
    checked), whether the whole packet was refused, whether its stamp was doubted (the packet was taken as decoded),
    whether the relation was re-learned from it, and the shift then applied to its times (0 if none)."""

    t: np.ndarray
    keep: np.ndarray
    above: np.ndarray
    retimed: int
    outside: int
    disorder: int
    window: tuple[int, int] | None
    refused: bool
    stamp_doubted: bool
    reanchored: bool
    shift: int
    held: int = 0  #: events above the window
    below_before: int = 0  #: events below the window before any re-timing (decides whether the stamp is believed)

    @property
    def plain(self) -> bool:
        """Whether the check changed nothing (every event kept as decoded)."""
        return not (self.retimed or self.outside or self.disorder or self.held or self.refused)

    @property
    def teaches(self) -> bool:
        """Whether the packet's kept times may teach the relation: all packets whose stamp was used and which were not
        refused. Packets the check trimmed teach too (their kept times lie inside the window), so a stream whose
        packets legitimately grow longer widens its window instead of losing their tails for good."""
        return not (self.refused or self.stamp_doubted)


#: Layout of ``PacketClock.h``, the clock's whole state in one int64 array (so that the compiled fast path,
#: ``kernels.evt3_plain``, reads and updates it in place): three histories of ``HISTORY`` slots, each holding its
#: values at its end (oldest first), then the scalars.
H_FIRST, H_LAST, H_STAMPS = 0, HISTORY, 2 * HISTORY  # d_first, d_last and stamps of the last packets
H_N = 3 * HISTORY  #: packets in the d_first / d_last histories (always appended together)
H_NS = H_N + 1  #: stamps in the stamp history
H_ODD = H_N + 2  #: 1 if the previous packet disagreed with the relation (by ``H_ODD_BY``)
H_ODD_BY = H_N + 3
H_SINCE = H_N + 4  #: packets since the last re-anchor
H_OFF = H_N + 5  #: 1 once the stamps were found not to follow event time
H_SIZE = H_N + 6
#: The window constants as ``kernels.evt3_plain`` takes them (an argument, not numba globals frozen into its cache).
KERNEL_PARAMS = np.array([HISTORY, WARMUP, WARM_TOL_NS, TOL_MIN_NS, TOL_ABOVE_NS, MAX_REACH_NS, FIRST_TOL_NS,
                          _NO_FLOOR], np.int64)


class PacketClock:
    """The stamp/event-time relation of one stream (see the module docstring). Its state is the int64 array ``h``
    (layout ``H_*``), which the compiled fast path reads and, for plain packets, updates exactly as ``check`` +
    ``accept`` would."""

    def __init__(self) -> None:
        self.h = np.zeros(H_SIZE, np.int64)
        self.h[H_SINCE] = HISTORY

    # -- the histories (oldest first) and scalars of ``h``
    @property
    def _first(self) -> np.ndarray:
        return self.h[H_LAST - self.h[H_N]:H_LAST]

    @property
    def _last(self) -> np.ndarray:
        return self.h[H_STAMPS - self.h[H_N]:H_STAMPS]

    @property
    def _stamps(self) -> np.ndarray:
        return self.h[H_N - self.h[H_NS]:H_N]

    @property
    def _odd_by(self) -> int | None:
        """Offset by which the previous packet disagreed with the relation (None: it agreed)."""
        return int(self.h[H_ODD_BY]) if self.h[H_ODD] else None

    @_odd_by.setter
    def _odd_by(self, value: int | None) -> None:
        self.h[H_ODD] = value is not None
        self.h[H_ODD_BY] = value or 0

    @property
    def _since_reanchor(self) -> int:
        return int(self.h[H_SINCE])

    @property
    def off(self) -> bool:
        """The stamps were found not to follow event time: no stamp check for this stream."""
        return bool(self.h[H_OFF])

    @off.setter
    def off(self, value: bool) -> None:
        self.h[H_OFF] = bool(value)

    def _push(self, base: int, count: int, value: int) -> None:
        h = self.h
        h[base:base + HISTORY - 1] = h[base + 1:base + HISTORY]
        h[base + HISTORY - 1] = value
        h[count] = min(int(h[count]) + 1, HISTORY)

    def _pop_stamp(self) -> None:
        """Forget the newest stamp."""
        h = self.h
        h[H_STAMPS + 1:H_N] = h[H_STAMPS:H_N - 1].copy()
        h[H_NS] = max(int(h[H_NS]) - 1, 0)

    def copy(self) -> PacketClock:
        """An independent copy (to try a run of packets and commit it only if all of them are plain)."""
        other = PacketClock()
        other.h[:] = self.h
        return other

    @property
    def doubting(self) -> bool:
        """Whether the previous packet disagreed with the relation (the next one may re-anchor)."""
        return bool(self.h[H_ODD])

    def reset(self) -> None:
        """Forget the learned relation (``off`` stays: a new decoder state starts with a new ``PacketClock``)."""
        self.h[H_N] = self.h[H_NS] = 0
        self._odd_by = None

    def d_last(self) -> int:
        """Typical ``last event - stamp`` (median over the history; 0 with none)."""
        return int(np.median(self._last)) if self.h[H_N] else 0

    def window(self, stamp: int, ros_clock: bool = False) -> tuple[int, int] | None:
        """Where the events of a packet stamped ``stamp`` should lie; before the first accepted packet, around the
        stamp itself if the events are in ROS time (``ros_clock``), else None (and always None once ``off``)."""
        if self.off:
            return None
        n = int(self.h[H_N])
        if not n:
            return (stamp - FIRST_TOL_NS, stamp + FIRST_TOL_NS) if ros_clock else None
        first, last = self._first, self._last
        lo = int(first.min())
        hi = int(last.max())
        below = WARM_TOL_NS if n < WARMUP else max(TOL_MIN_NS, hi - lo)
        above = max(TOL_ABOVE_NS, (hi - int(last.min())) // 2)
        return stamp + lo - below, stamp + hi + above

    def continues(self, t: np.ndarray, floor: int) -> bool:
        """Whether times ``t`` (as they are) continue a stream whose latest time is ``floor``."""
        if floor == _NO_FLOOR:
            return True
        stamps = self._stamps
        spacing = int(np.median(np.diff(stamps))) if len(stamps) > 2 else 0
        med = int(np.median(t))
        return floor - TOL_MIN_NS - WARM_TOL_NS <= med <= floor + max(CONTINUE_NS, 4 * abs(spacing))

    def check(self, t: np.ndarray, stamp: int, period: int, floor: int, *, shiftable: bool, ros_clock: bool,
              order: bool = True) -> Verdict:
        """Check one packet's event times ``t`` (int64 ns, as decoded) against the window of ``stamp``; ``period``
        is the encoding's sensor-clock wrap in ns (0: none), ``floor`` the stream's latest time. ``shiftable``: the
        decoder may move this stream's times on a re-anchor (evt3 in ROS time, anchored by a stamp); otherwise a
        re-anchor only re-learns the relation. ``ros_clock``: the times are ROS times, comparable with stamps."""
        w = self.window(stamp, ros_clock)
        n = len(t)
        if w is None or n == 0:
            return self._apply(t, None, period, floor, order=order, stamp=stamp)
        lo, hi = w
        reach = max(min(lo, floor), lo - MAX_REACH_NS) if self.h[H_N] and floor != _NO_FLOOR else lo
        v = self._apply(t, w, period, floor, order=order, stamp=stamp, reach=reach)
        mid = lo + (hi - lo) // 2
        if v.held == n:  # all above: held; but if the previous packet was above by as much, the stream jumped ahead
            by = int(np.median(t)) - mid
            if self._odd_by is not None and abs(by - self._odd_by) <= self._agree_tol():
                self._pop_stamp()
                shift = stamp + (int(np.median(self._first)) if self.h[H_N] else 0) - int(t[0])
                return self._reanchor(t, stamp, shift if shiftable else 0, floor, order)
            self._odd_by = by
            return v
        if 2 * v.below_before <= n:  # most events agree with the stamp, or lie above it (held, then judged)
            self._odd_by = None
            return v
        self._pop_stamp()
        med = int(np.median(t))
        if period:  # a false wrap before the packet: all of it a whole number of wraps away
            k = (mid - med + period // 2) // period
            moved = t + k * period
            if 0 < abs(k) <= MAX_WRAPS and 2 * np.count_nonzero((moved >= lo) & (moved <= hi)) >= n and \
                    self.continues(moved, floor):
                self._odd_by = None
                return self._apply(t, w, period, floor, order=order, stamp=stamp, reach=reach)
        by = med - mid
        consistent = self._odd_by is not None and abs(by - self._odd_by) <= self._agree_tol()
        if self.continues(t, floor):  # the events continue the stream: the stamp is doubted
            if consistent:
                return self._reanchor(t, stamp, 0, floor, order)
            self._odd_by = by
            v = self._apply(t, None, period, floor, order=order, stamp=stamp)
            return Verdict(v.t, v.keep, v.above, 0, 0, v.disorder, None, False, True, False, 0, v.held)
        if consistent:  # the stream jumped: follow the stamps
            shift = stamp + (int(np.median(self._first)) if self.h[H_N] else 0) - int(t[0])
            return self._reanchor(t, stamp, shift if shiftable else 0, floor, order)
        self._odd_by = by
        return Verdict(t, np.zeros(n, np.bool_), np.zeros(n, np.bool_), 0, n, 0, w, True, False, False, 0)

    def _apply(self, t: np.ndarray, w: tuple[int, int] | None, period: int, floor: int, *, order: bool, stamp: int,
               reach: int | None = None) -> Verdict:
        lo, hi = w if w is not None else (1, 0)
        out, keep, above, retimed, below, disorder, held, below_before = resync_events(
            t, lo, hi, lo if reach is None else reach, period, MAX_WRAPS, floor, order)
        self._push(H_STAMPS, H_NS, stamp)
        self.h[H_SINCE] += 1
        return Verdict(out, keep, above, int(retimed), int(below), int(disorder), w, False, False, False, 0,
                       int(held), int(below_before))

    def _agree_tol(self) -> int:
        """How closely two packets' disagreements must match to count as the same offset: a packet span."""
        return max(TOL_MIN_NS, int(self._last.max()) - int(self._first.min())) if self.h[H_N] else TOL_MIN_NS

    def _reanchor(self, t: np.ndarray, stamp: int, shift: int, floor: int, order: bool) -> Verdict:
        """Two consecutive packets disagree with the relation in the same way: the relation changed; re-learn it
        from this packet (moving its times by ``shift``). A second re-anchor within ``HISTORY`` packets means the
        stamps do not follow event time at all: the stamp check is turned off for the stream (``off``)."""
        if self._since_reanchor < HISTORY:
            self.off = True
            shift = 0
        self.reset()
        self.h[H_SINCE] = 0
        v = self._apply(t + shift, None, 0, floor, order=order, stamp=stamp)
        return Verdict(v.t, v.keep, v.above, 0, 0, v.disorder, None, False, False, True, shift, v.held)

    def plain(self, stamp: int, first: int | None, last: int | None) -> None:
        """Record a packet the check would have left unchanged (what ``check`` + ``accept`` record for it), without
        running the check: for runs of packets decoded in one call."""
        self._push(H_STAMPS, H_NS, stamp)
        self.h[H_SINCE] += 1
        self._odd_by = None
        if first is not None and last is not None:
            self.accept(stamp, first, last)

    def widen(self, stamp: int, t_last: int) -> None:
        """Learn that the packet stamped ``stamp`` reached ``t_last`` (its held tail was released; call only for a
        packet that also had events inside its window, so that a damaged early stamp teaches nothing)."""
        self.accept(stamp, t_last, t_last)

    def accept(self, stamp: int, first: int, last: int) -> None:
        """Learn from a packet's first and last kept event time (call for packets whose verdict ``teaches``)."""
        h = self.h
        h[H_FIRST:H_LAST - 1] = h[H_FIRST + 1:H_LAST]
        h[H_LAST:H_STAMPS - 1] = h[H_LAST + 1:H_STAMPS]
        h[H_LAST - 1] = first - stamp
        h[H_STAMPS - 1] = last - stamp
        h[H_N] = min(int(h[H_N]) + 1, HISTORY)
