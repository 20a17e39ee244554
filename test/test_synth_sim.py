"""Synthetic route: world, renderer, lighting and event simulator properties (no bag I/O)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.datasets.synth.config import EventSimConfig, MotionConfig, RouteConfig, WorldConfig, preset_config
from hstnn_ros.datasets.synth.errors import SynthError
from hstnn_ros.datasets.synth.esim import EventSimulator
from hstnn_ros.datasets.synth.motion import make_trajectory
from hstnn_ros.datasets.synth.render import Pose, Renderer
from hstnn_ros.datasets.synth.simulate import EventsRecord, RgbdRecord, TraversalSimulator
from hstnn_ros.datasets.synth.world import build_world
from hstnn_ros.enums import Environment

SMALL = RouteConfig(world=WorldConfig(path_length_m=8.0, num_places=8))


@pytest.fixture(scope="module")
def world():
    return build_world(SMALL.world, seed=3)


def _events(world, cfg: RouteConfig, env: Environment, *, speed: float, duration_s: float, noise: bool,
            jitter: bool = False) -> np.ndarray:
    """Event timestamps of a short drive (or a static camera with speed 0) from x = 2 m."""
    motion = MotionConfig(speed_mps=speed, speed_var_between=0.0, speed_var_within=0.0,
                          lateral_jitter_m=0.1 if jitter else 0.0, yaw_jitter_deg=2.0 if jitter else 0.0)
    cfg = dataclasses.replace(cfg, motion=motion, events=dataclasses.replace(cfg.events, noise=noise))
    tr = make_trajectory(motion, world.length_m, 1 / cfg.events.render_hz, [0, 1, 0], duration_s=duration_s)
    tr = dataclasses.replace(tr, x=tr.x + 2.0)
    sim = TraversalSimulator(world, cfg, env, 0, seed=1, trajectory=tr)
    ts = [r.events.t_ns for r in sim.records() if isinstance(r, EventsRecord)]
    return np.concatenate(ts) if ts else np.zeros(0, np.int64)


def test_world_is_seeded_and_repeatable():
    a, b, c = build_world(SMALL.world, 5), build_world(SMALL.world, 5), build_world(SMALL.world, 6)
    assert np.array_equal(a.atlas, b.atlas) and np.array_equal(a.objects.x_m, b.objects.x_m)
    assert not np.array_equal(a.atlas, c.atlas)


def test_static_scene_without_noise_gives_no_events(world):
    n = _events(world, SMALL, Environment.ENV1, speed=0.0, duration_s=0.4, noise=False).size
    assert n == 0


def test_more_motion_gives_more_events(world):
    slow = _events(world, SMALL, Environment.ENV1, speed=0.3, duration_s=0.4, noise=False).size
    fast = _events(world, SMALL, Environment.ENV1, speed=1.5, duration_s=0.4, noise=False).size
    assert slow > 100
    assert fast > 2 * slow


def test_low_light_has_more_background_noise(world):
    env1 = _events(world, SMALL, Environment.ENV1, speed=0.0, duration_s=0.4, noise=True).size
    env3 = _events(world, SMALL, Environment.ENV3, speed=0.0, duration_s=0.4, noise=True).size
    px_s = 346 * 260 * 0.4
    assert env3 > 10 * env1
    assert 0.5 < env3 / px_s < 2.0  # the configured ~1 Hz per pixel


def test_outdoor_light_changes_produce_events_on_a_static_camera(world):
    env1 = _events(world, SMALL, Environment.ENV1, speed=0.0, duration_s=0.5, noise=False).size
    env2 = _events(world, SMALL, Environment.ENV2, speed=0.0, duration_s=0.5, noise=False).size
    assert env1 == 0 and env2 > 1000


def test_traversal_stream_is_well_formed_and_deterministic(world):
    cfg = dataclasses.replace(SMALL, world=dataclasses.replace(SMALL.world, path_length_m=1.5),
                              motion=MotionConfig(speed_mps=2.0))
    w = build_world(cfg.world, seed=2)
    runs = []
    for _ in range(2):
        sim = TraversalSimulator(w, cfg, Environment.ENV3, 1, seed=2)
        runs.append(list(sim.records()))
    a, b = runs
    assert len(a) == len(b)
    for ra, rb in zip(a, b, strict=True):
        assert type(ra) is type(rb) and ra.t_ns == rb.t_ns
        if isinstance(ra, EventsRecord):
            for f in ("t_ns", "x", "y", "p"):
                assert np.array_equal(getattr(ra.events, f), getattr(rb.events, f))
        if isinstance(ra, RgbdRecord):
            assert np.array_equal(ra.rgb, rb.rgb) and np.array_equal(ra.depth_mm, rb.depth_mm)
    ev = [r for r in a if isinstance(r, EventsRecord)]
    t = np.concatenate([r.events.t_ns for r in ev])
    assert np.all(np.diff(t) >= 0) and np.all(t % 1000 == 0)
    for r in ev:
        assert np.all((r.events.t_ns > r.t_ns - 1) & (r.events.t_ns <= r.t_end_ns))
    x = np.concatenate([r.events.x for r in ev])
    y = np.concatenate([r.events.y for r in ev])
    assert x.max() < 346 and y.max() < 260
    rgbd = [r for r in a if isinstance(r, RgbdRecord)]
    dur = sim.duration_s
    assert abs(len(rgbd) - dur * cfg.rgb_hz) <= 2
    d = rgbd[0].depth_mm
    assert d.dtype == np.uint16 and d.shape == (cfg.camera.rgb_height, cfg.camera.rgb_width)
    valid = d[d > 0]
    assert valid.min() > 300 and valid.max() <= 10_000  # corridor walls 0.3..10 m away


def _view_at(world, cfg: RouteConfig, env: Environment, traversal: int, x_m: float) -> np.ndarray:
    """Downsampled RGB of a traversal (its own lateral/yaw jitter and light) when it passes x_m."""
    sim = TraversalSimulator(world, cfg, env, traversal, seed=1)
    t = float(np.interp(x_m, sim.traj.x, sim.traj.t_s))
    rec = sim._rgbd(t)
    small = cv2.resize(rec.rgb, (16, 12), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    return (small - small.mean()) / (small.std() + 1e-6)  # the usual VPR "patch-normalised thumbnail"


def test_places_differ_more_than_traversals_of_one_place(world):
    cfg = dataclasses.replace(SMALL, camera=dataclasses.replace(SMALL.camera, rgb_width=160, rgb_height=120))
    seg = world.length_m / world.config.num_places
    views = {(k, tr): _view_at(world, cfg, Environment.ENV1, tr, (k + 0.5) * seg) for k in range(8) for tr in (0, 1)}
    within = np.mean([np.linalg.norm(views[k, 0] - views[k, 1]) for k in range(8)])
    between = np.mean([np.linalg.norm(views[k, 0] - views[j, 1]) for k in range(8) for j in range(8) if j != k])
    assert between > 1.5 * within


def test_lighting_environments_differ_as_specified(world):
    cfg = dataclasses.replace(SMALL, camera=dataclasses.replace(SMALL.camera, rgb_width=96, rgb_height=72))
    pose = (3.0, 0.0, 0.0)
    means, temporal = {}, {}
    for env in Environment:
        sim = TraversalSimulator(world, cfg, env, 0, seed=1,
                                 trajectory=make_trajectory(MotionConfig(speed_mps=0.0, lateral_jitter_m=0.0,
                                                                         yaw_jitter_deg=0.0),
                                                            world.length_m, 0.01, [0], duration_s=6.0))
        sim.traj = dataclasses.replace(sim.traj, x=sim.traj.x + pose[0])
        frames = [sim._rgbd(t).rgb.astype(np.float32) for t in np.linspace(0, 6, 7)]
        means[env] = [f.mean() for f in frames]
        temporal[env] = np.abs(frames[1] - frames[0]).mean()
    # env1 stable, env2 drifts over time, env3 noisy (frame-to-frame noise on a static camera)
    assert np.ptp(means[Environment.ENV1]) < 0.5
    assert np.ptp(means[Environment.ENV2]) > 10 * max(np.ptp(means[Environment.ENV1]), 0.5)
    assert temporal[Environment.ENV1] == 0
    assert temporal[Environment.ENV3] > 3
    # DVS (linear) scene light: env3 is dim
    r = Renderer(world, 64, 48, 70, 1.1)
    from hstnn_ros.datasets.synth.config import LIGHTING
    from hstnn_ros.datasets.synth.render import illumination
    v = r.render(Pose(*pose), gray=True)
    light = {e: float((v.image * illumination(world, LIGHTING[e], v.x_hit, 0.0)).mean()) for e in Environment}
    assert light[Environment.ENV3] < 0.1 * light[Environment.ENV1]


def test_renderer_depth_matches_geometry():
    """In an empty corridor, depth is the analytic distance to floor, side wall and end wall."""
    empty = build_world(WorldConfig(path_length_m=8.0, num_places=2, objects_per_place=0.0), seed=0)
    r = Renderer(empty, 41, 31, 70, 1.1)
    v = r.render(Pose(2.0, 0.0, 0.0))
    assert v.depth_m[30, 20] == pytest.approx(1.1 / (15 / r.fx), rel=1e-4)  # floor, 15 rows below the centre
    assert v.depth_m[15, 0] == pytest.approx(1.6 / (20 / r.fx), rel=1e-4)  # left wall at 1.6 m, 20 columns out
    assert v.depth_m[15, 20] == pytest.approx(8.0 + 6.0 - 2.0, rel=1e-4)  # end wall 6 m past the path end
    v2 = r.render(Pose(2.0, 0.5, 0.0))
    assert v2.depth_m[15, 0] == pytest.approx(1.1 / (20 / r.fx), rel=1e-4)  # moved 0.5 m towards the left wall


def _ramp_sim(c: float, refractory_us: int) -> EventSimulator:
    cfg = EventSimConfig(contrast_on=c, contrast_off=c, contrast_sigma=0.0, refractory_us=refractory_us, noise=False)
    return EventSimulator(1, 1, cfg, ba_rate_hz=0.0, ba_on_fraction=0.5, sensor_seed=0, noise_seed=0)


@settings(max_examples=60, deadline=None)
@given(start=st.floats(-3, 3), deltas=st.lists(st.floats(-2, 2), min_size=1, max_size=8),
       c=st.floats(0.1, 0.5))
def test_esim_counts_every_threshold_crossing(start, deltas, c):
    """Without refractory period, net ON - OFF events times C tracks the log-intensity change within one C."""
    sim = _ramp_sim(c, 0)
    sim.reset(np.array([[start]], np.float32), 0)
    level, t_prev, on, off = start, 0, 0, 0
    for k, d in enumerate(deltas, 1):
        level += d
        ev = sim.step(np.array([[level]], np.float32), k * 1_000_000)
        assert np.all((ev.t_ns > t_prev) & (ev.t_ns <= k * 1_000_000)) and np.all(np.diff(ev.t_ns) >= 0)
        t_prev = k * 1_000_000
        on += int(ev.p.sum())
        off += int((ev.p == 0).sum())
        assert abs((on - off) * c - (level - start)) < c + 1e-4


def test_esim_interpolates_times_and_applies_refractory():
    sim = _ramp_sim(0.25, 0)
    sim.reset(np.zeros((1, 1), np.float32), 0)
    ev = sim.step(np.ones((1, 1), np.float32), 1_000_000)  # 4 crossings over 1 ms
    assert ev.p.tolist() == [1, 1, 1, 1]
    assert ev.t_ns.tolist() == [250_000, 500_000, 750_000, 1_000_000]
    sim = _ramp_sim(0.25, 400)
    sim.reset(np.zeros((1, 1), np.float32), 0)
    ev = sim.step(np.ones((1, 1), np.float32), 1_000_000)
    assert ev.t_ns.tolist() == [250_000, 750_000]  # 500 and 1000 us fall within 400 us of a previous event


def test_bad_configuration_is_refused():
    with pytest.raises(SynthError, match="preset"):
        preset_config("huge")
    sim = _ramp_sim(0.2, 0)
    with pytest.raises(SynthError, match="reset"):
        sim.step(np.zeros((1, 1), np.float32), 10)
    sim.reset(np.zeros((1, 1), np.float32), 1000)
    with pytest.raises(SynthError, match="not after"):
        sim.step(np.zeros((1, 1), np.float32), 1000)


def test_aliased_places_repeat_another_places_look_and_worlds_without_aliasing_are_unchanged():
    """alias_fraction: that many places take the look of another place (>= 3 places away); a world without it is
    the same world as before aliasing existed (same seed, same atlas)."""
    from hstnn_ros.datasets.synth.world import alias_sources

    plain_cfg = WorldConfig(path_length_m=20.0, num_places=20)
    alias_cfg = dataclasses.replace(plain_cfg, alias_fraction=0.3, alias_detail=0.0)
    src = alias_sources(alias_cfg, seed=4)
    aliased = np.flatnonzero(src != np.arange(20))
    assert len(aliased) == 6 and np.all(np.abs(src[aliased] - aliased) >= 3)
    assert np.all(src[src] == src), "an aliased place copies a place of its own look"
    assert np.array_equal(alias_sources(plain_cfg, 4), np.arange(20))
    plain, aliased_world = build_world(plain_cfg, 4), build_world(alias_cfg, 4)

    def wall(w, k: int) -> np.ndarray:  # the left wall texture of place k (the path starts after a 6 m margin)
        c0 = int((6.0 + k) * w.px_per_m) + 2
        return w.atlas[: w.rows["right"], c0:c0 + int(0.8 * w.px_per_m)].astype(np.float32)

    def look(w, k: int) -> np.ndarray:  # what a place-recognition baseline sees: a coarse colour thumbnail
        return cv2.resize(wall(w, k), (2, 3), interpolation=cv2.INTER_AREA).ravel()

    d_alias = [np.linalg.norm(look(aliased_world, a) - look(aliased_world, src[a])) for a in aliased]
    d_other = [np.linalg.norm(look(aliased_world, a) - look(aliased_world, k)) for a in aliased for k in range(20)
               if src[k] == k and k != src[a]]
    assert np.median(d_alias) < 0.5 * np.median(d_other), (d_alias, np.median(d_other))
    # places that are not aliased look exactly as they did without aliasing
    keep = [k for k in range(20) if src[k] == k]
    assert all(np.array_equal(wall(plain, k), wall(aliased_world, k)) for k in keep[:4])


def test_traversal_lighting_varies_between_traversals_only_when_asked(world):
    from hstnn_ros.datasets.synth.config import LIGHTING
    from hstnn_ros.datasets.synth.simulate import traversal_lighting

    gains = [traversal_lighting(LIGHTING[Environment.ENV2], [1, 2, k])[0].gain for k in range(40)]
    assert np.std(np.log(gains)) == pytest.approx(LIGHTING[Environment.ENV2].traversal_gain_sd, rel=0.35)
    assert traversal_lighting(LIGHTING[Environment.ENV2], [1, 2, 3])[0] == \
        traversal_lighting(LIGHTING[Environment.ENV2], [1, 2, 3])[0]  # deterministic per traversal
    cfg = dataclasses.replace(SMALL, camera=dataclasses.replace(SMALL.camera, rgb_width=64, rgb_height=48))
    still = make_trajectory(MotionConfig(speed_mps=0.0, lateral_jitter_m=0.0, yaw_jitter_deg=0.0), world.length_m,
                            0.01, [0], duration_s=1.0)

    def mean_rgb(c: RouteConfig, traversal: int) -> np.ndarray:
        sim = TraversalSimulator(world, c, Environment.ENV1, traversal, seed=1, trajectory=still)
        return sim._rgbd(0.0).rgb.reshape(-1, 3).mean(0)

    assert np.array_equal(mean_rgb(cfg, 0), mean_rgb(cfg, 1))  # off: identical light for every traversal
    varied = dataclasses.replace(cfg, traversal_lighting=True)
    m = np.stack([mean_rgb(varied, k) for k in range(6)])
    assert np.ptp(m.mean(1)) > 5 and np.ptp(m[:, 0] / m[:, 2]) > 0.02  # brightness and colour differ
