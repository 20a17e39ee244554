"""Event statistics (events/s, per-pixel rate, ON ratio) so that synthetic and real recordings can be compared."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EventStats:
    """Summary of one event stream."""

    name: str
    width: int
    height: int
    duration_s: float
    events: int
    on_events: int

    @property
    def events_per_s(self) -> float:
        return self.events / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def events_per_px_s(self) -> float:
        """Rate normalised by sensor size, comparable across resolutions."""
        return self.events_per_s / (self.width * self.height)

    @property
    def on_ratio(self) -> float:
        return self.on_events / self.events if self.events else float("nan")

    def to_dict(self) -> dict[str, float | int | str | None]:
        return {"name": self.name, "width": self.width, "height": self.height, "duration_s": self.duration_s,
                "events": self.events, "on_events": self.on_events,
                "events_per_s": self.events_per_s, "events_per_px_s": self.events_per_px_s,
                "on_ratio": self.on_ratio if self.events else None}


class StatsAccumulator:
    """Streams event batches (time-ordered ``t_ns`` and ``p``) into an ``EventStats`` without keeping them."""

    def __init__(self, name: str, width: int, height: int) -> None:
        self.name, self.width, self.height = name, width, height
        self.t_first: int | None = None
        self.t_last: int | None = None
        self.events = 0
        self.on = 0

    def add(self, t_ns: np.ndarray, p: np.ndarray) -> None:
        """Account for one batch."""
        if t_ns.size == 0:
            return
        lo, hi = int(t_ns.min()), int(t_ns.max())
        self.t_first = lo if self.t_first is None else min(self.t_first, lo)
        self.t_last = hi if self.t_last is None else max(self.t_last, hi)
        self.events += int(t_ns.size)
        self.on += int(np.count_nonzero(p))

    def add_span(self, t0_ns: int, t1_ns: int) -> None:
        """Extend the observed time span (e.g. to the recording's length when its ends are quiet)."""
        self.t_first = t0_ns if self.t_first is None else min(self.t_first, t0_ns)
        self.t_last = t1_ns if self.t_last is None else max(self.t_last, t1_ns)

    def result(self) -> EventStats:
        dur = 0.0 if self.t_first is None or self.t_last is None else (self.t_last - self.t_first) * 1e-9
        return EventStats(self.name, self.width, self.height, dur, self.events, self.on)


def format_stats_table(rows: list[EventStats]) -> str:
    """Side-by-side text table of several streams."""
    head = f"{'stream':<44} {'sensor':>9} {'dur s':>7} {'events':>10} {'ev/s':>11} {'ev/px/s':>8} {'ON':>5}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.name[:44]:<44} {f'{r.width}x{r.height}':>9} {r.duration_s:7.2f} {r.events:10d} "
                     f"{r.events_per_s:11.0f} {r.events_per_px_s:8.2f} {r.on_ratio:5.2f}")
    return "\n".join(lines)
