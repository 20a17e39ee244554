"""Event frames: per-polarity event counts per pixel per time bin, at the front-end resolution.

Coordinates are mapped to the output grid (never images resized), so every kept event adds exactly 1 to one cell
and frames sum to the event counts; counting is one compiled pass over the events (``kernels.frame_counts``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from hstnn_ros import defaults
from hstnn_ros.perception.errors import DecodeError
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.enums import Normalization, ResizeMode
from hstnn_ros.perception.events.kernels import frame_counts


def coordinate_luts(width: int, height: int, out_wh: tuple[int, int],
                    mode: ResizeMode = ResizeMode.SCALE) -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables sensor x -> output x and sensor y -> output y (int32, -1 where cropped away; read-only: cached
    per sensor size, grid and mode)."""
    return _cached_luts(int(width), int(height), (int(out_wh[0]), int(out_wh[1])), ResizeMode(mode))


@functools.lru_cache(maxsize=32)
def _cached_luts(width: int, height: int, out_wh: tuple[int, int], mode: ResizeMode) -> tuple[np.ndarray, np.ndarray]:
    luts = _coordinate_luts(width, height, out_wh, mode)
    for a in luts:
        a.flags.writeable = False
    return luts


def _coordinate_luts(width: int, height: int, out_wh: tuple[int, int],
                     mode: ResizeMode) -> tuple[np.ndarray, np.ndarray]:
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
    ``Normalization``; ``CLIP`` needs ``clip``). Unsorted batches are handled too."""
    edges = np.asarray(t_edges_ns, np.int64)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise DecodeError(f"events_to_frames: t_edges_ns must be >= 2 increasing times, got {edges[:5]}...")
    ow, oh = int(out_wh[0]), int(out_wh[1])
    nb = len(edges) - 1
    plane = oh * ow
    mode = ResizeMode(mode)  # accepts the enum or its value
    lut_x, lut_y = coordinate_luts(batch.width, batch.height, (ow, oh), mode)
    frames = np.zeros((nb, 2 * plane), np.float32)
    if len(batch) and frame_counts(batch.t_ns, batch.x, batch.y, batch.p, edges, lut_x, lut_y, ow, frames):
        raise DecodeError(f"events_to_frames: events outside the {batch.width}x{batch.height} sensor or with a "
                          "polarity above 1 (validate the batch)")
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
