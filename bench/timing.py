"""Interleaved A/B timing: how every benchmark here measures a ratio of two timings.

On a shared machine, timing A fifteen times and then B fifteen times measures the load as much as the code
(``bench_model`` once printed "batched is 0.52x faster" and, in the next run, "2.39x"). :func:`compare` alternates
the two (A B, B A, A B, ...: neither always runs first, nor always right after the other's cache misses), repeats,
and reports each side's absolute min / median / max and the min / median / max of the per-pair ratio, so a reader
sees the spread and can tell a real difference from the noise of the machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Spread:
    """Min / median / max of a set of measurements."""

    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        return cls(min(values), statistics.median(values), max(values))

    def scaled(self, factor: float) -> Spread:
        """The same spread times a positive constant (e.g. seconds -> ms, or a ratio -> a share)."""
        return Spread(self.min * factor, self.median * factor, self.max * factor)

    def fmt(self, unit: str = "", digits: int = 3) -> str:
        """``min a / median b / max c`` with ``digits`` significant digits and a unit suffix."""
        return " / ".join(f"{k} {v:.{digits}g}{unit}" for k, v in (("min", self.min), ("median", self.median),
                                                                   ("max", self.max)))


@dataclass(frozen=True)
class Comparison:
    """Timings of A and B in seconds per call, and the per-pair ratio ``time A / time B`` (B's speed-up over A)."""

    name_a: str
    name_b: str
    pairs: int
    a: Spread
    b: Spread
    ratio: Spread

    def report(self) -> str:
        """Three lines: both sides' absolute times and the ratio, each as min / median / max."""
        return (f"  {self.name_a}: {self.a.scaled(1e3).fmt(' ms')}\n"
                f"  {self.name_b}: {self.b.scaled(1e3).fmt(' ms')}\n"
                f"  {self.name_a} / {self.name_b} time ratio ({self.pairs} interleaved pairs): {self.ratio.fmt('x')}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: seconds per call and the ratio spreads."""
        return {"a": self.name_a, "b": self.name_b, "pairs": self.pairs, "a_s": asdict(self.a), "b_s": asdict(self.b),
                "ratio_a_over_b": asdict(self.ratio)}


def _timed(fn: Callable[[], Any], number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def compare(a: Callable[[], Any], b: Callable[[], Any], *, pairs: int, name_a: str = "A", name_b: str = "B",
            warmup: int = 1, number: int = 1) -> Comparison:
    """Time ``a`` and ``b`` in ``pairs`` interleaved pairs (order alternating) after ``warmup`` untimed calls each.

    ``number`` calls make one timing (for calls too short to time alone); times are per call."""
    if pairs < 1 or number < 1:
        raise ValueError(f"compare needs pairs >= 1 and number >= 1, got pairs={pairs}, number={number}")
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for i in range(pairs):
        if i % 2 == 0:
            ta.append(_timed(a, number))
            tb.append(_timed(b, number))
        else:
            tb.append(_timed(b, number))
            ta.append(_timed(a, number))
    return Comparison(name_a, name_b, pairs, Spread.of(ta), Spread.of(tb),
                      Spread.of([x / y for x, y in zip(ta, tb, strict=True)]))
