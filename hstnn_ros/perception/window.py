"""The input window of one place decision: how it is cut (``WindowSpec``) and the one event cutter (``EventBuffer``).

A window is ``event_frames`` (9) event frames over ``rgb_frames`` (3) RGB(-D) frames; each RGB frame brings
``bins_per_rgb`` (3) event frames cut from the events before its stamp. ``WindowSpec`` is frozen, stored in the
front-end bundle (``to_dict``) and loaded with it, so a model runs online on exactly the windows it was trained on.
``EventBuffer`` holds a bounded event stream and cuts the events of each frame's bins: the online engine and the
dataset builder both use it (there is no second cutter).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from hstnn_ros import defaults
from hstnn_ros.perception.enums import DropPolicy, EventBinning
from hstnn_ros.perception.errors import WindowError
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.enums import Normalization, ResizeMode
from hstnn_ros.perception.events.framing import events_to_frames
from hstnn_ros.perception.events.kernels import scan_columns

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowSpec:
    """How a decision's inputs are cut and framed (frozen; stored in the front-end bundle).

    Attributes:
        event_frames: event frames per window (the HSTNN's time steps T).
        rgb_frames: RGB(-D) frames per window; ``event_frames`` must be a multiple of it.
        rgb_steps: the steps (0-based) at which the RGB features enter; zeros elsewhere (reference code: the last
            event bin of each RGB frame).
        bin_ns: event-frame length for ``EventBinning.FIXED`` (NeuroGPR: 7 ms).
        binning: how a frame's event bins are cut (``EventBinning``).
        input_hw: front-end input ``(H, W)``; events are mapped and images resized to it.
        resize: sensor -> front-end coordinate mapping of events (``ResizeMode``).
        clip: cap on counts per pixel and bin (``None``: no cap).
        normalize: per-frame normalisation of event counts (``Normalization``).
        depth: whether frames carry an aligned depth channel (RGB-D front-end, 4 channels).
        depth_max_m: depth in metres mapped to 1.0.
        polarity: ``False``: polarity is unknown (pre-rendered event-count images), so both channels of an event
            frame carry the total count of the pixel; online framing merges ON and OFF the same way.
    """

    event_frames: int = defaults.EVENT_FRAMES_PER_WINDOW
    rgb_frames: int = defaults.RGB_FRAMES_PER_WINDOW
    rgb_steps: tuple[int, ...] = defaults.RGB_STEPS
    bin_ns: int = defaults.EVENT_BIN_NS
    binning: EventBinning = EventBinning.FIXED
    input_hw: tuple[int, int] = (defaults.FRONTEND_INPUT_WH[1], defaults.FRONTEND_INPUT_WH[0])
    resize: ResizeMode = ResizeMode.SCALE
    clip: float | None = None
    normalize: Normalization = Normalization.NONE
    depth: bool = False
    depth_max_m: float = defaults.DEPTH_MAX_M
    polarity: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            set_(self, "binning", EventBinning(self.binning))
            set_(self, "resize", ResizeMode(self.resize))
            set_(self, "normalize", Normalization(self.normalize))
        except ValueError as exc:
            raise WindowError(f"WindowSpec: {exc}; binning is one of {[b.value for b in EventBinning]}, resize "
                              f"{[m.value for m in ResizeMode]}, normalize {[n.value for n in Normalization]}") from exc
        set_(self, "rgb_steps", tuple(int(s) for s in self.rgb_steps))
        set_(self, "input_hw", (int(self.input_hw[0]), int(self.input_hw[1])))
        if self.event_frames < 1 or self.rgb_frames < 1 or self.event_frames % self.rgb_frames:
            raise WindowError(f"WindowSpec: {self.event_frames} event frames over {self.rgb_frames} RGB frames; "
                              "event_frames must be a positive multiple of rgb_frames (bins per RGB frame)")
        steps = self.rgb_steps
        if len(steps) != self.rgb_frames or list(steps) != sorted(set(steps)) or not all(
                0 <= s < self.event_frames for s in steps):
            raise WindowError(f"WindowSpec: rgb_steps {steps} must be {self.rgb_frames} increasing steps in "
                              f"0..{self.event_frames - 1}")
        if self.bin_ns <= 0:
            raise WindowError(f"WindowSpec: bin_ns must be positive, got {self.bin_ns}")
        if min(self.input_hw) < 1:
            raise WindowError(f"WindowSpec: input_hw {self.input_hw} must be positive")
        if self.clip is not None and self.clip <= 0:
            raise WindowError(f"WindowSpec: clip must be positive or None, got {self.clip}")
        if self.normalize is Normalization.CLIP and self.clip is None:
            raise WindowError("WindowSpec: normalize='clip' needs clip (the count mapped to 1.0)")
        if not self.depth_max_m > 0:
            raise WindowError(f"WindowSpec: depth_max_m must be positive, got {self.depth_max_m}")
        if not self.polarity and (self.clip is not None or self.normalize is not Normalization.NONE):
            raise WindowError("WindowSpec: polarity=False (merged ON/OFF counts) takes raw counts: leave clip=None "
                              "and normalize='none'")

    @property
    def bins_per_rgb(self) -> int:
        """Event frames cut per RGB frame."""
        return self.event_frames // self.rgb_frames

    @property
    def span_ns(self) -> int:
        """How far back the ``FIXED`` bins of one frame reach."""
        return self.bins_per_rgb * self.bin_ns

    @property
    def grid_wh(self) -> tuple[int, int]:
        """Front-end grid as ``(W, H)`` (the order OpenCV and the framing take)."""
        return self.input_hw[1], self.input_hw[0]

    @property
    def rgb_channels(self) -> int:
        """Channels of the RGB(-D) front-end input."""
        return 4 if self.depth else 3

    def edges(self, stamp_ns: int, prev_stamp_ns: int | None = None) -> np.ndarray:
        """The ``bins_per_rgb + 1`` bin edges of the frame stamped ``stamp_ns``: the events with
        ``edges[0] <= t < edges[-1]`` belong to it (an event at the stamp itself belongs to the next frame).
        ``FIXED``: equal bins of ``bin_ns`` ending at the stamp. ``SPAN``: the interval since ``prev_stamp_ns`` split
        evenly (the first frame, with no predecessor, looks back ``span_ns``)."""
        n = self.bins_per_rgb
        if self.binning is EventBinning.SPAN and prev_stamp_ns is not None and prev_stamp_ns < stamp_ns:
            return prev_stamp_ns + (np.arange(n + 1, dtype=np.int64) * (stamp_ns - prev_stamp_ns)) // n
        return stamp_ns - self.span_ns + np.arange(n + 1, dtype=np.int64) * self.bin_ns

    def horizon_ns(self, stamp_ns: int) -> int:
        """Events older than this can serve no frame stamped after ``stamp_ns``."""
        return stamp_ns if self.binning is EventBinning.SPAN else stamp_ns - self.span_ns

    def frames(self, batch: EventBatch, edges: np.ndarray, grid_wh: tuple[int, int] | None = None) -> np.ndarray:
        """``float32 [bins, 2, H, W]`` event frames of ``batch`` between ``edges``: on the front-end grid with this
        window's mapping, clipping and normalisation, or (``grid_wh`` given, e.g. the sensor's) raw counts scaled to
        that grid."""
        if grid_wh is not None:
            return self.merge_polarity(events_to_frames(batch, edges, grid_wh, mode=ResizeMode.SCALE))
        return self.merge_polarity(events_to_frames(batch, edges, self.grid_wh, mode=self.resize, clip=self.clip,
                                                    normalize=self.normalize))

    def merge_polarity(self, frames: np.ndarray) -> np.ndarray:
        """``frames [..., 2, H, W]`` as this window feeds them: unchanged, or (``polarity`` False) the total count
        in both channels."""
        if self.polarity:
            return frames
        total = frames.sum(axis=-3, keepdims=True)
        return np.concatenate([total, total], axis=-3)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what bundles and dataset manifests store)."""
        d = dataclasses.asdict(self)
        d.update(binning=self.binning.value, resize=self.resize.value, normalize=self.normalize.value,
                 rgb_steps=list(self.rgb_steps), input_hw=list(self.input_hw))
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "window") -> WindowSpec:
        """Inverse of ``to_dict``; unknown keys are refused naming ``source``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise WindowError(f"{source}: unknown window keys {unknown}; known: {sorted(names)}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise WindowError(f"{source}: invalid window {data}: {exc}") from exc


class VirtualClock:
    """Decision frames without images (events-only models and recordings): one every ``period_ns`` of event time,
    the first one ``period_ns`` after the first event. The online engine and the dataset builder both use it, so an
    events-only model is trained on the frames it decides on."""

    def __init__(self, period_ns: int = defaults.EVENTS_ONLY_FRAME_PERIOD_NS) -> None:
        if int(period_ns) <= 0:
            raise WindowError(f"VirtualClock: period_ns must be positive, got {period_ns}")
        self.period_ns = int(period_ns)
        self._next_ns: int | None = None

    def due(self, first_event_ns: int | None, watermark_ns: int, room: int | None = None) -> list[int]:
        """Stamps of the virtual frames due up to ``watermark_ns`` (at most ``room`` of them, ``None``: all; the
        rest come at the next call)."""
        if self._next_ns is None:
            if first_event_ns is None:
                return []
            self._next_ns = first_event_ns + self.period_ns
        out: list[int] = []
        while self._next_ns <= watermark_ns and (room is None or len(out) < room):
            out.append(self._next_ns)
            self._next_ns += self.period_ns
        return out

    def reset(self) -> None:
        """Restart from the next first event (after a time jump)."""
        self._next_ns = None


@dataclass
class EventBufferCounters:
    """What an ``EventBuffer`` received and where each event went (monotone counts).

    Events are conserved: ``events_in == buffered + expired + dropped_overflow + dropped_late + dropped_resolution``
    (expired = cut into every frame that could use it and left; malformed batches are counted in
    ``malformed_batches``, never in ``events_in``)."""

    batches: int = 0
    malformed_batches: int = 0
    events_in: int = 0
    dropped_overflow: int = 0
    dropped_late: int = 0
    dropped_resolution: int = 0
    expired: int = 0
    resolution_changes: int = 0


class EventBuffer:
    """A bounded, time-ordered event store that cuts the event bins of each frame (``WindowSpec.edges``).

    Batches are kept as contiguous columns; their order is checked once per pushed batch (sorted batches are then
    sliced, never masked). After a cut, events no later frame can use (``WindowSpec.horizon_ns``) leave; events older
    than that arriving later are *late* and dropped. A full buffer drops the oldest events or the incoming batch
    (``DropPolicy``); a change of sensor resolution clears it. Every drop is counted, never raised.
    """

    def __init__(self, spec: WindowSpec, max_events: int = 4_000_000,
                 drop_policy: DropPolicy = DropPolicy.DROP_OLDEST) -> None:
        if max_events < 1:
            raise WindowError(f"EventBuffer: max_events must be >= 1, got {max_events}")
        self.spec = spec
        self.max_events = int(max_events)
        self.drop_policy = DropPolicy(drop_policy)
        self.counters = EventBufferCounters()
        self._chunks: list[_Chunk] = []
        self._count = 0
        self._sensor_wh: tuple[int, int] | None = None
        self._horizon_ns = -(2**62)
        #: stamps of the first and the newest event kept since the start (or the last ``reset``)
        self.first_ns: int | None = None
        self.newest_ns: int | None = None

    @property
    def buffered(self) -> int:
        """Events currently held (bounded by ``max_events``)."""
        return self._count

    @property
    def sensor_wh(self) -> tuple[int, int] | None:
        """Sensor size of the buffered events (``None`` before the first batch)."""
        return self._sensor_wh

    def push(self, batch: Any) -> int | None:
        """Add an event batch (an ``EventBatch`` or anything with its columns and sensor size). Returns how many of
        its events were kept, or ``None`` for a malformed batch (bad shapes or dtypes, coordinates outside the
        sensor: counted in ``malformed_batches``, nothing kept)."""
        c = self.counters
        c.batches += 1
        try:
            t, x, y, p, wh, late, ordered, t_min, t_max = _validate(batch, self._horizon_ns)
        except (ValueError, TypeError, AttributeError) as exc:
            c.malformed_batches += 1
            LOG.debug("malformed event batch dropped: %s", exc)
            return None
        n = len(t)
        c.events_in += n
        if self._sensor_wh is not None and wh != self._sensor_wh:
            c.resolution_changes += 1
            c.dropped_resolution += self._count
            LOG.warning("event sensor resolution changed %s -> %s: event buffer cleared", self._sensor_wh, wh)
            self._chunks.clear()
            self._count = 0
        self._sensor_wh = wh
        if n == 0:
            return 0
        if late:
            c.dropped_late += late
            keep = t >= self._horizon_ns
            t, x, y, p = t[keep], x[keep], y[keep], p[keep]
            n = len(t)
            if n == 0:
                return 0
        if ordered is None:
            ordered, t_min, t_max = n < 2 or bool(np.all(t[1:] >= t[:-1])), int(t.min()), int(t.max())
        # copies: the caller may reuse its buffers
        chunk = _Chunk(t.copy(), x.astype(np.uint16), y.astype(np.uint16), p.astype(np.uint8), ordered)
        if self._count + n > self.max_events:
            if self.drop_policy is DropPolicy.DROP_NEWEST:
                c.dropped_overflow += n
                return 0
            self._drop_oldest(self._count + n - self.max_events)
            if n > self.max_events:
                c.dropped_overflow += n - self.max_events
                chunk = chunk.take(slice(n - self.max_events, None))
                t_min, t_max = int(chunk.t.min()), int(chunk.t.max())
        self._chunks.append(chunk)
        self._count += len(chunk)
        self.newest_ns = t_max if self.newest_ns is None else max(self.newest_ns, t_max)
        if self.first_ns is None:
            self.first_ns = t_min
        return len(chunk)

    def cut(self, stamp_ns: int, prev_stamp_ns: int | None = None) -> tuple[EventBatch, np.ndarray]:
        """The events of the frame stamped ``stamp_ns`` (``WindowSpec.edges``) and those edges; then every event no
        later frame can use leaves the buffer (``expired``)."""
        edges = self.spec.edges(stamp_ns, prev_stamp_ns)
        lo, hi = int(edges[0]), int(edges[-1])
        horizon = min(self.spec.horizon_ns(stamp_ns), hi)
        sel_parts, kept_parts = [], []
        for ch in self._chunks:
            if ch.is_sorted:
                i_lo, i_hi, i_keep = np.searchsorted(ch.t, [lo, hi, horizon], side="left")
                sel_parts.append(ch.take(slice(i_lo, i_hi)))
                kept_parts.append(ch.take(slice(i_keep, None)))
            else:
                sel_parts.append(ch.take((ch.t >= lo) & (ch.t < hi)))
                kept_parts.append(ch.take(ch.t >= horizon))
        sel = _Chunk.concat(sel_parts)
        before = self._count
        self._chunks = [k for k in kept_parts if len(k)]
        self._count = sum(len(k) for k in self._chunks)
        self.counters.expired += before - self._count
        self._horizon_ns = max(self._horizon_ns, horizon)
        w, h = self._sensor_wh or self.spec.grid_wh
        return EventBatch(sel.t, sel.x, sel.y, sel.p, w, h), edges

    def reset(self) -> None:
        """Forget every buffered event and the late horizon (a time jump); what was held counts as expired."""
        self.counters.expired += self._count
        self._chunks.clear()
        self._count = 0
        self._horizon_ns = -(2**62)
        self.first_ns = self.newest_ns = None

    def _drop_oldest(self, n_drop: int) -> None:
        while n_drop > 0 and self._chunks:
            ch = self._chunks[0]
            if len(ch) <= n_drop:
                self._chunks.pop(0)
                self._count -= len(ch)
                self.counters.dropped_overflow += len(ch)
                n_drop -= len(ch)
            else:
                self._chunks[0] = ch.take(slice(n_drop, None))
                self._count -= n_drop
                self.counters.dropped_overflow += n_drop
                n_drop = 0


@dataclass(frozen=True, slots=True)
class _Chunk:
    """Buffered events as contiguous columns and whether ``t`` is non-decreasing (slices of a sorted chunk stay
    sorted; masks of an unsorted one are kept as unsorted)."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    is_sorted: bool

    def __len__(self) -> int:
        return len(self.t)

    def take(self, idx: slice | np.ndarray) -> _Chunk:
        return _Chunk(self.t[idx], self.x[idx], self.y[idx], self.p[idx], self.is_sorted)

    @staticmethod
    def concat(parts: list[_Chunk]) -> _Chunk:
        parts = [c for c in parts if len(c)]
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return _Chunk(np.empty(0, np.int64), np.empty(0, np.uint16), np.empty(0, np.uint16),
                          np.empty(0, np.uint8), True)
        ordered = all(c.is_sorted for c in parts) and all(a.t[-1] <= b.t[0] for a, b in itertools.pairwise(parts))
        return _Chunk(*(np.concatenate([getattr(c, f) for c in parts]) for f in ("t", "x", "y", "p")), ordered)


_BATCH_DTYPES = (np.dtype(np.int64), np.dtype(np.uint16), np.dtype(np.uint16), np.dtype(np.uint8))


def _validate(batch: Any, horizon: int) -> tuple:
    """``(t, x, y, p, (w, h), late, ordered, t_min, t_max)`` of a batch, or ``ValueError``/``TypeError`` naming what is
    malformed. ``late`` counts events before ``horizon``; ``ordered``/``t_min``/``t_max`` describe the others (None:
    not computed). Columns of the batch dtypes take one compiled pass (``kernels.scan_columns``)."""
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
    if n and (t.dtype, x.dtype, y.dtype, p.dtype) == _BATCH_DTYPES and all(
            a.flags.c_contiguous for a in (t, x, y, p)):
        bad, late, ordered, t_min, t_max = scan_columns(t, x, y, p, w, h, horizon)
        if not bad:
            return t, x, y, p, (w, h), late, (ordered if not late else None), t_min, t_max
    if n and not (np.issubdtype(t.dtype, np.integer) and np.issubdtype(x.dtype, np.integer)
                  and np.issubdtype(y.dtype, np.integer)):
        raise TypeError("t_ns, x, y must be integer arrays")
    if n and (int(x.max()) >= w or int(y.max()) >= h or int(x.min()) < 0 or int(y.min()) < 0):
        raise ValueError(f"coordinates outside the {w}x{h} sensor")
    if n and int(p.max()) > 1:
        raise ValueError("polarity must be 0 or 1")
    t = t.astype(np.int64, copy=False)
    return t, x, y, p.astype(np.uint8, copy=False), (w, h), int(np.count_nonzero(t < horizon)), None, None, None


def assemble_window(spec: WindowSpec, event_feats: Any, rgb_feats: Any | None) -> Any:
    """One window in the feature-set layout the HSTNN is trained on: ``[..., T, F_ev + F_rgb]`` where step ``i``
    is ``concat(event feature i, RGB feature or zeros)`` and RGB feature ``j`` enters at ``spec.rgb_steps[j]``.

    ``event_feats`` ``[..., T, F_ev]`` and ``rgb_feats`` ``[..., rgb_frames, F_rgb]`` (or ``None``: no RGB block)
    are numpy arrays or torch tensors; the result has the same kind, dtype and device."""
    if event_feats.shape[-2] != spec.event_frames:
        raise WindowError(f"assemble_window: {event_feats.shape[-2]} event features, the window has "
                          f"{spec.event_frames}")
    if rgb_feats is None:
        return event_feats
    if rgb_feats.shape[-2] != spec.rgb_frames:
        raise WindowError(f"assemble_window: {rgb_feats.shape[-2]} RGB features, the window has {spec.rgb_frames}")
    f_ev, f_rgb = event_feats.shape[-1], rgb_feats.shape[-1]
    shape = (*event_feats.shape[:-1], f_ev + f_rgb)
    if isinstance(event_feats, np.ndarray):
        out = np.zeros(shape, event_feats.dtype)
    else:
        import torch  # noqa: PLC0415 - numpy callers need not pay for torch

        out = torch.zeros(shape, dtype=event_feats.dtype, device=event_feats.device)
    out[..., :f_ev] = event_feats
    out[..., list(spec.rgb_steps), f_ev:] = rgb_feats
    return out


def window_from_metadata(meta: dict[str, Any], *, source: str) -> WindowSpec:
    """The ``WindowSpec`` a front-end bundle or dataset manifest records under ``window``. Bundles written before
    the window was one value recorded ``input_hw``, ``bins``, ``bin_ns`` and ``event_framing``; those are read
    too, so no old bundle runs mis-framed."""
    if "window" in meta:
        return WindowSpec.from_dict(meta["window"], source=source)
    legacy = {"input_hw", "bins", "bin_ns", "event_framing"}
    if not legacy & set(meta):
        raise WindowError(f"{source}: no 'window' in its metadata: rebuild it with hstnn-frontends")
    fr = meta.get("event_framing", {})
    bins = int(meta.get("bins", defaults.EVENT_BINS_PER_RGB))
    return WindowSpec(
        event_frames=bins * defaults.RGB_FRAMES_PER_WINDOW,
        bin_ns=int(meta.get("bin_ns", defaults.EVENT_BIN_NS)),
        input_hw=tuple(meta.get("input_hw", WindowSpec().input_hw)),
        resize=fr.get("mode", ResizeMode.SCALE), clip=fr.get("clip"), normalize=fr.get("normalize", "none"),
        depth=int(meta.get("rgb_channels", 3)) == 4,
    )
