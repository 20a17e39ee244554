"""Camera trajectories along the path: per-traversal mean speed, slow speed changes, lateral and yaw jitter.

Sampled on the event simulator's render grid (``1 / render_hz``); everything else (RGB frames, odometry) is
interpolated from it. Seeded per (route seed, environment, traversal).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from hstnn_ros.datasets.synth.config import MotionConfig


@dataclass(frozen=True)
class Trajectory:
    """Poses on a uniform time grid: ``t_s`` from 0, ``x`` distance along the path, ``y`` lateral, ``yaw``."""

    t_s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray

    @property
    def duration_s(self) -> float:
        return float(self.t_s[-1])

    def at(self, t_s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Linearly interpolated (x, y, yaw) at times ``t_s``."""
        return (np.interp(t_s, self.t_s, self.x), np.interp(t_s, self.t_s, self.y),
                np.interp(t_s, self.t_s, self.yaw))

    def velocity(self, t_s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Forward speed (m/s, along the heading) and yaw rate (rad/s) at ``t_s``."""
        v, w = self._rate_cache
        return np.interp(t_s, self.t_s, v), np.interp(t_s, self.t_s, w)

    @functools.cached_property
    def _rate_cache(self) -> tuple[np.ndarray, np.ndarray]:
        """Speed and yaw rate on the grid, computed once (odometry asks for them at every message)."""
        if self.t_s.size < 2:
            return np.zeros_like(self.x), np.zeros_like(self.x)
        dt = float(self.t_s[1] - self.t_s[0])
        v = np.hypot(np.gradient(self.x, dt), np.gradient(self.y, dt))
        return v, np.gradient(self.yaw, dt)


def _wiggle(rng: np.random.Generator, u: np.ndarray, periods: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Smooth zero-mean signal in [-1, 1]: weighted sinusoids with random periods and phases."""
    weights = np.linspace(1.0, 0.4, len(periods))
    weights /= weights.sum()
    out = np.zeros_like(u, dtype=np.float64)
    for wgt, (lo, hi) in zip(weights, periods, strict=True):
        out += wgt * np.sin(2 * math.pi * u / rng.uniform(lo, hi) + rng.uniform(0, 2 * math.pi))
    return out


def make_trajectory(motion: MotionConfig, length_m: float, dt_s: float, seed_seq: list[int],
                    duration_s: float | None = None) -> Trajectory:
    """Drive from x = 0 to ``length_m`` (or for ``duration_s`` if given, e.g. a static camera with speed 0).

    ``seed_seq`` identifies the traversal (e.g. ``[seed, env, traversal]``) so traversals differ but repeat.
    """
    rng = np.random.default_rng(np.random.SeedSequence([*seed_seq, 0x40]))
    v_mean = motion.speed_mps * (1 + rng.uniform(-motion.speed_var_between, motion.speed_var_between))
    if duration_s is None:
        if v_mean <= 0:
            raise ValueError("speed_mps must be positive unless duration_s is given")
        duration_s = length_m / (v_mean * (1 - motion.speed_var_within)) + 1.0
    n = math.ceil(duration_s / dt_s) + 1
    t = np.arange(n) * dt_s
    v = v_mean * (1 + motion.speed_var_within * _wiggle(rng, t, ((5.0, 11.0), (1.5, 3.5))))
    x = np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]) * dt_s)])
    if motion.speed_mps > 0 and x[-1] >= length_m:
        end = int(np.searchsorted(x, length_m)) + 1
        t, x = t[:end], x[:end]
    y = motion.lateral_jitter_m * _wiggle(rng, x, ((6.0, 14.0), (1.5, 4.0)))
    slope = np.gradient(y, x) if motion.speed_mps > 0 and x.size > 1 else np.zeros_like(x)
    yaw = np.arctan(slope) + math.radians(motion.yaw_jitter_deg) * _wiggle(rng, t, ((1.5, 4.0), (0.7, 1.5)))
    return Trajectory(t_s=t, x=x, y=y, yaw=yaw)
