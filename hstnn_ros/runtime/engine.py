"""The ROS-free online place-recognition engine: event batches and RGB(-D) frames in, one ``PlaceResult`` per frame out.

The rclpy node, ``hstnn-replay``, the demo, the benchmarks and the tests all drive this one class; they differ only
in where inputs come from and where results go.

Timing model (all stamps in ns, the sensor/ROS clock, never wall time):
- *watermark* = the latest stamp seen on any input. A decision frame (an RGB frame, or a virtual frame of the
  events-only clock) is processed once ``watermark >= stamp + reorder_delay_ns`` (or on ``flush``), so inputs may
  arrive out of order by up to ``reorder_delay_ns``.
- Each processed frame cuts ``bins`` event frames from the buffered events (``EventBinning``), runs the event
  front-end once per new event frame and the RGB front-end once, and pushes the features into ring buffers
  (9 event + 3 RGB). Once full, the window ``[1, 9, F]`` (RGB feature at ``RGB_STEPS``, zeros elsewhere; the
  feature-set layout) goes through the HSTNN: sliding-window results equal the offline model on the same window.

Drop policy (``EngineConfig.drop_policy``, counted in ``EngineCounters``):
- frames: a bounded reorder queue (``max_pending_frames``); a frame older than the last processed one is *late*,
  one with a stamp already queued/processed is a *duplicate*; both are dropped.
- events: a bounded buffer (``max_buffered_events``); overflow drops the oldest events (``DROP_OLDEST``) or the
  incoming batch (``DROP_NEWEST``). Events older than what a future frame can still use are *late* and dropped.
- malformed inputs (bad shapes, coordinates outside the sensor, wrong dtypes) are dropped and counted, never raised:
  a bad message must not stop a robot.
- a gap longer than ``max_gap_ns`` between decision frames resets the ring buffers (a window never spans a gap), and
  a change of event sensor resolution clears the event buffer.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from hstnn_ros import defaults
from hstnn_ros.runtime.enums import DropPolicy, EventBinning, InputMode
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.pipeline import Pipeline

if TYPE_CHECKING:
    from hstnn_ros.perception.events.batch import EventBatch

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings. Times in ns.

    Attributes:
        bins: event frames per decision frame (9 event frames / 3 RGB frames = 3).
        bin_ns: event-frame length for ``EventBinning.FIXED`` (NeuroGPR: 7 ms).
        binning: how event frames are cut (see ``EventBinning``).
        reorder_delay_ns: how long a frame waits for late inputs before it is processed.
        max_pending_frames: bound of the frame reorder queue.
        max_buffered_events: bound of the event buffer.
        drop_policy: what a full queue does (see ``DropPolicy``).
        max_gap_ns: a longer gap between decision frames resets the window.
        frame_period_ns: the virtual frame clock in events-only mode.
        top_k: how many hypotheses each result carries.
        device: ``cpu`` or ``cuda[:n]``.
        depth_max_m: depth (metres) mapped to 1.0 for RGB-D models.
        threads: torch intra-op threads set when the engine is built (process-wide: ``torch.set_num_threads``);
            ``None`` leaves torch's setting. Default 1: a decision is hundreds of small ops, where a second OpenMP
            thread costs more in hand-offs than it saves, and on a busy CPU (a robot's cores are shared) waiting for
            a descheduled worker makes the latency tail explode (bench_runtime on 2 loaded cores: p99 ~30-90 ms
            with 1 thread, ~480-750 ms with 2).
    """

    bins: int = defaults.EVENT_BINS_PER_RGB
    bin_ns: int = 7_000_000
    binning: EventBinning = EventBinning.FIXED
    reorder_delay_ns: int = 50_000_000
    max_pending_frames: int = 16
    max_buffered_events: int = 4_000_000
    drop_policy: DropPolicy = DropPolicy.DROP_OLDEST
    max_gap_ns: int = 1_000_000_000
    frame_period_ns: int = 33_333_333
    top_k: int = 5
    device: str = "cpu"
    depth_max_m: float = 10.0
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.bins < 1 or self.bin_ns <= 0 or self.frame_period_ns <= 0:
            raise RuntimeEngineError(
                f"EngineConfig: bins ({self.bins}), bin_ns ({self.bin_ns}) and frame_period_ns "
                f"({self.frame_period_ns}) must be positive"
            )
        if self.reorder_delay_ns < 0 or self.max_pending_frames < 1 or self.max_buffered_events < 1:
            raise RuntimeEngineError("EngineConfig: reorder_delay_ns >= 0, max_pending_frames >= 1 and "
                                     "max_buffered_events >= 1 are required")
        if self.top_k < 1:
            raise RuntimeEngineError(f"EngineConfig: top_k must be >= 1, got {self.top_k}")
        if self.threads is not None and self.threads < 1:
            raise RuntimeEngineError(f"EngineConfig: threads must be >= 1 or None, got {self.threads}")


@dataclass
class EngineCounters:
    """What the engine received, processed and dropped, and why (all monotone counts).

    Events are conserved: ``events_in == buffered + events_expired + events_dropped_overflow + events_dropped_late
    + events_dropped_resolution`` (expired = left the buffer after every frame that could use them was processed;
    malformed batches are counted in ``malformed`` and not in ``events_in``)."""

    event_batches: int = 0
    events_in: int = 0
    events_dropped_overflow: int = 0
    events_dropped_late: int = 0
    events_dropped_resolution: int = 0
    events_expired: int = 0
    frames_in: int = 0
    frames_processed: int = 0
    frames_dropped_overflow: int = 0
    frames_dropped_late: int = 0
    frames_dropped_duplicate: int = 0
    frames_ignored_events_only: int = 0
    malformed: int = 0
    resolution_changes: int = 0
    gaps: int = 0
    results: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for diagnostics and JSON)."""
        return asdict(self)


@dataclass(frozen=True)
class OpCounts:
    """Operations one decision cost, by component (front-end passes of the new frames + HSTNN on the window)."""

    event_frontend_macs: float
    event_frontend_acs: float
    rgb_frontend_macs: float
    rgb_frontend_acs: float
    hstnn_macs: float
    hstnn_acs: float
    event_frontend_spike_rate: float
    hstnn_spike_rates: tuple[float, ...]

    @property
    def total_macs(self) -> float:
        """All MACs of this decision."""
        return self.event_frontend_macs + self.rgb_frontend_macs + self.hstnn_macs

    @property
    def total_acs(self) -> float:
        """All ACs of this decision."""
        return self.event_frontend_acs + self.rgb_frontend_acs + self.hstnn_acs


@dataclass(frozen=True)
class PlaceResult:
    """One place decision.

    Attributes:
        stamp_ns: stamp of the window's last input (the decision frame); publications carry it.
        place_id: the most likely place.
        place_name: its ``class_id`` string.
        score: softmax probability of ``place_id``.
        top_k: ``(place_id, probability)`` best first.
        ops: operations measured for this decision.
        latency_s: wall-clock processing time of this decision (front-ends + HSTNN).
        logits: ``[C]`` float32 logits (for offline comparison).
        window_start_ns: stamp of the first frame in the window.
    """

    stamp_ns: int
    place_id: int
    place_name: str
    score: float
    top_k: tuple[tuple[int, float], ...]
    ops: OpCounts
    latency_s: float
    logits: np.ndarray = field(repr=False)
    window_start_ns: int = 0


@dataclass(order=True)
class _Frame:
    stamp_ns: int
    image: np.ndarray | None = field(compare=False, default=None)
    depth: np.ndarray | None = field(compare=False, default=None)


class PlaceRecognitionEngine:
    """Online place recognition over a ``Pipeline`` (see the module docstring for timing and drop policy)."""

    def __init__(self, pipeline: Pipeline, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.pipeline = pipeline
        self.device = _device(self.config.device)
        if self.config.threads is not None and torch.get_num_threads() != self.config.threads:
            torch.set_num_threads(self.config.threads)
        pipeline.to(self.device)
        self.mode = InputMode.EVENTS_ONLY if pipeline.events_only else InputMode.RGBD_EVENTS
        self.counters = EngineCounters()
        n_event = defaults.EVENT_FRAMES_PER_WINDOW
        n_rgb = defaults.RGB_FRAMES_PER_WINDOW
        if n_event != self.config.bins * n_rgb:
            raise RuntimeEngineError(
                f"EngineConfig.bins={self.config.bins}: a window is {n_event} event frames over {n_rgb} frames, "
                f"so bins must be {n_event // n_rgb}"
            )
        self._event_feats: deque[torch.Tensor] = deque(maxlen=n_event)
        self._rgb_feats: deque[torch.Tensor] = deque(maxlen=n_rgb)
        self._frame_stamps: deque[int] = deque(maxlen=n_rgb)
        self._pending: list[_Frame] = []
        self._pending_stamps: set[int] = set()
        self._ev_chunks: deque[_Chunk] = deque()  # columnar event chunks, as pushed (minus what was dropped)
        self._ev_count = 0
        self._sensor_wh: tuple[int, int] | None = None
        self._watermark = -(2**62)
        self._last_frame_ns: int | None = None
        self._event_horizon_ns = -(2**62)  # events older than this can never be used again
        self._next_virtual_ns: int | None = None
        self._rgb_zero = torch.zeros(pipeline.rgb_feature_size, device=self.device)

    # ------------------------------------------------------------------ inputs
    def push_events(self, batch: EventBatch) -> bool:
        """Queue an event batch (an ``EventBatch``, or anything with its columns and sensor size); returns False
        (and counts why) when it is malformed or dropped."""
        self.counters.event_batches += 1
        try:
            t, x, y, p, wh = _validate_batch(batch)
        except (ValueError, TypeError, AttributeError) as exc:
            self.counters.malformed += 1
            LOG.debug("malformed event batch dropped: %s", exc)
            return False
        n = len(t)
        self.counters.events_in += n
        if self._sensor_wh is not None and wh != self._sensor_wh:
            self.counters.resolution_changes += 1
            self.counters.events_dropped_resolution += self._ev_count
            LOG.warning("event sensor resolution changed %s -> %s: event buffer cleared", self._sensor_wh, wh)
            self._ev_chunks.clear()
            self._ev_count = 0
        self._sensor_wh = wh
        if n == 0:
            return True
        late = t < self._event_horizon_ns
        if late.any():
            self.counters.events_dropped_late += int(late.sum())
            keep = ~late
            t, x, y, p = t[keep], x[keep], y[keep], p[keep]
            n = len(t)
            if n == 0:
                return False
        # copies: the caller may reuse its buffers; sortedness checked once here, not at every frame
        chunk = _Chunk(t.copy(), x.astype(np.uint16), y.astype(np.uint16), p.astype(np.uint8),
                       n < 2 or bool(np.all(t[1:] >= t[:-1])))
        if self._ev_count + n > self.config.max_buffered_events:
            if self.config.drop_policy is DropPolicy.DROP_NEWEST:
                self.counters.events_dropped_overflow += n
                return False
            self._drop_oldest_events(self._ev_count + n - self.config.max_buffered_events)
            if n > self.config.max_buffered_events:
                self.counters.events_dropped_overflow += n - self.config.max_buffered_events
                chunk = chunk[n - self.config.max_buffered_events :]
        self._ev_chunks.append(chunk)
        self._ev_count += len(chunk)
        self._advance(int(t.max()))
        if self.mode is InputMode.EVENTS_ONLY:
            self._schedule_virtual_frames()
        return True

    def push_frame(self, stamp_ns: int, image: np.ndarray | None, depth: np.ndarray | None = None) -> bool:
        """Queue an RGB(-D) frame (``image`` ``[H, W, 3]`` uint8 RGB, ``depth`` ``[H, W]`` metres or mm uint16).

        Returns False (and counts why) when it is malformed, late, a duplicate, or pushed out of a full queue. In
        events-only mode frames are counted and ignored."""
        self.counters.frames_in += 1
        if self.mode is InputMode.EVENTS_ONLY:
            self.counters.frames_ignored_events_only += 1
            return False
        if not _valid_image(image) or (depth is not None and not _valid_depth(depth, image)):
            self.counters.malformed += 1
            return False
        stamp_ns = int(stamp_ns)
        return self._enqueue(_Frame(stamp_ns, image, depth))

    def poll(self) -> list[PlaceResult]:
        """Process every frame whose reorder delay has passed; returns the new results in stamp order."""
        return self._drain(self._watermark - self.config.reorder_delay_ns)

    def flush(self) -> list[PlaceResult]:
        """Process every queued frame now (end of a bag / shutdown)."""
        if self.mode is InputMode.EVENTS_ONLY:
            self._schedule_virtual_frames()
        return self._drain(None)

    def reset(self) -> None:
        """Forget every buffered input and feature (counters are kept)."""
        self._event_feats.clear()
        self._rgb_feats.clear()
        self._frame_stamps.clear()
        self._pending.clear()
        self._pending_stamps.clear()
        self._ev_chunks.clear()
        self._ev_count = 0
        self._last_frame_ns = None
        self._next_virtual_ns = None
        self._event_horizon_ns = -(2**62)

    @property
    def buffered_events(self) -> int:
        """Events currently held (bounded by ``max_buffered_events``)."""
        return self._ev_count

    @property
    def pending_frames(self) -> int:
        """Frames waiting in the reorder queue (bounded by ``max_pending_frames``)."""
        return len(self._pending)

    # ------------------------------------------------------------------ internals
    def _advance(self, stamp_ns: int) -> None:
        self._watermark = max(self._watermark, stamp_ns)

    def _enqueue(self, frame: _Frame) -> bool:
        if self._last_frame_ns is not None and frame.stamp_ns <= self._last_frame_ns:
            if frame.stamp_ns == self._last_frame_ns:
                self.counters.frames_dropped_duplicate += 1
            else:
                self.counters.frames_dropped_late += 1
            return False
        if frame.stamp_ns in self._pending_stamps:
            self.counters.frames_dropped_duplicate += 1
            return False
        if len(self._pending) >= self.config.max_pending_frames:
            self.counters.frames_dropped_overflow += 1
            if self.config.drop_policy is DropPolicy.DROP_NEWEST:
                return False
            oldest = heapq.heappop(self._pending)
            self._pending_stamps.discard(oldest.stamp_ns)
        heapq.heappush(self._pending, frame)
        self._pending_stamps.add(frame.stamp_ns)
        self._advance(frame.stamp_ns)
        return True

    def _schedule_virtual_frames(self) -> None:
        """Events-only clock: one virtual decision frame every ``frame_period_ns`` of event time."""
        if not self._ev_chunks:
            return
        if self._next_virtual_ns is None:
            first = int(min(c.t[0] if len(c) else self._watermark for c in self._ev_chunks))
            self._next_virtual_ns = first + self.config.frame_period_ns
        while self._next_virtual_ns <= self._watermark:
            if len(self._pending) >= self.config.max_pending_frames:
                break  # poll() drains before more are scheduled
            self._enqueue(_Frame(self._next_virtual_ns))
            self._next_virtual_ns += self.config.frame_period_ns

    def _drain(self, until_ns: int | None) -> list[PlaceResult]:
        results: list[PlaceResult] = []
        while self._pending and (until_ns is None or self._pending[0].stamp_ns <= until_ns):
            frame = heapq.heappop(self._pending)
            self._pending_stamps.discard(frame.stamp_ns)
            res = self._process(frame)
            if res is not None:
                results.append(res)
            if self.mode is InputMode.EVENTS_ONLY and not self._pending:
                self._schedule_virtual_frames()
        return results

    def _drop_oldest_events(self, n_drop: int) -> None:
        while n_drop > 0 and self._ev_chunks:
            c = self._ev_chunks[0]
            if len(c) <= n_drop:
                self._ev_chunks.popleft()
                self._ev_count -= len(c)
                self.counters.events_dropped_overflow += len(c)
                n_drop -= len(c)
            else:
                self._ev_chunks[0] = c.take(slice(n_drop, None))
                self._ev_count -= n_drop
                self.counters.events_dropped_overflow += n_drop
                n_drop = 0

    def _take_events(self, start_ns: int, end_ns: int) -> _Chunk:
        """Events with ``start_ns <= t < end_ns`` plus pruning of what no future frame can use."""
        if not self._ev_chunks:
            return _Chunk.empty()
        # Keep what a later frame may still need: FIXED bins reach back bins*bin_ns from a later stamp.
        horizon = end_ns - self.config.bins * self.config.bin_ns if self.config.binning is EventBinning.FIXED \
            else end_ns
        horizon = min(horizon, end_ns)
        sel_parts, kept_parts = [], []
        for c in self._ev_chunks:  # sorted chunks (the usual case) are sliced, never masked
            if c.is_sorted:
                lo, hi, keep_from = np.searchsorted(c.t, [start_ns, end_ns, horizon], side="left")
                sel_parts.append(c.take(slice(lo, hi)))
                kept_parts.append(c.take(slice(keep_from, None)))
            else:
                sel_parts.append(c.take((c.t >= start_ns) & (c.t < end_ns)))
                kept_parts.append(c.take(c.t >= horizon))
        sel = _Chunk.concat(sel_parts)
        n_before = self._ev_count
        self._ev_chunks.clear()
        self._ev_chunks.extend(k for k in kept_parts if len(k))
        self._ev_count = sum(len(k) for k in kept_parts)
        self.counters.events_expired += n_before - self._ev_count
        self._event_horizon_ns = max(self._event_horizon_ns, horizon)
        return sel

    def event_frames(self, events: _Chunk, start_ns: int, end_ns: int) -> np.ndarray:
        """``[bins, 2, H, W]`` float32 event frames of ``[start_ns, end_ns)`` split into ``bins`` equal bins, on the
        front-end grid, made by the perception layer's ``events_to_frames`` with the pipeline's framing (resize mode,
        clipping, normalisation): the same function the offline datasets use."""
        from hstnn_ros.perception.events.batch import EventBatch  # noqa: PLC0415
        from hstnn_ros.perception.events.framing import events_to_frames, split_interval  # noqa: PLC0415

        H, W = self.pipeline.input_hw
        w, h = self._sensor_wh or (W, H)
        batch = EventBatch(events.t, events.x, events.y, events.p, w, h)
        f = self.pipeline.framing
        return events_to_frames(batch, split_interval(start_ns, end_ns, self.config.bins), (W, H), mode=f.mode,
                                clip=f.clip, normalize=f.normalize)

    def _bounds(self, stamp_ns: int) -> tuple[int, int]:
        span = self.config.bins * self.config.bin_ns
        if self.config.binning is EventBinning.SPAN and self._last_frame_ns is not None:
            return self._last_frame_ns, stamp_ns
        return stamp_ns - span, stamp_ns

    def _process(self, frame: _Frame) -> PlaceResult | None:
        t0 = time.perf_counter()
        if self._last_frame_ns is not None and frame.stamp_ns - self._last_frame_ns > self.config.max_gap_ns:
            self.counters.gaps += 1
            self._event_feats.clear()
            self._rgb_feats.clear()
            self._frame_stamps.clear()
        start_ns, end_ns = self._bounds(frame.stamp_ns)
        # Events at exactly the frame stamp belong to this frame.
        events = self._take_events(start_ns, end_ns + 1)
        self._last_frame_ns = frame.stamp_ns
        self.counters.frames_processed += 1
        frames = self.event_frames(events, start_ns, end_ns + 1)
        if self.pipeline.event_transform is not None:
            frames = np.ascontiguousarray(self.pipeline.event_transform(frames), dtype=np.float32)
        with torch.inference_mode():
            ev = self.pipeline.event_frontend(torch.from_numpy(frames).to(self.device))
            if self.pipeline.rgb_frontend is not None:
                x = self.preprocess_rgb(frame.image, frame.depth)
                rgb = self.pipeline.rgb_frontend(x.unsqueeze(0))
                rgb_feat, rgb_macs, rgb_acs = rgb.features[0], rgb.macs, rgb.acs
            else:
                rgb_feat, rgb_macs, rgb_acs = self._rgb_zero, 0.0, 0.0
            for f in ev.features:
                self._event_feats.append(f)
            self._rgb_feats.append(rgb_feat)
            self._frame_stamps.append(frame.stamp_ns)
            if len(self._event_feats) < self._event_feats.maxlen or len(self._rgb_feats) < self._rgb_feats.maxlen:
                return None
            window = self.window_tensor()
            out = self.pipeline.classifier(window)
        logits = out.logits[0].float()
        probs = torch.softmax(logits, dim=0)
        k = min(self.config.top_k, probs.numel())
        top_p, top_i = torch.topk(probs, k)
        top = tuple((int(i), float(pp)) for i, pp in zip(top_i.tolist(), top_p.tolist(), strict=True))
        ops = OpCounts(
            event_frontend_macs=float(ev.macs),
            event_frontend_acs=float(ev.acs),
            rgb_frontend_macs=float(rgb_macs),
            rgb_frontend_acs=float(rgb_acs),
            hstnn_macs=float(out.macs),
            hstnn_acs=float(out.acs),
            event_frontend_spike_rate=float(ev.spike_rate) if ev.spike_rate is not None else math.nan,
            hstnn_spike_rates=tuple(float(r) for r in out.spike_rates),
        )
        self.counters.results += 1
        return PlaceResult(
            stamp_ns=frame.stamp_ns,
            place_id=top[0][0],
            place_name=self.pipeline.place_name(top[0][0]),
            score=top[0][1],
            top_k=top,
            ops=ops,
            latency_s=time.perf_counter() - t0,
            logits=logits.cpu().numpy(),
            window_start_ns=self._frame_stamps[0],
        )

    def window_tensor(self) -> torch.Tensor:
        """The current window ``[1, 9, F]`` in the feature-set layout (RGB at ``defaults.RGB_STEPS``)."""
        return assemble_window(list(self._event_feats), list(self._rgb_feats)).unsqueeze(0)

    def preprocess_rgb(self, image: np.ndarray, depth: np.ndarray | None) -> torch.Tensor:
        """RGB(-D) frame -> ``[C, H, W]`` float32 on the front-end grid via the perception layer's
        ``preprocess_rgbd`` (what the datasets use). Depth in metres (uint16 input is taken as millimetres, REP 118);
        an RGB-D model given no depth sees a zero depth channel."""
        from hstnn_ros.perception.images import preprocess_rgbd  # noqa: PLC0415

        H, W = self.pipeline.input_hw
        if self.pipeline.rgb_channels == 4:
            if depth is None:
                depth = np.zeros(image.shape[:2], np.float32)
            elif depth.dtype == np.uint16:
                depth = depth.astype(np.float32) * np.float32(1e-3)
        else:
            depth = None
        arr = preprocess_rgbd(image, depth, (W, H), depth_max_m=self.config.depth_max_m)
        return torch.from_numpy(arr).to(self.device)


def assemble_window(event_feats: list[torch.Tensor], rgb_feats: list[torch.Tensor]) -> torch.Tensor:
    """``[9, F_ev + F_rgb]``: step ``i`` is ``concat(event feature i, RGB feature or zeros)``, with the RGB features
    entering at ``defaults.RGB_STEPS`` (the ``FeatureSet`` layout the HSTNN was trained on)."""
    ev = torch.stack(event_feats)
    f_rgb = rgb_feats[0].numel()
    rgb = torch.zeros(ev.shape[0], f_rgb, dtype=ev.dtype, device=ev.device)
    for step, feat in zip(defaults.RGB_STEPS, rgb_feats, strict=True):
        rgb[step] = feat
    return torch.cat([ev, rgb], dim=1)


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Buffered events as contiguous columns (``t`` int64 ns, ``x``/``y`` uint16, ``p`` uint8) and whether ``t`` is
    non-decreasing (slices of a sorted chunk stay sorted; masks of an unsorted one are kept as unsorted)."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    is_sorted: bool

    def __len__(self) -> int:
        return len(self.t)

    def take(self, idx: slice | np.ndarray) -> _Chunk:
        """The events at ``idx`` (a slice: views; a boolean mask: copies), in their order."""
        return _Chunk(self.t[idx], self.x[idx], self.y[idx], self.p[idx], self.is_sorted)

    @staticmethod
    def empty() -> _Chunk:
        """No events."""
        return _Chunk(np.empty(0, np.int64), np.empty(0, np.uint16), np.empty(0, np.uint16), np.empty(0, np.uint8),
                      True)

    @staticmethod
    def concat(parts: list[_Chunk]) -> _Chunk:
        """Parts in order as one chunk (sorted if every part is and their boundaries are in order)."""
        if len(parts) == 1:
            return parts[0]
        parts = [c for c in parts if len(c)] or [_Chunk.empty()]
        ordered = all(c.is_sorted for c in parts) and all(a.t[-1] <= b.t[0] for a, b in itertools.pairwise(parts))
        return _Chunk(*(np.concatenate([getattr(c, f) for c in parts]) for f in ("t", "x", "y", "p")), ordered)


def _device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise RuntimeEngineError(f"device {name!r} is not a torch device: use 'cpu' or 'cuda[:n]'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeEngineError(f"device {name!r} requested but CUDA is not available here: use device 'cpu'")
    return dev


def _validate_batch(batch: EventBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    t = np.asarray(batch.t_ns)
    x = np.asarray(batch.x)
    y = np.asarray(batch.y)
    p = np.asarray(batch.p)
    w, h = int(batch.width), int(batch.height)
    if w <= 0 or h <= 0:
        raise ValueError(f"sensor size {w}x{h} must be positive")
    n = len(t)
    if t.ndim != 1 or any(a.ndim != 1 or len(a) != n for a in (x, y, p)):
        raise ValueError("t_ns, x, y, p must be 1-D arrays of equal length")
    if n and not (np.issubdtype(t.dtype, np.integer) and np.issubdtype(x.dtype, np.integer)
                  and np.issubdtype(y.dtype, np.integer)):
        raise TypeError("t_ns, x, y must be integer arrays")
    if n and (int(x.max()) >= w or int(y.max()) >= h or int(x.min()) < 0 or int(y.min()) < 0):
        raise ValueError(f"coordinates outside the {w}x{h} sensor")
    if n and int(p.max()) > 1:
        raise ValueError("polarity must be 0 or 1")
    return t.astype(np.int64, copy=False), x, y, p.astype(np.uint8, copy=False), (w, h)


def _valid_image(image: np.ndarray | None) -> bool:
    return (
        isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.shape[0] > 0
        and image.shape[1] > 0 and image.dtype == np.uint8
    )


def _valid_depth(depth: np.ndarray, image: np.ndarray) -> bool:
    return isinstance(depth, np.ndarray) and depth.ndim == 2 and depth.shape[:2] == image.shape[:2]
