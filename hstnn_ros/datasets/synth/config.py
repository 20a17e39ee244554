"""Configuration of synthetic routes: world geometry, cameras, motion, event simulator, lighting and size presets.

Every number a route depends on lives here, so that a route is fully described by (preset, overrides, seed) and
recorded in its ``route.json``.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from hstnn_ros.bags.enums import Storage
from hstnn_ros.datasets.synth.enums import Preset
from hstnn_ros.datasets.synth.errors import SynthError
from hstnn_ros.enums import Environment
from hstnn_ros.perception.events.enums import Encoding, EventMessageKind


@dataclass(frozen=True)
class WorldConfig:
    """Geometry of the procedurally generated corridor/street: a straight open path of ``path_length_m`` metres,
    split into ``num_places`` equal segments, each with its own wall/floor textures, posters and objects."""

    path_length_m: float = 100.0
    num_places: int = 100
    width_m: float = 3.2  #: wall to wall
    height_m: float = 3.0  #: floor to ceiling
    px_per_m: float = 48.0  #: texture resolution (reduced automatically for very long paths)
    objects_per_place: float = 1.2  #: mean number of free-standing objects (boxes, pillars, signs) per place
    posters_per_place: float = 3.0  #: mean number of wall posters per place
    texture_contrast: float = 0.6  #: textures are blended towards mid-grey by 1 - this (1 = full palette contrast)
    #: perceptual aliasing: this fraction of the places repeat the look (palette, wall pattern, floor) of another place
    #: of the route, as repeated corridor sections do; they keep only ``alias_detail`` of their own posters/objects
    alias_fraction: float = 0.0
    alias_detail: float = 0.25


@dataclass(frozen=True)
class CameraConfig:
    """Sensor sizes and optics: the DVS (DAVIS346 by default) and the RGB-D camera share the optical centre and
    the horizontal field of view, so depth is aligned to colour and both see the same scene."""

    dvs_width: int = 346
    dvs_height: int = 260
    rgb_width: int = 320
    rgb_height: int = 240
    hfov_deg: float = 70.0
    height_m: float = 1.1  #: optical centre above the floor
    max_depth_m: float = 10.0  #: depth beyond this is reported as 0 (invalid), as RealSense does


@dataclass(frozen=True)
class MotionConfig:
    """Camera motion along the path: a mean speed that varies between traversals, a speed that varies within a
    traversal, and small smooth lateral and yaw jitter."""

    speed_mps: float = 1.0
    speed_var_between: float = 0.2  #: traversal mean speed = speed_mps * (1 + U(-v, v))
    speed_var_within: float = 0.25  #: relative amplitude of slow speed changes within a traversal
    lateral_jitter_m: float = 0.08
    yaw_jitter_deg: float = 1.5


@dataclass(frozen=True)
class EventSimConfig:
    """ESIM/v2e-style pixel model: per-pixel contrast thresholds ~ N(C, sigma), refractory period, background
    activity noise; the log intensity is rendered at ``render_hz`` and crossings are interpolated in between."""

    contrast_on: float = 0.28  #: ON above OFF, as in real DVS pixels (real bags show ON ratios of 0.37-0.54)
    contrast_off: float = 0.22
    contrast_sigma: float = 0.03
    contrast_min: float = 0.05
    refractory_us: int = 100
    render_hz: float = 400.0
    log_eps: float = 0.01  #: added to the linear intensity before the log (dark current; matters in low light)
    noise: bool = True  #: background activity on/off (off only for tests of the contrast model)


@dataclass(frozen=True)
class LightingConfig:
    """One lighting environment: overall scene luminance, temporal drift, cloud shadows, sensor noise."""

    env: Environment
    gain: float  #: scene luminance relative to env1
    drift_amp: float = 0.0  #: relative amplitude of the global illumination drift (env2)
    drift_period_s: float = 7.0
    cloud_depth: float = 0.0  #: how much a cloud shadow darkens (0 = no clouds)
    cloud_speed_mps: float = 0.0
    ceiling_lights: float = 0.3  #: modulation by ceiling lamps (indoor)
    ba_rate_hz: float = 0.05  #: background-activity events per pixel per second
    ba_on_fraction: float = 0.5
    rgb_exposure: float = 1.0  #: auto-exposure gain applied to the RGB image
    rgb_noise_sigma: float = 0.0  #: std of additive RGB noise at full scale (0..1)
    #: how much the lighting differs between traversals (drawn once per traversal from its seed): log-normal sd of the
    #: global gain, sd of per-channel colour gains of the RGB camera (white balance / colour temperature), and, for a
    #: drifting light, a random phase of the drift and offset of the cloud pattern
    traversal_gain_sd: float = 0.0
    traversal_tint_sd: float = 0.0
    drift_phase_s: float = 0.0  #: set per traversal by the simulator
    cloud_offset_m: float = 0.0  #: set per traversal by the simulator


LIGHTING: dict[Environment, LightingConfig] = {
    Environment.ENV1: LightingConfig(Environment.ENV1, gain=1.0, ceiling_lights=0.3, ba_rate_hz=0.02,
                                     traversal_gain_sd=0.15, traversal_tint_sd=0.04),
    Environment.ENV2: LightingConfig(
        Environment.ENV2, gain=1.6, drift_amp=0.35, drift_period_s=6.0, cloud_depth=0.55, cloud_speed_mps=2.5,
        ceiling_lights=0.0, ba_rate_hz=0.05, rgb_exposure=0.75, traversal_gain_sd=0.35, traversal_tint_sd=0.08,
    ),
    Environment.ENV3: LightingConfig(
        Environment.ENV3, gain=0.06, ceiling_lights=0.15, ba_rate_hz=1.0, rgb_exposure=6.0, rgb_noise_sigma=0.06,
        traversal_gain_sd=0.25, traversal_tint_sd=0.05,
    ),
}


@dataclass(frozen=True)
class RouteConfig:
    """Everything that defines a set of synthetic routes (besides the seed and the environments)."""

    world: WorldConfig = field(default_factory=WorldConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    events: EventSimConfig = field(default_factory=EventSimConfig)
    rgb_hz: float = 30.0
    odom_hz: float = 50.0
    packet_ms: float = 10.0  #: one event message per this many milliseconds
    encoding: Encoding = Encoding.EVT3  #: of ``EventPacket`` messages (``dvs_msgs`` arrays have none)
    event_message: EventMessageKind = EventMessageKind.EVENT_PACKET
    storage: Storage = Storage.MCAP
    #: vary the lighting between traversals (each environment's ``traversal_*`` spreads); off keeps every traversal
    #: of an environment under identical light
    traversal_lighting: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (enums as their values)."""

        def conv(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, enum.Enum):
                return v.value
            return v

        return conv(dataclasses.asdict(self))

    def with_overrides(self, **kw: Any) -> RouteConfig:
        """Copy with top-level fields replaced (``world=``, ``motion=``, ``encoding=``, ...)."""
        return dataclasses.replace(self, **kw)


#: Documented sizes (simulated route length; generation wall time measured by bench/bench_synth.py on a shared
#: 2-core machine at ~0.4-0.5 simulated s per wall s for the 346x260 DVS):
#: demo: 8 m, 8 places, ~2 m/s -> ~4 s of route per traversal, ~10 s to generate, RGB 160x120, render 200 Hz;
#: default: 100 m, 100 places, ~1 m/s -> ~100 s of route, a few minutes per traversal, RGB 320x240, render 400 Hz;
#: bench: 150 m, 100 places, RGB 640x480, render 600 Hz -> ~150 s of route, several minutes per traversal.
PRESETS: dict[Preset, RouteConfig] = {
    Preset.DEMO: RouteConfig(
        world=WorldConfig(path_length_m=8.0, num_places=8),
        camera=CameraConfig(rgb_width=160, rgb_height=120),
        motion=MotionConfig(speed_mps=2.0),
        events=EventSimConfig(render_hz=200.0),
    ),
    # the default (paper-scale) world is hard enough to rank methods: aliased places and lighting that differs
    # between traversals
    Preset.DEFAULT: RouteConfig(world=WorldConfig(alias_fraction=0.3), traversal_lighting=True),
    Preset.BENCH: RouteConfig(
        world=WorldConfig(path_length_m=150.0, num_places=100),
        camera=CameraConfig(rgb_width=640, rgb_height=480),
        events=EventSimConfig(render_hz=600.0),
    ),
}


def preset_config(preset: Preset | str) -> RouteConfig:
    """The configuration of a named preset; raises ``SynthError`` listing the valid names."""
    try:
        return PRESETS[Preset(preset)]
    except ValueError:
        raise SynthError(f"unknown preset {preset!r}; use one of {[p.value for p in Preset]}") from None


def validate(cfg: RouteConfig) -> None:
    """Refuse configurations that cannot produce a route, naming the field and the fix."""
    w, c, e = cfg.world, cfg.camera, cfg.events
    if w.path_length_m <= 0 or w.num_places < 1:
        raise SynthError(f"world.path_length_m={w.path_length_m} and num_places={w.num_places} must be positive")
    if not (0 <= w.alias_fraction < 1 and 0 <= w.alias_detail <= 1):
        raise SynthError(f"world.alias_fraction={w.alias_fraction} must be in [0, 1) and alias_detail="
                         f"{w.alias_detail} in [0, 1]")
    if min(c.dvs_width, c.dvs_height, c.rgb_width, c.rgb_height) < 8:
        raise SynthError("camera sizes must be at least 8x8 pixels")
    if not 0 < c.height_m < w.height_m:
        raise SynthError(f"camera.height_m={c.height_m} must lie between floor and ceiling (0, {w.height_m})")
    if e.render_hz < cfg.rgb_hz or e.render_hz <= 0:
        raise SynthError(f"events.render_hz={e.render_hz} must be >= rgb_hz={cfg.rgb_hz}")
    if min(e.contrast_on, e.contrast_off) <= 0 or e.contrast_min <= 0:
        raise SynthError("contrast thresholds must be positive")
    if cfg.packet_ms <= 0 or cfg.odom_hz <= 0 or cfg.rgb_hz <= 0:
        raise SynthError("packet_ms, odom_hz and rgb_hz must be positive")
