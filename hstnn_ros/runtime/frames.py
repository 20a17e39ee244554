"""The engine's decision-frame side: a bounded reorder queue of RGB(-D) frames and the ring buffers of front-end
features that make up the current window (the events-only frame clock is ``perception.window.VirtualClock``, shared
with the dataset builder). Each part owns its counters."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from hstnn_ros.perception.enums import DropPolicy
from hstnn_ros.perception.window import WindowSpec, assemble_window


@dataclass(order=True)
class PendingFrame:
    """A decision frame waiting for its reorder delay: an RGB(-D) frame, or a virtual frame (no image)."""

    stamp_ns: int
    image: np.ndarray | None = field(compare=False, default=None)
    depth: np.ndarray | None = field(compare=False, default=None)


@dataclass
class FrameQueueCounters:
    """What the reorder queue received and dropped (monotone counts): ``frames_in == taken + pending +
    dropped_overflow + dropped_late + dropped_duplicate + cleared``."""

    frames_in: int = 0
    taken: int = 0
    dropped_overflow: int = 0
    dropped_late: int = 0
    dropped_duplicate: int = 0
    cleared: int = 0


class FrameQueue:
    """Frames in stamp order, bounded (``max_pending``; a full queue drops by ``DropPolicy``). A frame not newer than
    the last one taken is *late*; one whose stamp is queued or taken already is a *duplicate*; both are dropped."""

    def __init__(self, max_pending: int, drop_policy: DropPolicy) -> None:
        self.max_pending = int(max_pending)
        self.drop_policy = DropPolicy(drop_policy)
        self.counters = FrameQueueCounters()
        self._heap: list[PendingFrame] = []
        self._stamps: set[int] = set()
        self.last_taken_ns: int | None = None

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def oldest_ns(self) -> int | None:
        """Stamp of the oldest queued frame."""
        return self._heap[0].stamp_ns if self._heap else None

    def pending_stamps(self) -> list[int]:
        """Stamps of the queued frames, oldest first."""
        return sorted(self._stamps)

    def push(self, frame: PendingFrame, *, counted: bool = True) -> bool:
        """Queue ``frame``; False when it is dropped (late, duplicate, or refused by a full queue). ``counted``:
        False for virtual frames, which are not inputs."""
        c = self.counters
        if counted:
            c.frames_in += 1
        if self.last_taken_ns is not None and frame.stamp_ns <= self.last_taken_ns:
            if frame.stamp_ns == self.last_taken_ns:
                c.dropped_duplicate += counted
            else:
                c.dropped_late += counted
            return False
        if frame.stamp_ns in self._stamps:
            c.dropped_duplicate += counted
            return False
        if len(self._heap) >= self.max_pending:
            c.dropped_overflow += counted
            if self.drop_policy is DropPolicy.DROP_NEWEST:
                return False
            oldest = heapq.heappop(self._heap)
            self._stamps.discard(oldest.stamp_ns)
        heapq.heappush(self._heap, frame)
        self._stamps.add(frame.stamp_ns)
        return True

    def take(self, until_ns: int | None) -> Iterator[PendingFrame]:
        """Frames with ``stamp <= until_ns`` (all of them for ``None``), oldest first; frames pushed meanwhile are
        taken too when due."""
        while self._heap and (until_ns is None or self._heap[0].stamp_ns <= until_ns):
            frame = heapq.heappop(self._heap)
            self._stamps.discard(frame.stamp_ns)
            self.last_taken_ns = frame.stamp_ns
            self.counters.taken += 1
            yield frame

    def clear(self) -> None:
        """Forget queued frames (counted as ``cleared``) and the last stamp taken (after a time jump)."""
        self.counters.cleared += len(self._heap)
        self._heap.clear()
        self._stamps.clear()
        self.last_taken_ns = None


class FeatureWindow:
    """Ring buffers of the front-end features of the last ``event_frames`` event frames and ``rgb_frames`` RGB frames
    (front-ends are stateless per frame, so each frame is computed once and reused by every window it is part of)."""

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec
        self._event: deque[torch.Tensor] = deque(maxlen=spec.event_frames)
        self._rgb: deque[torch.Tensor] = deque(maxlen=spec.rgb_frames)
        self._stamps: deque[int] = deque(maxlen=spec.rgb_frames)

    def push(self, event_feats: torch.Tensor, rgb_feat: torch.Tensor | None, stamp_ns: int) -> None:
        """Add one frame: its ``[bins, F_ev]`` event features and its ``[F_rgb]`` RGB feature (``None``: none)."""
        self._event.extend(event_feats)
        if rgb_feat is not None:
            self._rgb.append(rgb_feat)
        self._stamps.append(stamp_ns)

    @property
    def full(self) -> bool:
        """True once a whole window of frames is held."""
        return len(self._event) == self._event.maxlen and len(self._stamps) == self._stamps.maxlen

    @property
    def start_ns(self) -> int:
        """Stamp of the first frame of the current window."""
        return self._stamps[0]

    def event_features(self) -> torch.Tensor:
        """``[n, F_ev]`` event features held, oldest first."""
        return torch.stack(list(self._event))

    def tensor(self) -> torch.Tensor:
        """The current window ``[1, T, F]`` (``assemble_window`` layout)."""
        rgb = torch.stack(list(self._rgb)) if self._rgb else None
        return assemble_window(self.spec, self.event_features(), rgb).unsqueeze(0)

    def clear(self) -> None:
        """Forget every frame (a gap in the stream, a time jump or a new model)."""
        self._event.clear()
        self._rgb.clear()
        self._stamps.clear()
