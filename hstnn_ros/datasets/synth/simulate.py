"""One traversal of a synthetic route as a time-ordered stream of sensor records (no ROS types here).

Renders the DVS view on the render grid and feeds its log intensity to the event simulator, renders the RGB-D view
at ``rgb_hz`` and samples odometry at ``odom_hz``; records come out in time order, ready for a bag writer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from hstnn_ros.datasets.synth.config import LIGHTING, LightingConfig, RouteConfig, validate
from hstnn_ros.datasets.synth.esim import EventSimulator, SimEvents
from hstnn_ros.datasets.synth.motion import Trajectory, make_trajectory
from hstnn_ros.datasets.synth.render import Pose, Renderer, illumination
from hstnn_ros.datasets.synth.world import World
from hstnn_ros.enums import Environment

#: Start of every synthetic clock (2023-11-14T22:13:20Z); traversal k of environment e starts 1 h * (10 e + k) later.
EPOCH_NS = 1_700_000_000 * 10**9
_ENV_INDEX = {Environment.ENV1: 1, Environment.ENV2: 2, Environment.ENV3: 3}


@dataclass(frozen=True)
class EventsRecord:
    """Events of one packet interval ``[t_ns, t_end_ns)``."""

    t_ns: int
    t_end_ns: int
    events: SimEvents


@dataclass(frozen=True)
class RgbdRecord:
    """An RGB frame (uint8 [H, W, 3]) with its aligned depth (uint16 mm, 0 = invalid) and ground truth."""

    t_ns: int
    rgb: np.ndarray
    depth_mm: np.ndarray
    x_m: float
    place: int


@dataclass(frozen=True)
class OdomRecord:
    """Ground-truth pose and twist."""

    t_ns: int
    x: float
    y: float
    yaw: float
    v: float
    yaw_rate: float


Record = EventsRecord | RgbdRecord | OdomRecord


def traversal_start_ns(env: Environment, traversal: int) -> int:
    """Clock start of a traversal: distinct, deterministic, an hour apart."""
    return EPOCH_NS + (10 * _ENV_INDEX[env] + traversal) * 3600 * 10**9


def log_intensity(lin: np.ndarray, illum: np.ndarray, eps: float) -> np.ndarray:
    """What the DVS photoreceptor sees: log(linear luminance * illumination + eps), float32."""
    return np.log(lin * illum + np.float32(eps))


def shade_rgb(srgb: np.ndarray, illum: np.ndarray, exposure: float, noise_sigma: float,
              rng: np.random.Generator) -> np.ndarray:
    """Colour camera image: linearise, light, expose, add sensor noise (shot-like + read), back to sRGB uint8."""
    light = illum if illum.ndim == srgb.ndim else illum[..., None]  # per pixel, or per pixel and channel
    lin = np.power(srgb * np.float32(1 / 255), np.float32(2.2)) * (light * np.float32(exposure))
    if noise_sigma > 0:
        lin = lin + rng.normal(0, noise_sigma, lin.shape).astype(np.float32) * np.sqrt(np.maximum(lin, 0.02))
    out = np.power(np.clip(lin, 0, 1), np.float32(1 / 2.2)) * 255 + 0.5
    return out.astype(np.uint8)


def traversal_lighting(light: LightingConfig, seed_seq: list[int]) -> tuple[LightingConfig, np.ndarray]:
    """The lighting of one traversal: the environment's, with this traversal's global gain (log-normal,
    ``traversal_gain_sd``), drift phase and cloud offset, and its RGB colour gains (``traversal_tint_sd``)."""
    rng = np.random.default_rng(np.random.SeedSequence([*seed_seq, 0x11647]))
    gain = light.gain * float(np.exp(rng.normal(0.0, light.traversal_gain_sd))) if light.traversal_gain_sd else \
        light.gain
    tint = np.ones(3, np.float32)
    if light.traversal_tint_sd:
        tint = np.clip(1.0 + rng.normal(0.0, light.traversal_tint_sd, 3), 0.5, 1.5).astype(np.float32)
    phase = float(rng.uniform(0, light.drift_period_s)) if light.drift_amp else 0.0
    cloud = float(rng.uniform(0, 200.0)) if light.cloud_depth else 0.0
    return dataclasses.replace(light, gain=gain, drift_phase_s=phase, cloud_offset_m=cloud), tint


class TraversalSimulator:
    """Simulates traversal ``traversal`` of ``world`` under ``env``; iterate ``records()`` once."""

    def __init__(self, world: World, cfg: RouteConfig, env: Environment, traversal: int, *, seed: int,
                 trajectory: Trajectory | None = None) -> None:
        validate(cfg)
        self.world, self.cfg, self.env, self.traversal, self.seed = world, cfg, env, traversal, seed
        self.light, self.tint = LIGHTING[env], np.ones(3, np.float32)
        if cfg.traversal_lighting:
            self.light, self.tint = traversal_lighting(LIGHTING[env], [seed, _ENV_INDEX[env], traversal])
        ev, cam = cfg.events, cfg.camera
        self.dt_s = 1.0 / ev.render_hz
        self.traj = trajectory or make_trajectory(cfg.motion, world.length_m, self.dt_s,
                                                  [seed, _ENV_INDEX[env], traversal])
        self.t0_ns = traversal_start_ns(env, traversal)
        self.dvs = Renderer(world, cam.dvs_width, cam.dvs_height, cam.hfov_deg, cam.height_m)
        self.rgbcam = Renderer(world, cam.rgb_width, cam.rgb_height, cam.hfov_deg, cam.height_m)
        noise_seed = int(np.random.SeedSequence([seed, _ENV_INDEX[env], traversal]).generate_state(1)[0])
        self.esim = EventSimulator(cam.dvs_width, cam.dvs_height, ev, ba_rate_hz=self.light.ba_rate_hz,
                                   ba_on_fraction=self.light.ba_on_fraction, sensor_seed=seed, noise_seed=noise_seed)
        self.rgb_rng = np.random.default_rng(np.random.SeedSequence([seed, _ENV_INDEX[env], traversal, 0xC0]))

    @property
    def duration_s(self) -> float:
        return self.traj.duration_s

    @property
    def n_steps(self) -> int:
        return int(self.traj.t_s.shape[0])

    def _ns(self, t_s: float) -> int:
        return self.t0_ns + round(t_s * 1e9)

    def _dvs_log(self, i: int) -> np.ndarray:
        tr = self.traj
        r = self.dvs.render(Pose(float(tr.x[i]), float(tr.y[i]), float(tr.yaw[i])), gray=True)
        illum = illumination(self.world, self.light, r.x_hit, float(tr.t_s[i]))
        return log_intensity(r.image, illum, self.cfg.events.log_eps)

    def _rgbd(self, t_s: float) -> RgbdRecord:
        x, y, yaw = (float(a) for a in self.traj.at(t_s))
        r = self.rgbcam.render(Pose(x, y, yaw))
        illum = illumination(self.world, self.light, r.x_hit, t_s)
        rgb = shade_rgb(r.image, illum[..., None] * self.tint, self.light.rgb_exposure, self.light.rgb_noise_sigma,
                        self.rgb_rng)
        d = r.depth_m
        depth = np.where(d <= self.cfg.camera.max_depth_m, np.rint(d * 1000), 0).astype(np.uint16)
        return RgbdRecord(self._ns(t_s), rgb, depth, x, int(self.world.place_of(x)))

    def _odom(self, t_s: float) -> OdomRecord:
        x, y, yaw = (float(a) for a in self.traj.at(t_s))
        v, w = (float(a) for a in self.traj.velocity(t_s))
        return OdomRecord(self._ns(t_s), x, y, yaw, v, w)

    def records(self, progress: bool = False) -> Iterator[Record]:
        """Time-ordered records (per render step: due RGB-D frames and odometry, then finished event packets)."""
        tr = self.traj
        packet_s = self.cfg.packet_ms * 1e-3
        rgb_dt, odom_dt = 1.0 / self.cfg.rgb_hz, 1.0 / self.cfg.odom_hz
        next_rgb, next_odom, k_rgb, k_odom = 0.0, 0.0, 0, 0
        k_pkt = 0
        pending: list[SimEvents] = []
        self.esim.reset(self._dvs_log(0), self._ns(0.0))
        steps = range(1, self.n_steps)
        it = tqdm(steps, desc=f"{self.env.value} traversal {self.traversal}", unit="step", disable=not progress,
                  leave=False)
        for i in it:
            t = float(tr.t_s[i])
            while next_odom <= t:
                yield self._odom(next_odom)
                k_odom += 1
                next_odom = k_odom * odom_dt
            while next_rgb <= t:
                yield self._rgbd(next_rgb)
                k_rgb += 1
                next_rgb = k_rgb * rgb_dt
            pending.append(self.esim.step(self._dvs_log(i), self._ns(t)))
            last = i == self.n_steps - 1
            while True:  # emit every packet that ended by t; at the last step also the final partial packet
                end_s = (k_pkt + 1) * packet_s
                partial = end_s > t
                if partial and not last:
                    break
                batch = SimEvents.concat(pending)
                end_ns = self._ns(t) if partial else self._ns(end_s)
                cut = len(batch) if partial else int(np.searchsorted(batch.t_ns, end_ns, side="left"))
                head = SimEvents(*(a[:cut] for a in (batch.t_ns, batch.x, batch.y, batch.p)))
                pending = [SimEvents(*(a[cut:] for a in (batch.t_ns, batch.x, batch.y, batch.p)))]
                if len(head):
                    yield EventsRecord(self._ns(k_pkt * packet_s), end_ns, head)
                k_pkt += 1
                if partial:
                    break
