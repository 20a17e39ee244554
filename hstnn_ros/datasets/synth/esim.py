"""ESIM/v2e-style DVS pixel model driven by rendered log intensity, vectorised per render step.

Each pixel keeps a reference log intensity. Between two render steps the log intensity is taken as linear in time;
every crossing of ``ref +- k * C`` (per-pixel thresholds ``C ~ N(C, sigma)``, mismatch fixed per sensor) emits one
event at the interpolated time, so a pixel can fire several times in one step (integer counts, ``np.repeat``). A
refractory period drops crossings closer than ``refractory_us`` to the pixel's previous event (exact for the equally
spaced crossings of one step). Background-activity noise is a Poisson process per pixel. Times are whole
microseconds, stored as int64 nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hstnn_ros.datasets.synth.config import EventSimConfig
from hstnn_ros.datasets.synth.errors import SynthError


@dataclass(frozen=True)
class SimEvents:
    """Columnar events of one step, sorted by time: ``t_ns`` int64 (whole microseconds), ``x``/``y`` uint16,
    ``p`` uint8 (1 = ON, brighter)."""

    t_ns: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray

    def __len__(self) -> int:
        return int(self.t_ns.shape[0])

    @staticmethod
    def concat(parts: list[SimEvents]) -> SimEvents:
        """One batch from consecutive batches (already in time order)."""
        if not parts:
            z16 = np.zeros(0, np.uint16)
            return SimEvents(np.zeros(0, np.int64), z16, z16.copy(), np.zeros(0, np.uint8))
        return SimEvents(*(np.concatenate([getattr(b, f) for b in parts]) for f in ("t_ns", "x", "y", "p")))


class EventSimulator:
    """Stateful DVS model for a ``width`` x ``height`` sensor; feed it log-intensity frames in time order."""

    def __init__(self, width: int, height: int, cfg: EventSimConfig, *, ba_rate_hz: float, ba_on_fraction: float,
                 sensor_seed: int, noise_seed: int) -> None:
        self.width, self.height, self.cfg = width, height, cfg
        self.ba_rate_hz = ba_rate_hz if cfg.noise else 0.0
        self.ba_on_fraction = ba_on_fraction
        srng = np.random.default_rng(np.random.SeedSequence([sensor_seed, 0xD75]))
        n = width * height
        self.c_on = np.maximum(cfg.contrast_min, srng.normal(cfg.contrast_on, cfg.contrast_sigma, n)).astype(np.float32)
        self.c_off = np.maximum(cfg.contrast_min, srng.normal(cfg.contrast_off, cfg.contrast_sigma, n)).astype(
            np.float32)
        self.rng = np.random.default_rng(np.random.SeedSequence([noise_seed, 0xBA]))
        self.ref: np.ndarray | None = None
        self.prev: np.ndarray | None = None
        self.t_prev_us = 0
        self.last_us = np.full(n, -(1 << 40), np.int64)

    def reset(self, log_frame: np.ndarray, t_ns: int) -> None:
        """Start from ``log_frame`` (float32 [H, W]) at ``t_ns``: references equal the frame, no events."""
        self._check(log_frame)
        self.ref = log_frame.reshape(-1).astype(np.float32).copy()
        self.prev = self.ref.copy()
        self.t_prev_us = int(t_ns) // 1000

    def _check(self, log_frame: np.ndarray) -> None:
        if log_frame.shape != (self.height, self.width):
            raise SynthError(f"log frame of shape {log_frame.shape} given to a {self.width}x{self.height} sensor")

    def step(self, log_frame: np.ndarray, t_ns: int) -> SimEvents:
        """Events between the previous frame and ``log_frame`` at ``t_ns`` (must be later), sorted by time."""
        if self.ref is None or self.prev is None:
            raise SynthError("EventSimulator.step called before reset(); call reset(first_frame, t0_ns) first")
        self._check(log_frame)
        t1_us = int(t_ns) // 1000
        t0_us = self.t_prev_us
        if t1_us <= t0_us:
            raise SynthError(f"frame time {t_ns} ns is not after the previous frame ({t0_us * 1000} ns)")
        L0, L1 = self.prev, log_frame.reshape(-1).astype(np.float32)
        dt = float(t1_us - t0_us)
        d = L1 - self.ref
        # only pixels past a threshold do any further work (most pixels of a frame are quiet)
        on_pix = np.flatnonzero(d >= self.c_on)
        off_pix = np.flatnonzero(d <= -self.c_off)
        n_on = np.floor(d[on_pix] / self.c_on[on_pix]).astype(np.int64)
        n_off = np.floor(-d[off_pix] / self.c_off[off_pix]).astype(np.int64)
        parts = [self._crossings(on_pix, n_on, self.c_on, 1, ref=self.ref, L0=L0, L1=L1, t0_us=t0_us, dt=dt),
                 self._crossings(off_pix, n_off, self.c_off, -1, ref=self.ref, L0=L0, L1=L1, t0_us=t0_us, dt=dt)]
        self.ref[on_pix] += n_on * self.c_on[on_pix]
        self.ref[off_pix] -= n_off * self.c_off[off_pix]
        self.prev = L1
        self.t_prev_us = t1_us
        if self.ba_rate_hz > 0:
            parts.append(self._noise(t0_us, t1_us))
        n_px = self.width * self.height
        idx = np.concatenate([p[0] for p in parts])
        t_us = np.concatenate([p[1] for p in parts])
        pol = np.concatenate([p[2] for p in parts])
        order = np.argsort(t_us * n_px + idx, kind="stable")  # by time, then pixel
        idx, t_us, pol = idx[order], t_us[order], pol[order]
        return SimEvents(t_ns=t_us * 1000, x=(idx % self.width).astype(np.uint16),
                         y=(idx // self.width).astype(np.uint16), p=pol)

    def _crossings(self, pix: np.ndarray, cnt: np.ndarray, c: np.ndarray, sign: int, *, ref: np.ndarray,
                   L0: np.ndarray, L1: np.ndarray, t0_us: int, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Interpolated crossing times of pixels ``pix`` with ``cnt`` crossings of step ``c`` in direction
        ``sign`` from reference levels ``ref`` (as before this step), thinned by the refractory period; updates
        ``last_us``."""
        if pix.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint8)
        slope = np.abs(L1[pix] - L0[pix]).astype(np.float64) / dt  # log units per microsecond
        slope = np.maximum(slope, 1e-12)
        ci = c[pix].astype(np.float64)
        # time of crossing k (1-based): level ref + sign*k*c reached from L0 along the linear ramp
        first = t0_us + np.clip(sign * (ref[pix] + sign * ci - L0[pix]) / slope, 0.0, dt)
        spacing = ci / slope
        refr = float(self.cfg.refractory_us)
        # greedy refractory on an equally spaced sequence: first allowed index k0, then every m-th crossing
        k0 = np.maximum(np.ceil((self.last_us[pix] + refr - first) / spacing), 0).astype(np.int64)
        m = np.maximum(np.ceil(refr / spacing - 1e-9), 1).astype(np.int64) if refr > 0 else np.ones_like(cnt)
        rep_pix = np.repeat(np.arange(pix.size), cnt)
        starts = np.cumsum(cnt) - cnt
        k = np.arange(rep_pix.size) - starts[rep_pix]  # 0-based crossing index within the pixel
        keep = (k >= k0[rep_pix]) & ((k - k0[rep_pix]) % m[rep_pix] == 0)
        rep_pix, k = rep_pix[keep], k[keep]
        t = np.minimum(first[rep_pix] + k * spacing[rep_pix], t0_us + dt)
        t_us = np.rint(t).astype(np.int64)
        t_us = np.clip(t_us, t0_us + 1, t0_us + int(dt))
        idx = pix[rep_pix]
        if idx.size:  # crossings are grouped by pixel with increasing times: the last of each group is the latest
            last = np.append(idx[1:] != idx[:-1], True)
            self.last_us[idx[last]] = t_us[last]
        return idx, t_us, np.full(idx.size, 1 if sign > 0 else 0, np.uint8)

    def _noise(self, t0_us: int, t1_us: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Background-activity events: Poisson in space and time, ON with probability ``ba_on_fraction``."""
        n_pix = self.width * self.height
        count = int(self.rng.poisson(self.ba_rate_hz * n_pix * (t1_us - t0_us) * 1e-6))
        idx = self.rng.integers(0, n_pix, count)
        t_us = self.rng.integers(t0_us + 1, t1_us + 1, count)
        pol = (self.rng.random(count) < self.ba_on_fraction).astype(np.uint8)
        return idx, t_us.astype(np.int64), pol
