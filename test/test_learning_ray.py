"""Sweeps on Ray (an optional extra): two local workers write the same report as the sequential sweep for the same
seeds, and a Ray sweep killed mid-run resumes, reusing the units it had finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_learning_sweep import _cfg, digits_features

from hstnn_ros.datasets.features import save_feature_set
from hstnn_ros.learning import config_from_dict, run_sweep
from hstnn_ros.learning.distributed import run_sweep_ray

pytest.importorskip("ray")
pytestmark = pytest.mark.slow

TIMING = {"seconds", "selection_seconds"}


def _strip(report: dict) -> dict:
    """The report without wall-clock fields (which differ between any two runs)."""
    def clean(x: object) -> object:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if k not in TIMING and not k.endswith("_seconds")}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x
    return clean(report)  # type: ignore[return-value]


def _small_cfg() -> dict:
    raw = _cfg([0.5, 1.0], [0, 1], epochs=6)
    raw["selection"] |= {"max_batches": 4}
    return raw


def test_two_local_workers_write_the_sequential_report(tmp_path: Path) -> None:
    feats = save_feature_set(tmp_path / "digits.safetensors", digits_features())
    cfg = config_from_dict(_small_cfg())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the Ray units run with one torch thread each: same kernels, same rounding
    try:
        seq = run_sweep(cfg, digits_features(), tmp_path / "seq", name=str(feats.resolve()), plots=False)
    finally:
        torch.set_num_threads(threads)
    par = run_sweep_ray(cfg, feats, tmp_path / "ray", workers=2, plots=False)
    assert _strip(par) == _strip(seq)
    assert not par["failures"] and len(par["units"]) == 2 * (1 + 2 + 2)


def test_interrupted_ray_sweep_resumes_reusing_finished_units(tmp_path: Path) -> None:
    import yaml

    feats = save_feature_set(tmp_path / "digits.safetensors", digits_features())
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(_small_cfg()))
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "hstnn_ros.data_tools.train", "--config", str(cfg_path), "--features", str(feats),
            "--out", str(out), "--ray", "--no-plots"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and not list((out / "units").glob("*/result.json")):
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its Ray workers, mid-sweep
        proc.wait()
    first = {p.parent.name: p.stat().st_mtime_ns for p in (out / "units").glob("*/result.json")}
    assert first, "no unit finished before the interruption"
    assert not (out / "report.json").exists()
    assert subprocess.run(argv, capture_output=True, check=False).returncode == 0
    report = json.loads((out / "report.json").read_text())
    assert len(report["units"]) == 10 and not report["failures"]
    for name, mtime in first.items():  # finished units were reused, not recomputed
        assert (out / "units" / name / "result.json").stat().st_mtime_ns == mtime
