"""hstnn-replay command line: clear refusals with exit code 2 (the happy path needs a shipped bundle)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hstnn_ros.data_tools import replay


def test_missing_bag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert replay.main([str(tmp_path / "nope"), "--no-progress"]) == 2
    assert "no such bag directory" in capsys.readouterr().err


def test_model_that_is_not_a_bundle(shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bag = shared_data / "bags" / "libcaer_cmp_davis346_mcap"
    assert replay.main([str(bag), "--model", str(tmp_path), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "not a model bundle" in capsys.readouterr().err


def test_unknown_preset(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert replay.main([str(shared_data / "bags" / "evt3_640x480"), "--preset", "night", "--no-progress"]) == 2
    assert "env1, env2, env3" in capsys.readouterr().err
