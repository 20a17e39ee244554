"""Environment presets: names, bundle resolution and how well ``auto`` chooses from measured scene statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hstnn_ros.enums import Environment
from hstnn_ros.runtime.enums import Preset
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.presets import (
    DEFAULT_REFERENCES,
    SceneStats,
    choose_environment,
    load_references,
    parse_preset,
    resolve_bundle,
)


def test_parse_names_and_refuse_unknown() -> None:
    assert parse_preset(" ENV2 ") is Preset.ENV2 and Preset.ENV2.environment is Environment.ENV2
    assert parse_preset("auto") is Preset.AUTO and parse_preset("events_only") is Preset.EVENTS_ONLY
    with pytest.raises(RuntimeEngineError, match="env1, env2, env3, default, auto, events_only"):
        parse_preset("night")


@given(st.sampled_from([Environment.ENV1, Environment.ENV2, Environment.ENV3]))
def test_auto_returns_the_environment_at_its_reference(env: Environment) -> None:
    assert choose_environment(DEFAULT_REFERENCES[env]) is env


def test_auto_accuracy_under_measurement_noise() -> None:
    """Scenes drawn around each reference with 30 % log-normal noise in brightness and event rate: auto must pick
    the right environment for most of them (measured rate printed for the model card)."""
    rng = np.random.default_rng(0)
    correct = total = 0
    for env, ref in DEFAULT_REFERENCES.items():
        for _ in range(200):
            noise = np.exp(rng.normal(0, 0.3, 2))
            s = SceneStats(ref.brightness * noise[0], ref.event_rate_hz_px * noise[1])
            correct += choose_environment(s) is env
            total += 1
    acc = correct / total
    print(f"auto preset accuracy under 30% noise: {acc:.3f}")
    assert acc > 0.85
    # without RGB the event rate alone still separates the dim scene from the busy outdoor one
    assert choose_environment(SceneStats(math.nan, 0.08)) is Environment.ENV3
    assert choose_environment(SceneStats(math.nan, 3.0)) is Environment.ENV2


def _fake_bundle(root: Path, name: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "bundle.json").write_text("{}")


def test_resolve_bundle_falls_back_to_default_and_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(RuntimeEngineError, match="make models"):
        resolve_bundle("env1", tmp_path)
    _fake_bundle(tmp_path, "default")
    assert resolve_bundle("env1", tmp_path) == tmp_path / "default"
    assert resolve_bundle("auto", tmp_path) == tmp_path / "default"
    _fake_bundle(tmp_path, "env1")
    assert resolve_bundle(Preset.ENV1, tmp_path) == tmp_path / "env1"


def test_references_from_presets_file(tmp_path: Path) -> None:
    assert load_references(tmp_path) == DEFAULT_REFERENCES
    (tmp_path / "presets.json").write_text(json.dumps(
        {"references": {"env1": {"brightness": 0.5, "event_rate_hz_px": 1.0},
                        "env3": {"brightness": 0.1, "event_rate_hz_px": 0.2}}}))
    refs = load_references(tmp_path)
    assert set(refs) == {Environment.ENV1, Environment.ENV3}
    assert choose_environment(SceneStats(0.12, 0.25), refs) is Environment.ENV3
    (tmp_path / "presets.json").write_text('{"references": {"env9": {}}}')
    with pytest.raises(RuntimeEngineError, match=r"presets\.json"):
        load_references(tmp_path)


def test_scene_meter_measures_rate_and_brightness() -> None:
    from test_engine import Batch

    from hstnn_ros.runtime.presets import SceneMeter

    m = SceneMeter(seconds=1.0)
    rng = np.random.default_rng(0)
    for k in range(10):  # 10 x 0.1 s, 640 events each on a 64x48 sensor: 6400 ev/s / 3072 px
        t = np.sort(rng.integers(k * 10**8, (k + 1) * 10**8, 640)).astype(np.int64)
        t[0], t[-1] = k * 10**8, (k + 1) * 10**8
        z = np.zeros(640, np.uint16)
        assert not m.ready
        m.add_events(Batch(t, z, z, z.astype(np.uint8)))
        m.add_image((k + 1) * 10**8, np.full((4, 4, 3), 51, np.uint8))
    assert m.ready
    s = m.stats()
    assert s.brightness == pytest.approx(0.2)
    assert s.event_rate_hz_px == pytest.approx(6400 / 3072)
