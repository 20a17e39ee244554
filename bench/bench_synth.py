"""Synthetic route generation speed: simulated seconds per wall second and events generated per wall second,
for the simulation alone (render + event simulator + RGB-D) and, when the bag layer is available, for writing a bag.

Quick mode (``HSTNN_BENCH_QUICK=1``): a 3 m stretch of the demo preset; full mode: 12 m of the default preset
and one demo traversal written as MCAP.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

from hstnn_ros.datasets.synth import build_world, preset_config, write_traversal
from hstnn_ros.datasets.synth.simulate import EventsRecord, TraversalSimulator
from hstnn_ros.enums import Environment


def _simulate(preset: str, length_m: float, env: Environment) -> dict[str, float]:
    cfg = preset_config(preset)
    cfg = dataclasses.replace(cfg, world=dataclasses.replace(cfg.world, path_length_m=length_m,
                                                             num_places=max(1, int(length_m))))
    world = build_world(cfg.world, 0)
    sim = TraversalSimulator(world, cfg, env, 0, seed=0)
    t0 = time.perf_counter()
    n_ev = 0
    for rec in sim.records():
        if isinstance(rec, EventsRecord):
            n_ev += len(rec.events)
    wall = time.perf_counter() - t0
    return {"sim_s": sim.duration_s, "wall_s": wall, "sim_s_per_wall_s": sim.duration_s / wall,
            "events": n_ev, "events_per_wall_s": n_ev / wall, "events_per_sim_s": n_ev / sim.duration_s,
            "render_steps_per_wall_s": sim.n_steps / wall}


def _write_bag(length_m: float) -> dict[str, float] | str:
    cfg = preset_config("demo")
    cfg = dataclasses.replace(cfg, world=dataclasses.replace(cfg.world, path_length_m=length_m))
    try:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            res = write_traversal(Path(d) / "bag", cfg, Environment.ENV1, 0, seed=0)
            wall = time.perf_counter() - t0
            size = sum(p.stat().st_size for p in (Path(d) / "bag").rglob("*") if p.is_file())
    except Exception as e:  # the bag layer may not be available in this checkout: report, do not fail the run
        return f"bag writing unavailable: {e}"
    return {"sim_s": res.meta["duration_s"], "wall_s": wall, "sim_s_per_wall_s": res.meta["duration_s"] / wall,
            "bag_mb_per_sim_s": size / 1e6 / res.meta["duration_s"]}


def main() -> dict:
    quick = os.environ.get("HSTNN_BENCH_QUICK") == "1"
    out: dict = {"quick": quick}
    if quick:
        cases = [("demo", 3.0, Environment.ENV1), ("demo", 3.0, Environment.ENV3)]
    else:
        cases = [("demo", 12.0, e) for e in Environment] + [("default", 12.0, Environment.ENV2)]
    for preset, length, env in cases:
        r = _simulate(preset, length, env)
        key = f"simulate_{preset}_{env.value}"
        out[key] = r
        print(f"{key:28s} {r['sim_s']:6.2f} sim s in {r['wall_s']:6.2f} wall s -> {r['sim_s_per_wall_s']:.3f} "
              f"sim s / wall s, {r['events_per_wall_s'] / 1e6:.2f} Mev / wall s, "
              f"{r['events_per_sim_s'] / 1e6:.2f} Mev / sim s, {r['render_steps_per_wall_s']:.0f} render steps / s")
    w = _write_bag(3.0 if quick else 12.0)
    out["write_bag_demo_env1"] = w
    if isinstance(w, dict):
        print(f"{'write_bag_demo_env1':28s} {w['sim_s_per_wall_s']:.3f} sim s / wall s, "
              f"{w['bag_mb_per_sim_s']:.1f} MB per sim s")
    else:
        print(w)
    return out


if __name__ == "__main__":
    main()
