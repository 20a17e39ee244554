"""Colour and aligned-depth frames paired by stamp: the one pairing rule of the node, replay and dataset building.

A colour frame takes the depth frame whose stamp is nearest to its own within ``slop_ns``. Colour frames leave in
stamp order: the oldest waits for its depth until the stream (either topic) has moved ``max_wait_ns`` past it, then
leaves without depth (counted). The clock is the data's own stamps, so a live node and a bag replay pair alike.
Memory is bounded: at most ``max_pending`` frames of each kind wait; beyond that the oldest are let go (counted).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from hstnn_ros import defaults

C = TypeVar("C")
D = TypeVar("D")


@dataclass
class PairingCounters:
    """Monotone counts: ``colour_in == paired + colour_without_depth + pending colour``."""

    colour_in: int = 0
    depth_in: int = 0
    paired: int = 0
    colour_without_depth: int = 0
    depth_unmatched: int = 0


@dataclass(frozen=True)
class Paired(Generic[C, D]):
    """A colour frame and its depth (``None`` when none came in time)."""

    stamp_ns: int
    colour: C
    depth: D | None


class RgbdPairer(Generic[C, D]):
    """Pairs colour and depth frames by stamp (see the module docstring)."""

    def __init__(self, slop_ns: int = defaults.RGBD_SLOP_NS, max_wait_ns: int = defaults.RGBD_MAX_WAIT_NS,
                 max_pending: int = 64) -> None:
        self.slop_ns, self.max_wait_ns, self.max_pending = int(slop_ns), int(max_wait_ns), int(max_pending)
        self.counters = PairingCounters()
        self._colour: deque[tuple[int, C]] = deque()
        self._depth: dict[int, D] = {}
        self._matched: dict[int, D] = {}  # colour stamp -> its depth
        self._newest = -(2**62)

    def push_colour(self, stamp_ns: int, colour: C) -> list[Paired[C, D]]:
        """Add a colour frame; returns the frames ready to leave (oldest first)."""
        self.counters.colour_in += 1
        stamp_ns = int(stamp_ns)
        self._colour.append((stamp_ns, colour))
        d = self._take_depth(stamp_ns)
        if d is not None:
            self._matched[stamp_ns] = d
        self._newest = max(self._newest, stamp_ns)
        return self._release()

    def push_depth(self, stamp_ns: int, depth: D) -> list[Paired[C, D]]:
        """Add a depth frame; returns the frames ready to leave (oldest first)."""
        self.counters.depth_in += 1
        stamp_ns = int(stamp_ns)
        waiting = [s for s, _ in self._colour if s not in self._matched and abs(s - stamp_ns) <= self.slop_ns]
        if waiting:
            self._matched[min(waiting, key=lambda s: abs(s - stamp_ns))] = depth
        else:
            self._depth[stamp_ns] = depth
            if len(self._depth) > self.max_pending:
                self._depth.pop(min(self._depth))
                self.counters.depth_unmatched += 1
        self._newest = max(self._newest, stamp_ns)
        return self._release()

    def flush(self) -> list[Paired[C, D]]:
        """Every waiting colour frame, with its depth if it has one (end of a recording)."""
        out = self._release(everything=True)
        self.counters.depth_unmatched += len(self._depth)
        self._depth.clear()
        return out

    def _take_depth(self, stamp_ns: int) -> D | None:
        near = [s for s in self._depth if abs(s - stamp_ns) <= self.slop_ns]
        if not near:
            return None
        return self._depth.pop(min(near, key=lambda s: abs(s - stamp_ns)))

    def _release(self, *, everything: bool = False) -> list[Paired[C, D]]:
        out: list[Paired[C, D]] = []
        while self._colour:
            stamp, colour = self._colour[0]
            due = everything or stamp in self._matched or self._newest - stamp > self.max_wait_ns \
                or len(self._colour) > self.max_pending
            if not due:
                break
            self._colour.popleft()
            depth = self._matched.pop(stamp, None)
            if depth is None:
                self.counters.colour_without_depth += 1
            else:
                self.counters.paired += 1
            out.append(Paired(stamp, colour, depth))
        # depth older than every waiting colour frame can never match
        horizon = (self._colour[0][0] if self._colour else self._newest) - self.slop_ns - self.max_wait_ns
        for s in [s for s in self._depth if s < horizon]:
            del self._depth[s]
            self.counters.depth_unmatched += 1
        return out
