"""The columnar event batch every decoder produces and every consumer takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hstnn_ros.perception.errors import DecodeError


@dataclass(frozen=True, eq=False)
class EventBatch:
    """Events as parallel numpy columns: ``t_ns`` int64 (ns), ``x``/``y`` uint16 pixel coordinates, ``p`` uint8
    polarity (1 = ON), plus the sensor ``width`` x ``height``. Arrays are coerced to those dtypes."""

    t_ns: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        for name, dt in (("t_ns", np.int64), ("x", np.uint16), ("y", np.uint16), ("p", np.uint8)):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=dt).reshape(-1))
        n = len(self.t_ns)
        if not (len(self.x) == len(self.y) == len(self.p) == n):
            raise DecodeError(f"EventBatch columns differ in length: t_ns {n}, x {len(self.x)}, y {len(self.y)}, "
                              f"p {len(self.p)}")
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    def __len__(self) -> int:
        return len(self.t_ns)

    @classmethod
    def trusted(cls, t_ns: np.ndarray, x: np.ndarray, y: np.ndarray, p: np.ndarray, width: int,  # noqa: PLR0917
                height: int) -> EventBatch:
        """A batch of columns that are already what ``__post_init__`` would make of them (1-D, contiguous, of equal
        length, int64 / uint16 / uint16 / uint8; ``width``/``height`` ints): decoder output, taken as is, without
        the coercion's checks and copies (which cost more than decoding a small packet)."""
        b = object.__new__(cls)
        b.__dict__.update(t_ns=t_ns, x=x, y=y, p=p, width=width, height=height)
        return b

    @classmethod
    def empty(cls, width: int, height: int) -> EventBatch:
        """A batch without events for a ``width`` x ``height`` sensor."""
        z = np.zeros(0)
        return cls(z, z, z, z, width, height)

    @staticmethod
    def concat(batches: Sequence[EventBatch]) -> EventBatch:
        """The events of ``batches`` one after another (all must share one sensor size)."""
        if not batches:
            raise DecodeError("EventBatch.concat needs at least one batch")
        sizes = {(b.width, b.height) for b in batches}
        if len(sizes) > 1:
            raise DecodeError(f"EventBatch.concat: batches of different sensor sizes {sorted(sizes)}")
        w, h = sizes.pop()
        return EventBatch(np.concatenate([b.t_ns for b in batches]), np.concatenate([b.x for b in batches]),
                          np.concatenate([b.y for b in batches]), np.concatenate([b.p for b in batches]), w, h)

    def select(self, index: np.ndarray | slice) -> EventBatch:
        """The events picked by a boolean mask, index array or slice."""
        return EventBatch(self.t_ns[index], self.x[index], self.y[index], self.p[index], self.width, self.height)

    def slice_time(self, t0_ns: int, t1_ns: int) -> EventBatch:
        """Events with ``t0_ns <= t_ns < t1_ns`` (the batch must be time-sorted; O(log n))."""
        i0, i1 = np.searchsorted(self.t_ns, [t0_ns, t1_ns], side="left")
        return self.select(slice(int(i0), int(i1)))

    def is_sorted(self) -> bool:
        """True if timestamps never decrease."""
        return bool(len(self.t_ns) < 2 or np.all(self.t_ns[1:] >= self.t_ns[:-1]))

    def validate(self) -> None:
        """Raise ``DecodeError`` naming the first problem: coordinates outside the sensor, polarity not 0/1, time
        going backwards, or a non-positive sensor size."""
        if self.width <= 0 or self.height <= 0:
            raise DecodeError(f"EventBatch: sensor size {self.width}x{self.height} must be positive")
        if len(self) == 0:
            return
        if int(self.x.max()) >= self.width or int(self.y.max()) >= self.height:
            raise DecodeError(f"EventBatch: coordinates up to ({int(self.x.max())}, {int(self.y.max())}) outside the "
                              f"{self.width}x{self.height} sensor")
        if int(self.p.max()) > 1:
            raise DecodeError(f"EventBatch: polarity values {sorted(set(np.unique(self.p).tolist()))}, expected 0/1")
        if not self.is_sorted():
            i = int(np.argmax(self.t_ns[1:] < self.t_ns[:-1]))
            raise DecodeError(f"EventBatch: time goes backwards at event {i + 1} ({self.t_ns[i]} -> "
                              f"{self.t_ns[i + 1]} ns)")
