"""Bundle loading for the engine: what is refused, and with which fix named."""

from __future__ import annotations

from pathlib import Path

import pytest

from hstnn_ros.model import HSTNN, HSTNNConfig, LayerSpec, save_bundle
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.loading import load_pipeline
from hstnn_ros.runtime.presets import resolve_bundle


def _hstnn() -> HSTNN:
    return HSTNN(HSTNNConfig(input_size=24, hidden=(LayerSpec(4, 4),), num_classes=5, input_spiking=16))


def test_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(RuntimeEngineError, match="not a model bundle"):
        load_pipeline(tmp_path)


def test_bundle_without_hstnn(tmp_path: Path) -> None:
    save_bundle(tmp_path / "b", {"other": _hstnn()}, {})
    with pytest.raises(RuntimeEngineError, match="no 'hstnn' component"):
        load_pipeline(tmp_path / "b")


def test_hstnn_without_frontends_names_the_frontend_bundle(tmp_path: Path) -> None:
    save_bundle(tmp_path / "env1", {"hstnn": _hstnn()}, {"frontend_bundle": "../frontends"})
    with pytest.raises(RuntimeEngineError, match=r"front-end bundle .* is missing"):
        load_pipeline(tmp_path / "env1")  # ../frontends is missing
    save_bundle(tmp_path / "frontends", {"hstnn": _hstnn()}, {})  # a bundle, but without an SCNN
    with pytest.raises(RuntimeEngineError, match="no 'scnn' event front-end"):
        load_pipeline(tmp_path / "env1")
    assert resolve_bundle("env1", tmp_path) == tmp_path / "env1"
