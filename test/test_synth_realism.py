"""Realism of synthetic event streams: statistics printed beside those of the real bags in ../shared/data, and
checked to fall in the same range (per-pixel rate of the real DAVIS346 bag, ON ratios of real sensors)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hstnn_ros.datasets.synth import format_stats_table, generate_route_set, preset_config
from hstnn_ros.datasets.synth.realism import real_bag_stats, synthetic_env_stats
from hstnn_ros.enums import Environment


@pytest.fixture(scope="module")
def real_stats(shared_data):
    bags = sorted(p for p in (shared_data / "bags").iterdir() if p.is_dir())
    assert len(bags) >= 5
    return {b.name: real_bag_stats(b) for b in bags}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    cfg = preset_config("default")  # the shipped models' route: 1 m/s, 346x260
    cfg = dataclasses.replace(cfg, world=dataclasses.replace(cfg.world, path_length_m=1.2, num_places=2),
                              camera=dataclasses.replace(cfg.camera, rgb_width=64, rgb_height=48))
    out = tmp_path_factory.mktemp("synth_realism")
    index = generate_route_set(out, cfg, traversals=1, seed=0, progress=False)
    return out, index


def test_synthetic_event_statistics_are_in_the_range_of_real_recordings(real_stats, synthetic):
    _, index = synthetic
    synth = synthetic_env_stats(index)
    print("\n" + format_stats_table([*real_stats.values(), *synth]))
    davis = real_stats["libcaer_cmp_davis346_mcap"]
    by_env = {s.name.split()[1]: s for s in synth}
    # ego-motion through a textured corridor at 1 m/s: same order of magnitude as the real DAVIS346 recording
    assert 0.2 * davis.events_per_px_s < by_env["env1"].events_per_px_s < 5 * davis.events_per_px_s
    real_on = [r.on_ratio for r in real_stats.values()]
    for s in synth:
        assert min(real_on) - 0.08 < s.on_ratio < max(real_on) + 0.08, s


def test_reading_a_synthetic_bag_like_a_real_one_gives_the_generators_numbers(synthetic):
    out, _ = synthetic
    got = real_bag_stats(out / "env2_t0")
    meta = json.loads((out / "env2_t0" / "route.json").read_text())["event_stats"]
    assert got.events == meta["events"] and got.on_ratio == pytest.approx(meta["on_ratio"])
    assert (got.width, got.height) == (346, 260)
    assert Environment.ENV2.value in meta["name"]
