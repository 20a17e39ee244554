"""The ROS-free online place-recognition engine: event batches and RGB(-D) frames in, one ``PlaceResult`` per frame out.

The rclpy node, ``hstnn-replay``, the demo, the benchmarks and the tests all drive this one class; they differ only
in where inputs come from and where results go. The engine composes parts with one job each, each owning its
counters: ``EventBuffer`` (perception: bounded events, the window cutter), ``FrameQueue`` (reorder queue),
``VirtualClock`` (events-only decisions), ``FeatureWindow`` (ring buffers of front-end features); the engine itself
only orders time and runs inference.

Timing model (all stamps in ns, the sensor/ROS clock, never wall time):
- *watermark* = the latest stamp seen on any input. A decision frame (an RGB frame, or a virtual frame of the
  events-only clock) is processed once ``watermark >= stamp + reorder_delay_ns`` (or on ``flush``), so inputs may
  arrive out of order by up to ``reorder_delay_ns``. With ``EngineConfig.release_on_events`` (the default) an RGB
  frame goes earlier, as soon as the event stream has passed its stamp: one driver publishes events in time order,
  so once an event at or after the stamp arrived, every event of the frame's window is in; the decision then waits
  for its own events, not for a fixed delay (the reorder delay still bounds the wait when events are late or
  absent). Event packets that may arrive out of order (several publishers on one topic) need it off.
- Each processed frame cuts its event bins (``WindowSpec.edges``: 3 x 7 ms before the stamp), runs the event
  front-end once on them and the RGB front-end once on the frame, and pushes the features into the ring buffers.
  Once full, the window ``[1, 9, F]`` (``assemble_window``) goes through the HSTNN: sliding-window results equal
  the offline model on the same window.
- A gap longer than ``max_gap_ns`` between decision frames restarts the window (a window never spans a gap). An
  input older than the watermark by more than ``time_jump_ns`` is a jump back in time (a bag played again, sim time
  reset): everything buffered is forgotten, one line is logged, and the engine goes on from the new time.

Drop policy (``EngineConfig.drop_policy``; every drop counted, see ``EngineCounters``): a full frame queue or event
buffer drops the oldest or the incoming item; late frames/events (older than what was already processed) and
duplicate frames are dropped; malformed inputs (bad shapes, coordinates outside the sensor, wrong dtypes) are
dropped and counted, never raised: a bad message must not stop a robot.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeGuard

import numpy as np
import torch

from hstnn_ros import defaults
from hstnn_ros.model.route_filter import MotionModel, RouteFilter
from hstnn_ros.model.unknown_place import NoveltyTracker
from hstnn_ros.perception.enums import DropPolicy
from hstnn_ros.perception.images import preprocess_rgbd
from hstnn_ros.perception.window import EventBuffer, VirtualClock
from hstnn_ros.runtime.enums import InputMode
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.frames import FeatureWindow, FrameQueue, PendingFrame
from hstnn_ros.runtime.pipeline import Pipeline

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings: how inputs are queued and decisions made. How inputs are cut into windows is the model's
    (``Pipeline.window``, from its bundle), never set here. Times in ns.

    Attributes:
        reorder_delay_ns: how long a frame waits for late inputs before it is processed.
        release_on_events: process an RGB frame as soon as the event stream has passed its stamp (events arrive in
            time order), not only after the reorder delay (module docstring).
        max_pending_frames: bound of the frame reorder queue.
        max_buffered_events: bound of the event buffer.
        drop_policy: what a full queue does (see ``DropPolicy``).
        max_gap_ns: a longer gap between decision frames restarts the window.
        time_jump_ns: an input this much older than the newest one is a jump back in time: the engine resets.
        frame_period_ns: the virtual frame clock in events-only mode.
        top_k: how many hypotheses each result carries.
        device: ``cpu`` or ``cuda[:n]``.
        route_filter: filter the place posteriors along the route (``model.route_filter``: an HMM over places
            with the bundle's motion model); results keep the raw decision too.
        unknown_threshold: confidence below which a decision is an unknown place; ``None``: the bundle's calibrated
            detector (``Pipeline.unknown_detector``: novelty of the window's representation, ``model.unknown_place``)
            if it has one, else its calibrated softmax threshold (``unknown_threshold`` metadata, or
            ``unknown_threshold_filtered`` with the route filter), else never; a number: that softmax threshold
            (0: never).
        threads: torch intra-op threads set when the engine is built (process-wide: ``torch.set_num_threads``);
            ``None`` leaves torch's setting. Default 1: a decision is hundreds of small ops, where a second OpenMP
            thread costs more in hand-offs than it saves, and on a busy CPU (a robot's cores are shared) waiting for
            a descheduled worker makes the latency tail explode (bench_runtime on 2 loaded cores: p99 ~30-90 ms
            with 1 thread, ~480-750 ms with 2).
    """

    reorder_delay_ns: int = 50_000_000
    release_on_events: bool = True
    max_pending_frames: int = 16
    max_buffered_events: int = 4_000_000
    drop_policy: DropPolicy = DropPolicy.DROP_OLDEST
    max_gap_ns: int = 1_000_000_000
    time_jump_ns: int = 1_000_000_000
    frame_period_ns: int = defaults.EVENTS_ONLY_FRAME_PERIOD_NS
    top_k: int = 5
    device: str = "cpu"
    route_filter: bool = False
    unknown_threshold: float | None = None
    threads: int | None = 1

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "drop_policy", DropPolicy(self.drop_policy))
        except ValueError as exc:
            raise RuntimeEngineError(f"EngineConfig: drop_policy {self.drop_policy!r} is not one of "
                                     f"{[p.value for p in DropPolicy]}") from exc
        checks = {
            "reorder_delay_ns >= 0": self.reorder_delay_ns >= 0,
            "max_pending_frames >= 1": self.max_pending_frames >= 1,
            "max_buffered_events >= 1": self.max_buffered_events >= 1,
            "max_gap_ns > 0": self.max_gap_ns > 0,
            "time_jump_ns > reorder_delay_ns": self.time_jump_ns > self.reorder_delay_ns,
            "frame_period_ns > 0": self.frame_period_ns > 0,
            "top_k >= 1": self.top_k >= 1,
            "threads >= 1 or None": self.threads is None or self.threads >= 1,
            "0 <= unknown_threshold <= 1 or None": self.unknown_threshold is None or 0 <= self.unknown_threshold <= 1,
        }
        bad = [rule for rule, ok in checks.items() if not ok]
        if bad:
            values = {f.name: getattr(self, f.name) for f in fields(self)}
            raise RuntimeEngineError(f"EngineConfig: {', '.join(bad)} required (got {values})")


@dataclass(frozen=True)
class EngineCounters:
    """What the engine received, processed and dropped, and why (monotone counts since start; a read-only snapshot
    gathered from the parts that count).

    Events are conserved: ``events_in == buffered + events_expired + events_dropped_overflow + events_dropped_late
    + events_dropped_resolution`` (malformed batches are counted in ``malformed``, not in ``events_in``). Frames:
    ``frames_in == frames_processed + pending + frames_dropped_* + frames_cleared`` for RGB(-D) models."""

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
    frames_cleared: int = 0
    frames_ignored_events_only: int = 0
    malformed: int = 0
    resolution_changes: int = 0
    gaps: int = 0
    time_jumps: int = 0
    results: int = 0

    @property
    def frames_dropped(self) -> int:
        """Every RGB(-D) frame that did not reach a decision (late, duplicate, overflow, cleared by a time jump,
        malformed is counted apart)."""
        return (self.frames_dropped_overflow + self.frames_dropped_late + self.frames_dropped_duplicate
                + self.frames_cleared)

    @property
    def events_dropped(self) -> int:
        """Every event dropped before it was framed."""
        return self.events_dropped_overflow + self.events_dropped_late + self.events_dropped_resolution

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for diagnostics and JSON)."""
        return asdict(self)


@dataclass
class StageSeconds:
    """Wall seconds the engine spent per stage of its decisions since it started (monotone sums; ``latency_s`` of
    a result is one decision's total): the frame's event bins cut from the buffer and framed, the event front-end,
    the RGB(-D) front-end (preprocessing included) and the HSTNN on the window (assembling it included)."""

    framing: float = 0.0
    event_frontend: float = 0.0
    rgb_frontend: float = 0.0
    hstnn: float = 0.0


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
        top_k_names: the ``class_id`` strings of ``top_k``'s places.
        known: False when ``unknown_score`` is below the unknown-place threshold (``place_id`` is then the best
            guess).
        raw_top_k: with the route filter on, the classifier's own ``top_k`` before filtering (else empty).
        unknown_score: what the unknown-place threshold is compared with: the bundle detector's score (smoothed
            similarity to the training windows) when it is used, else ``score``.
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
    top_k_names: tuple[str, ...] = ()
    known: bool = True
    raw_top_k: tuple[tuple[int, float], ...] = ()
    unknown_score: float = math.nan

    @property
    def raw_place_id(self) -> int:
        """The classifier's own top-1 (equal to ``place_id`` without the route filter)."""
        return self.raw_top_k[0][0] if self.raw_top_k else self.place_id


class PlaceRecognitionEngine:
    """Online place recognition over a ``Pipeline`` (see the module docstring for timing and drop policy)."""

    def __init__(self, pipeline: Pipeline, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.device = _device(self.config.device)
        if self.config.threads is not None and torch.get_num_threads() != self.config.threads:
            torch.set_num_threads(self.config.threads)
        cfg = self.config
        self.events = EventBuffer(pipeline.window, cfg.max_buffered_events, cfg.drop_policy)
        self.frames = FrameQueue(cfg.max_pending_frames, cfg.drop_policy)
        self.clock = VirtualClock(cfg.frame_period_ns)
        self._watermark = -(2**62)
        self._last_frame_ns: int | None = None
        self._ready: list[PlaceResult] = []  # decided before a time jump, returned by the next poll
        self._malformed_frames = 0
        self._ignored_frames = 0
        self._gaps = 0
        self._time_jumps = 0
        self._processed = 0
        self._results = 0
        self.stage_seconds = StageSeconds()  #: where decisions spend their time (wall seconds, summed)
        self._use(pipeline)

    def _use(self, pipeline: Pipeline) -> None:
        pipeline.to(self.device)
        self.pipeline = pipeline
        self.window = FeatureWindow(pipeline.window)
        self.mode = InputMode.EVENTS_ONLY if pipeline.events_only else InputMode.RGBD_EVENTS
        self._rgb_zero = (torch.zeros(pipeline.rgb_feature_size, device=self.device)
                          if pipeline.rgb_feature_size else None)
        meta = pipeline.metadata
        self.route_filter = None
        if self.config.route_filter:
            motion = MotionModel.from_dict(meta["route_filter"]) if "route_filter" in meta else MotionModel()
            self.route_filter = RouteFilter(pipeline.num_classes, motion)
        thr = self.config.unknown_threshold
        self.novelty: NoveltyTracker | None = None
        if thr is None and pipeline.unknown_detector is not None:
            self.novelty = NoveltyTracker(pipeline.unknown_detector)
            self.unknown_threshold = pipeline.unknown_detector.threshold
            return
        # the filtered posterior is sharper than the raw softmax: a route fit calibrates a threshold for each
        key = "unknown_threshold_filtered" if self.route_filter is not None and "unknown_threshold_filtered" in meta \
            else "unknown_threshold"
        self.unknown_threshold = float(meta.get(key, 0.0)) if thr is None else float(thr)

    def replace_pipeline(self, pipeline: Pipeline) -> None:
        """Run another model from the next decision on (the ``auto`` preset's switch). Queued frames and buffered
        events are kept; the feature window restarts (features of another model do not mix). The new model must
        cut windows the same way."""
        if pipeline.window != self.pipeline.window:
            raise RuntimeEngineError(f"replace_pipeline: the new model's window {pipeline.window} differs from "
                                     f"{self.pipeline.window}; open a new engine for it")
        self._use(pipeline)

    # ------------------------------------------------------------------ inputs
    def push_events(self, batch: Any) -> bool:
        """Queue an event batch (an ``EventBatch``, or anything with its columns and sensor size); returns False
        (and counts why) when it is malformed or dropped."""
        t = getattr(batch, "t_ns", None)
        if isinstance(t, np.ndarray) and len(t) and np.issubdtype(t.dtype, np.integer):
            self._check_time(int(t.min()))
        kept = self.events.push(batch)
        if kept is None:
            return False
        newest = self.events.newest_ns
        if kept and newest is not None:
            self._watermark = max(self._watermark, int(newest))
            if self.mode is InputMode.EVENTS_ONLY:
                self._schedule_virtual_frames()
        return kept > 0 or (t is not None and len(t) == 0)

    def push_frame(self, stamp_ns: int, image: np.ndarray | None, depth: np.ndarray | None = None) -> bool:
        """Queue an RGB(-D) frame (``image`` ``[H, W, 3]`` uint8 RGB, ``depth`` ``[H, W]`` metres or mm uint16).

        Returns False (and counts why) when it is malformed, late, a duplicate, or pushed out of a full queue. In
        events-only mode frames are counted and ignored."""
        if self.mode is InputMode.EVENTS_ONLY:
            self._ignored_frames += 1
            return False
        if not _valid_image(image) or (depth is not None and not _valid_depth(depth, image)):
            self._malformed_frames += 1
            return False
        stamp_ns = int(stamp_ns)
        self._check_time(stamp_ns)
        ok = self.frames.push(PendingFrame(stamp_ns, image, depth))
        if ok:
            self._watermark = max(self._watermark, stamp_ns)
        return ok

    def poll(self) -> list[PlaceResult]:
        """Process every frame whose events are complete or whose reorder delay has passed (module docstring);
        returns the new results in stamp order."""
        ready, self._ready = self._ready, []
        until = self._watermark - self.config.reorder_delay_ns
        newest = self.events.newest_ns
        if self.config.release_on_events and newest is not None and self.mode is not InputMode.EVENTS_ONLY:
            until = max(until, int(newest))
        return ready + self._drain(until)

    def flush(self) -> list[PlaceResult]:
        """Process every queued frame now (end of a bag / shutdown)."""
        if self.mode is InputMode.EVENTS_ONLY:
            self._schedule_virtual_frames()
        ready, self._ready = self._ready, []
        return ready + self._drain(None)

    def reset(self) -> None:
        """Forget every buffered input and feature (counters are kept)."""
        self._restart_window()
        self.events.reset()
        self.frames.clear()
        self.clock.reset()
        self._watermark = -(2**62)
        self._last_frame_ns = None

    @property
    def counters(self) -> EngineCounters:
        """A snapshot of every count, gathered from the parts that count."""
        ev, fr = self.events.counters, self.frames.counters
        return EngineCounters(
            event_batches=ev.batches, events_in=ev.events_in, events_dropped_overflow=ev.dropped_overflow,
            events_dropped_late=ev.dropped_late, events_dropped_resolution=ev.dropped_resolution,
            events_expired=ev.expired,
            frames_in=fr.frames_in + self._malformed_frames + self._ignored_frames,
            frames_processed=self._processed, frames_dropped_overflow=fr.dropped_overflow,
            frames_dropped_late=fr.dropped_late, frames_dropped_duplicate=fr.dropped_duplicate,
            frames_cleared=fr.cleared, frames_ignored_events_only=self._ignored_frames,
            malformed=ev.malformed_batches + self._malformed_frames, resolution_changes=ev.resolution_changes,
            gaps=self._gaps, time_jumps=self._time_jumps, results=self._results,
        )

    @property
    def buffered_events(self) -> int:
        """Events currently held (bounded by ``max_buffered_events``)."""
        return self.events.buffered

    @property
    def pending_frames(self) -> int:
        """Frames waiting in the reorder queue (bounded by ``max_pending_frames``)."""
        return len(self.frames)

    # ------------------------------------------------------------------ internals
    def _check_time(self, stamp_ns: int) -> None:
        """A jump back in time beyond ``time_jump_ns``: decide on every frame queued before the jump (the results
        come with the next ``poll``), then reset (one log line, counted)."""
        if self._watermark - stamp_ns > self.config.time_jump_ns:
            self._time_jumps += 1
            LOG.warning("time jumped back %.3f s (input at %d ns, newest before %d ns): engine state reset",
                        (self._watermark - stamp_ns) / 1e9, stamp_ns, self._watermark)
            self._ready += self.flush()
            self.reset()

    def _schedule_virtual_frames(self) -> None:
        room = self.config.max_pending_frames - len(self.frames)
        for stamp in self.clock.due(self.events.first_ns, self._watermark, room):
            self.frames.push(PendingFrame(stamp), counted=False)

    def _drain(self, until_ns: int | None) -> list[PlaceResult]:
        results: list[PlaceResult] = []
        while True:
            for frame in self.frames.take(until_ns):
                res = self._process(frame)
                if res is not None:
                    results.append(res)
            if self.mode is not InputMode.EVENTS_ONLY:
                return results
            before = len(self.frames)
            self._schedule_virtual_frames()  # the clock waits while the queue is full
            if len(self.frames) == before:
                return results

    def _restart_window(self) -> None:
        """A gap: the feature window and the per-decision states (route filter, unknown-place smoothing) restart."""
        self.window.clear()
        if self.route_filter is not None:
            self.route_filter.reset()
        if self.novelty is not None:
            self.novelty.reset()

    def _process(self, frame: PendingFrame) -> PlaceResult | None:
        t0 = time.perf_counter()
        st = self.stage_seconds
        prev = self._last_frame_ns
        if prev is not None and frame.stamp_ns - prev > self.config.max_gap_ns:
            self._gaps += 1
            self._restart_window()
        self._last_frame_ns = frame.stamp_ns
        events, edges = self.events.cut(frame.stamp_ns, prev)
        self._processed += 1
        pipe = self.pipeline
        frames = pipe.window.frames(events, edges)
        if pipe.event_transform is not None:
            frames = np.ascontiguousarray(pipe.event_transform(frames), dtype=np.float32)
        t1 = time.perf_counter()
        st.framing += t1 - t0
        with torch.inference_mode():
            ev = pipe.event_frontend(torch.from_numpy(frames).to(self.device))
            t2 = time.perf_counter()
            st.event_frontend += t2 - t1
            rgb_feat: torch.Tensor | None
            if pipe.rgb_frontend is not None:
                if frame.image is None:  # unreachable: with an RGB front-end only push_frame's valid images queue
                    raise RuntimeEngineError(f"frame at {frame.stamp_ns} ns has no image for the RGB front-end")
                rgb = pipe.rgb_frontend(self.preprocess_rgb(frame.image, frame.depth).unsqueeze(0))
                rgb_feat, rgb_macs, rgb_acs = rgb.features[0], rgb.macs, rgb.acs
            else:
                rgb_feat, rgb_macs, rgb_acs = self._rgb_zero, 0.0, 0.0
            t1 = time.perf_counter()
            st.rgb_frontend += t1 - t2
            self.window.push(ev.features, rgb_feat, frame.stamp_ns)
            if not self.window.full:
                return None
            out = pipe.classifier(self.window.tensor())
            st.hstnn += time.perf_counter() - t1
        logits = out.logits[0].float()
        probs = torch.softmax(logits, dim=0).cpu().numpy().astype(np.float64)
        raw_top: tuple[tuple[int, float], ...] = ()
        if self.route_filter is not None:
            raw_top = _top_k(probs, self.config.top_k)
            probs = self.route_filter.update(probs)
        top = _top_k(probs, self.config.top_k)
        unknown_score = top[0][1] if self.novelty is None else self._novelty_score(out.readout_input)
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
        self._results += 1
        return PlaceResult(
            stamp_ns=frame.stamp_ns,
            place_id=top[0][0],
            place_name=pipe.place_name(top[0][0]),
            score=top[0][1],
            top_k=top,
            ops=ops,
            latency_s=time.perf_counter() - t0,
            logits=logits.cpu().numpy(),
            window_start_ns=self.window.start_ns,
            top_k_names=tuple(pipe.place_name(i) for i, _ in top),
            known=unknown_score >= self.unknown_threshold,
            raw_top_k=raw_top,
            unknown_score=unknown_score,
        )

    def _novelty_score(self, readout_input: torch.Tensor | None) -> float:
        """The bundle detector's score of this decision (``model.unknown_place.NoveltyTracker``)."""
        if self.novelty is None or readout_input is None:
            raise RuntimeEngineError("the bundle's unknown-place detector needs the classifier's readout_input, "
                                     "which this classifier does not return")
        return self.novelty.update(readout_input[0].float().cpu().numpy())

    def window_tensor(self) -> torch.Tensor:
        """The current window ``[1, T, F]`` in the feature-set layout (RGB at ``WindowSpec.rgb_steps``)."""
        return self.window.tensor()

    def preprocess_rgb(self, image: np.ndarray, depth: np.ndarray | None) -> torch.Tensor:
        """RGB(-D) frame -> ``[C, H, W]`` float32 on the front-end grid via the perception layer's
        ``preprocess_rgbd`` (what the datasets use). Depth in metres (uint16 input is taken as millimetres, REP 118);
        an RGB-D model given no depth sees a zero depth channel."""
        spec = self.pipeline.window
        if spec.depth:
            if depth is None:
                depth = np.zeros(image.shape[:2], np.float32)
            elif depth.dtype == np.uint16:
                depth = depth.astype(np.float32) * np.float32(1e-3)
        else:
            depth = None
        arr = preprocess_rgbd(image, depth, spec.grid_wh, depth_max_m=spec.depth_max_m)
        return torch.from_numpy(arr).to(self.device)


def _top_k(probs: np.ndarray, k: int) -> tuple[tuple[int, float], ...]:
    """``(place, probability)`` of the ``k`` most likely places, best first (ties: lower place id first)."""
    k = min(k, len(probs))
    idx = np.argsort(-probs, kind="stable")[:k]
    return tuple((int(i), float(probs[i])) for i in idx)


def _device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise RuntimeEngineError(f"device {name!r} is not a torch device: use 'cpu' or 'cuda[:n]'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeEngineError(f"device {name!r} requested but CUDA is not available here: use device 'cpu'")
    return dev


def _valid_image(image: np.ndarray | None) -> TypeGuard[np.ndarray]:
    return (
        isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.shape[0] > 0
        and image.shape[1] > 0 and image.dtype == np.uint8
    )


def _valid_depth(depth: np.ndarray, image: np.ndarray) -> bool:
    return isinstance(depth, np.ndarray) and depth.ndim == 2 and depth.shape[:2] == image.shape[:2]
