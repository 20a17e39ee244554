"""The benchmarks still run. They are run by hand (`make bench`) and assert nothing, so a refactor that breaks one
goes unnoticed: two calls in `bench_dataset` had broken that way (a metadata key that had moved into the window, and
front-ends built without their builders). Each runs here in quick mode on the shortest routes; their numbers are
not looked at (CI's machine is busy). `bench_ros` is left out: it is the node on a live graph, which the ROS tests
exercise, and it needs a ROS domain of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOT_HERE = {"ros"}
BENCHES = sorted(p.stem.removeprefix("bench_") for p in (REPO / "bench").glob("bench_*.py"))


def test_the_left_out_benchmark_still_exists() -> None:
    """``NOT_HERE`` names real benchmarks, so leaving one out stays a visible choice."""
    assert set(BENCHES) - NOT_HERE and set(BENCHES) >= NOT_HERE


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(BENCHES) - NOT_HERE))
def test_benchmark_runs(name: str, tmp_path: Path) -> None:
    env = {**os.environ, "HSTNN_BENCH_QUICK": "1", "HSTNN_BENCH_RESULTS": str(tmp_path),
           "HSTNN_BENCH_DATASET_SECONDS": "4,8", "HSTNN_BENCH_MEMORY_SECONDS": "3,6"}
    r = subprocess.run([sys.executable, "-m", "bench", name], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=900, check=False)
    assert r.returncode == 0, f"bench_{name} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    assert (tmp_path / "latest.json").is_file()
