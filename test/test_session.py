"""Sessions (preset or bundle -> pipeline -> engine, the one assembly the node, replay and demo share) and the
shipped bundles found in every kind of install."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from hstnn_ros import defaults
from hstnn_ros.enums import Environment
from hstnn_ros.runtime.engine import EngineConfig
from hstnn_ros.runtime.enums import InputMode, Preset
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.presets import load_references
from hstnn_ros.runtime.session import open_session

REPO = Path(__file__).resolve().parents[1]
SHIPPED = defaults.shipped_models_dir()
needs_models = pytest.mark.skipif(not (SHIPPED / "default" / "bundle.json").is_file(), reason="no shipped models")


@needs_models
def test_presets_open_their_shipped_bundles() -> None:
    s = open_session(preset="env3", config=EngineConfig(top_k=2))
    assert s.bundle == SHIPPED / "env3" and s.environment is Environment.ENV3 and s.engine.config.top_k == 2
    e = open_session(preset="events_only")
    assert e.bundle == SHIPPED / "events_only" and e.engine.mode is InputMode.EVENTS_ONLY
    m = open_session(SHIPPED / "env1", preset="env3")  # an explicit bundle wins over the preset
    assert m.bundle == SHIPPED / "env1" and m.preset is None


@needs_models
def test_auto_chooses_from_the_scene_or_switches_later_keeping_queued_input() -> None:
    refs = load_references()  # the shipped models' own references (models/presets.json)
    s = open_session(preset=Preset.AUTO, scene=refs[Environment.ENV3])
    assert s.environment is Environment.ENV3 and s.bundle == SHIPPED / "env3"
    late = open_session(preset="auto")
    assert late.awaiting_scene and late.bundle == SHIPPED / "default"
    import numpy as np

    late.engine.push_frame(10**9, np.zeros((48, 64, 3), np.uint8))
    env = late.adopt_scene(refs[Environment.ENV1])
    assert env is Environment.ENV1 and late.bundle == SHIPPED / "env1" and not late.awaiting_scene
    assert late.engine.pending_frames == 1, "switching models must not drop queued input"


def test_unknown_preset_and_missing_bundle_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(RuntimeEngineError, match="events_only"):
        open_session(preset="night")
    with pytest.raises(RuntimeEngineError, match="not a model bundle"):
        open_session(tmp_path)
    with pytest.raises(RuntimeEngineError, match="hstnn-fit-route"):
        open_session(preset="env1", models_dir=tmp_path)


@pytest.mark.slow
@needs_models
def test_a_built_wheel_finds_the_shipped_models(tmp_path: Path, shared_data: Path) -> None:
    """``pip install`` of a built wheel (not editable) puts the bundles in ``<prefix>/share/hstnn_ros/models``; the
    presets must find them there and ``hstnn-replay`` must run from any directory."""
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(dist), str(REPO)], check=True, cwd=tmp_path)
    wheel = next(dist.glob("hstnn_ros-*.whl"))
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env)
    py = env / "bin" / "python"
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    # dependencies come from this test's environment (a path, not its .pth files: the editable install is not seen),
    # never from this checkout (a colcon build puts its own copy of the package under REPO/install)
    colcon = [(REPO / d).resolve() for d in ("install", "build")]
    deps = [p for p in sys.path
            if p.endswith("site-packages") and not any(Path(p).resolve().is_relative_to(c) for c in colcon)]
    # a sourced ROS/colcon environment would put those copies on PYTHONPATH and the ament index: clear both
    clean = {k: v for k, v in os.environ.items()
             if k not in ("PYTHONPATH", "AMENT_PREFIX_PATH", "COLCON_PREFIX_PATH", "CMAKE_PREFIX_PATH")}
    (site / "deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, cwd=tmp_path, env=clean)
    probe = ("import hstnn_ros, hstnn_ros.runtime.presets as p; print(hstnn_ros.__file__); "
             "print(p.resolve_bundle('env1')); print(p.resolve_bundle('events_only'))")
    out = subprocess.check_output([str(py), "-c", probe], text=True, cwd=tmp_path, env=clean).split()
    assert out[0].startswith(str(env)), f"the wheel's package must be the one imported, got {out[0]}"
    assert out[1] == str(env / "share" / "hstnn_ros" / "models" / "env1")
    assert out[2] == str(env / "share" / "hstnn_ros" / "models" / "events_only")
    res = subprocess.run([str(env / "bin" / "hstnn-replay"), str(shared_data / "bags" / "libcaer_cmp_davis346_mcap"),
                          "--preset", "events_only", "--out", str(tmp_path / "r"), "--no-progress"],
                         capture_output=True, text=True, cwd=tmp_path, check=False, env=clean)
    assert res.returncode == 0, res.stderr
    assert "decisions from" in res.stdout
