"""Event frames: per-polarity event counts per pixel per time bin, at the front-end resolution.

Coordinates are mapped to the output grid (never images resized), so every kept event adds exactly 1 to one cell
and frames sum to the event counts; counting is one ``np.bincount`` over a flat (bin, polarity, y, x) index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hstnn_ros import defaults
from hstnn_ros.perception.errors import DecodeError
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.enums import Normalization, ResizeMode


def coordinate_luts(width: int, height: int, out_wh: tuple[int, int],
                    mode: ResizeMode = ResizeMode.SCALE) -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables sensor x -> output x and sensor y -> output y (int32, -1 where cropped away)."""
    ow, oh = int(out_wh[0]), int(out_wh[1])
    mode = ResizeMode(mode)
    xs = np.arange(width, dtype=np.int64)
    ys = np.arange(height, dtype=np.int64)
    if mode is ResizeMode.SCALE:
        return (xs * ow // width).astype(np.int32), (ys * oh // height).astype(np.int32)
    w, h = width, height
    if mode is ResizeMode.FIT:
        # scale by the larger ratio (rational num/den) so the output is covered, then centre crop
        num, den = (ow, width) if ow * height >= oh * width else (oh, height)
        xs, ys, w, h = xs * num // den, ys * num // den, width * num // den, height * num // den
    xs, ys = xs - (w - ow) // 2, ys - (h - oh) // 2
    return (np.where((xs >= 0) & (xs < ow), xs, -1).astype(np.int32),
            np.where((ys >= 0) & (ys < oh), ys, -1).astype(np.int32))


def events_to_frames(batch: EventBatch, t_edges_ns: Sequence[int] | np.ndarray,
                     out_wh: tuple[int, int] = defaults.FRONTEND_INPUT_WH, *, mode: ResizeMode = ResizeMode.SCALE,
                     clip: float | None = None, normalize: Normalization = Normalization.NONE) -> np.ndarray:
    """Frames ``float32 [bins, 2, H, W]`` (channel 0 = OFF, 1 = ON) of the events with
    ``t_edges_ns[i] <= t < t_edges_ns[i+1]``. ``clip`` caps counts; ``normalize`` scales each frame (see
    ``Normalization``; ``CLIP`` needs ``clip``). Unsorted batches are handled (slower path)."""
    edges = np.asarray(t_edges_ns, np.int64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise DecodeError(f"events_to_frames: t_edges_ns must be >= 2 increasing times, got {edges[:5]}...")
    ow, oh = int(out_wh[0]), int(out_wh[1])
    nb = len(edges) - 1
    plane = oh * ow
    mode = ResizeMode(mode)  # accepts the enum or its value
    lut_x, lut_y = coordinate_luts(batch.width, batch.height, (ow, oh), mode)
    xo, yo = lut_x[batch.x], lut_y[batch.y]
    pix = yo * ow + xo + batch.p.astype(np.int32) * plane
    if mode is not ResizeMode.SCALE:
        ok = (xo >= 0) & (yo >= 0)
        pix = np.where(ok, pix, -1)
    frames = np.zeros((nb, 2 * plane), np.float32)
    if batch.is_sorted():
        bounds = np.searchsorted(batch.t_ns, edges, side="left")
        for i in range(nb):
            seg = pix[bounds[i]:bounds[i + 1]]
            if mode is not ResizeMode.SCALE:
                seg = seg[seg >= 0]
            frames[i] = np.bincount(seg, minlength=2 * plane)
    else:
        b = np.searchsorted(edges, batch.t_ns, side="right") - 1
        keep = (b >= 0) & (b < nb) & (pix >= 0)
        flat = b[keep] * (2 * plane) + pix[keep]
        frames[:] = np.bincount(flat, minlength=nb * 2 * plane).reshape(nb, 2 * plane)
    return _normalise(frames.reshape(nb, 2, oh, ow), clip, Normalization(normalize))


def downscale_counts(frames: np.ndarray, out_wh: tuple[int, int], mode: ResizeMode = ResizeMode.SCALE) -> np.ndarray:
    """Count frames ``[..., h, w]`` at sensor resolution summed onto the output grid with the same coordinate mapping
    as :func:`events_to_frames`, so that framing at sensor resolution then downscaling equals framing directly (used
    for datasets that store sensor-resolution count tensors, e.g. NeuroGPR). Returns float32 ``[..., H, W]``."""
    h, w = frames.shape[-2:]
    ow, oh = int(out_wh[0]), int(out_wh[1])
    lut_x, lut_y = coordinate_luts(w, h, (ow, oh), mode)
    # one-hot maps (a column of zeros where a coordinate is cropped away): out = Ay @ frames @ Ax^T
    ay = (lut_y[None, :] == np.arange(oh)[:, None]).astype(np.float32)
    ax = (lut_x[None, :] == np.arange(ow)[:, None]).astype(np.float32)
    return (ay @ np.asarray(frames, np.float32) @ ax.T).astype(np.float32)


def _normalise(frames: np.ndarray, clip: float | None, normalize: Normalization) -> np.ndarray:
    if clip is not None:
        np.minimum(frames, np.float32(clip), out=frames)
    if normalize is Normalization.MAX:
        m = frames.reshape(len(frames), -1).max(axis=1)
        frames /= np.maximum(m, 1.0)[:, None, None, None]
    elif normalize is Normalization.CLIP:
        if clip is None:
            raise DecodeError("Normalization.CLIP needs clip= (the count mapped to 1.0)")
        frames /= np.float32(clip)
    return frames


def split_interval(t0_ns: int, t1_ns: int, bins: int = defaults.EVENT_BINS_PER_RGB) -> np.ndarray:
    """``bins + 1`` edges splitting ``[t0_ns, t1_ns)`` evenly (e.g. one RGB frame interval into 3 event bins)."""
    if t1_ns <= t0_ns or bins < 1:
        raise DecodeError(f"split_interval: need t1 > t0 and bins >= 1, got [{t0_ns}, {t1_ns}) and {bins}")
    return t0_ns + (np.arange(bins + 1, dtype=np.int64) * (t1_ns - t0_ns)) // bins


@dataclass(frozen=True)
class Frame:
    """One event frame: bin start/end (ns) and ``float32 [2, H, W]`` counts."""

    t0_ns: int
    t1_ns: int
    counts: np.ndarray


class StreamingFramer:
    """Cut a live event stream into fixed-length bins, emitting each bin once events past its end arrived.

    Bins are aligned to ``origin_ns`` (default: the first event). ``push(batch)`` returns the completed frames;
    ``flush()`` returns the partial last bin. Events older than the current bin (late arrivals) are counted in
    ``late_events`` and dropped.
    """

    def __init__(self, bin_ns: int, out_wh: tuple[int, int] = defaults.FRONTEND_INPUT_WH, *,
                 mode: ResizeMode = ResizeMode.SCALE, clip: float | None = None,
                 normalize: Normalization = Normalization.NONE, origin_ns: int | None = None) -> None:
        if bin_ns <= 0:
            raise DecodeError(f"StreamingFramer: bin_ns must be positive, got {bin_ns}")
        self.bin_ns, self.out_wh, self.mode = int(bin_ns), out_wh, mode
        self.clip, self.normalize = clip, normalize
        self._t0 = origin_ns
        self._pending: list[EventBatch] = []
        self.late_events = 0

    def push(self, batch: EventBatch) -> list[Frame]:
        """Add events; returns the frames of every bin that ended at or before the newest event."""
        if len(batch) == 0:
            return []
        if self._t0 is None:
            self._t0 = int(batch.t_ns[0])
        late = batch.t_ns < self._t0
        if late.any():
            self.late_events += int(late.sum())
            batch = batch.select(~late)
        self._pending.append(batch)
        t_new = int(batch.t_ns.max()) if len(batch) else self._t0
        n_done = (t_new - self._t0) // self.bin_ns
        return self._emit(n_done) if n_done > 0 else []

    def flush(self) -> list[Frame]:
        """Frames of all remaining bins, the last one partial."""
        if self._t0 is None or not self._pending:
            return []
        t_max = max(int(b.t_ns.max()) for b in self._pending if len(b))
        return self._emit((t_max - self._t0) // self.bin_ns + 1)

    def _emit(self, n_bins: int) -> list[Frame]:
        assert self._t0 is not None
        ev = EventBatch.concat(self._pending)
        edges = self._t0 + np.arange(n_bins + 1, dtype=np.int64) * self.bin_ns
        frames = events_to_frames(ev, edges, self.out_wh, mode=self.mode, clip=self.clip, normalize=self.normalize)
        rest = ev.t_ns >= edges[-1]
        self._pending = [ev.select(rest)] if rest.any() else []
        self._t0 = int(edges[-1])
        return [Frame(int(edges[i]), int(edges[i + 1]), frames[i]) for i in range(n_bins)]


def background_activity_filter(batch: EventBatch, window_ns: int = 2_000_000) -> EventBatch:
    """Drop events without support: keep an event only if one of its 8 neighbours fired within ``window_ns`` before
    it (dv-processing's ``BackgroundActivityNoiseFilter`` semantics, vectorised with numpy so it needs no
    per-event Python work). The batch must be time-sorted."""
    n = len(batch)
    if n == 0:
        return batch
    w, h = batch.width, batch.height
    x = batch.x.astype(np.int64)
    y = batch.y.astype(np.int64)
    t = batch.t_ns
    # (pixel, time)-sorted view: for a neighbour pixel q and time t, the latest earlier event there is found with
    # one searchsorted on a combined key (pixel runs made disjoint by offsetting time with the run rank)
    pix = y * w + x
    order = np.lexsort((t, pix))
    sp, st = pix[order], t[order]
    t_min = int(st.min())
    span = int(st.max()) - t_min + 1
    run_start = np.concatenate([[True], sp[1:] != sp[:-1]])
    run_rank = np.cumsum(run_start) - 1
    run_pix = sp[run_start]
    key = run_rank * span + (st - t_min)
    support = np.zeros(n, bool)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            if dx == 0 and dy == 0:
                continue
            nx, ny = x + dx, y + dy
            q = ny * w + nx
            r = np.searchsorted(run_pix, q)
            found = (nx >= 0) & (nx < w) & (ny >= 0) & (ny < h) & (r < len(run_pix))
            found &= run_pix[np.minimum(r, len(run_pix) - 1)] == q
            k = np.searchsorted(key, r * span + (t - t_min), side="left") - 1
            k = np.clip(k, 0, n - 1)
            found &= (run_rank[k] == r) & (st[k] < t)
            support |= found & ((t - st[k]) <= window_ns)
    return batch.select(support)

