"""The deployment contract: a bundle names and pins its front-ends, and loading refuses others, naming the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hstnn_ros.datasets.frontend_training import PretrainConfig, save_frontend_bundle
from hstnn_ros.model import HSTNN, HSTNNConfig, LayerSpec, bundle_digest, load_bundle, save_bundle
from hstnn_ros.perception.frontends import RGBCNN, SCNN, FrontendConfig
from hstnn_ros.perception.window import WindowSpec
from hstnn_ros.runtime.deployment import DeployMeta, frontend_reference
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.loading import load_pipeline
from hstnn_ros.runtime.replay import GroundTruth, label_range_warning, replay_ground_truth
from hstnn_ros.runtime.report import DecisionRecord
from hstnn_ros.runtime.session import open_session

FE = {"widths": (4, 4, 4, 4), "pooled_hw": (1, 1), "hidden": 8, "features": 8, "input_hw": (16, 16)}


def _frontends(path: Path, seed: int = 0, *, rgb: bool = True) -> Path:
    import torch

    torch.manual_seed(seed)
    scnn = SCNN(FrontendConfig(in_channels=2, **FE)).eval()
    cnn = RGBCNN(FrontendConfig(in_channels=3, **FE)).eval() if rgb else None
    return save_frontend_bundle(path, scnn, cnn, WindowSpec(input_hw=(16, 16), bin_ns=5_000_000), num_places=4,
                                dataset_fingerprint="x", pretrain=PretrainConfig(), metrics={})


def _hstnn(path: Path, meta: dict, input_size: int = 16) -> Path:
    model = HSTNN(HSTNNConfig(input_size=input_size, hidden=(LayerSpec(6, 6),), num_classes=4, input_spiking=8))
    return save_bundle(path, {"hstnn": model}, meta)


def test_bundle_names_and_pins_its_frontends(tmp_path: Path) -> None:
    fe = _frontends(tmp_path / "set" / "frontends")
    meta = DeployMeta(place_count=4, **frontend_reference(tmp_path / "set" / "env1", fe, bundle_digest(fe)),
                      environment="env1").to_metadata()
    assert meta["frontend_bundle"] == "../frontends"
    _hstnn(tmp_path / "set" / "env1", meta)
    pipe = load_pipeline(tmp_path / "set" / "env1")
    assert pipe.window.bin_ns == 5_000_000 and not pipe.events_only  # framing comes from the front-end bundle
    moved = Path(shutil.copytree(tmp_path / "set", tmp_path / "moved"))  # the set moves as a whole
    assert load_pipeline(moved / "env1").num_classes == 4
    _frontends(tmp_path / "set" / "frontends", seed=1)  # other front-ends where the model's were
    with pytest.raises(RuntimeEngineError, match=r"trained on front-ends .*--frontends"):
        load_pipeline(tmp_path / "set" / "env1")
    with pytest.raises(RuntimeEngineError, match="trained on front-ends"):
        load_pipeline(tmp_path / "set" / "env1", frontends=moved / "frontends" / ".." / ".." / "set" / "frontends")
    assert load_pipeline(tmp_path / "set" / "env1", frontends=moved / "frontends").num_classes == 4


def test_bundle_without_frontends_gets_them_from_an_option(tmp_path: Path) -> None:
    fe = _frontends(tmp_path / "fe")
    _hstnn(tmp_path / "trained", {"place_count": 4})
    with pytest.raises(RuntimeEngineError, match=r"no 'scnn' event front-end.*--frontends"):
        load_pipeline(tmp_path / "trained")
    session = open_session(tmp_path / "trained", frontends=fe)
    assert session.pipeline.num_classes == 4
    shutil.rmtree(fe)
    _hstnn(tmp_path / "named", {"frontend_bundle": "../fe"})
    with pytest.raises(RuntimeEngineError, match=r"front-end bundle .*fe is missing"):
        load_pipeline(tmp_path / "named")


def test_embedded_and_events_only_bundles(tmp_path: Path) -> None:
    fe = load_bundle(_frontends(tmp_path / "fe", rgb=False))
    meta = {**DeployMeta(place_count=4, events_only=True).to_metadata(), "window": fe.metadata["window"]}
    model = HSTNN(HSTNNConfig(input_size=8, hidden=(LayerSpec(6, 6),), num_classes=4, input_spiking=8))
    save_bundle(tmp_path / "all", {"hstnn": model, **fe.components}, meta)
    pipe = load_pipeline(tmp_path / "all")
    assert pipe.events_only and pipe.rgb_feature_size == 0 and pipe.window.bin_ns == 5_000_000


def test_contract_round_trip_and_refusals() -> None:
    m = DeployMeta(place_count=3, frontend_bundle="../frontends", frontend_sha256="ab", place_names=("a", "b", "c"),
                   spike_rates=(0.1,), val={"top1": 0.9})
    back = DeployMeta.from_metadata(json.loads(json.dumps({**m.to_metadata(), "kept": [1, 2]})))
    assert back == m
    with pytest.raises(RuntimeEngineError, match="relative"):
        DeployMeta(place_count=3, frontend_bundle="/abs/frontends")
    with pytest.raises(RuntimeEngineError, match="place names"):
        DeployMeta(place_count=3, place_names=("a",))
    with pytest.raises(RuntimeEngineError, match="deployment contract"):
        DeployMeta.from_metadata({"place_count": 3, "bogus_type": 1, "events_only": False, "snn_ratio": None,
                                  "val": None, "place_names": 5})


def _record(place: int, true: int, env: str = "") -> DecisionRecord:
    return DecisionRecord(0, place, 1.0, true, env, *([0.0] * 9), "")


def test_replay_warns_when_labels_reach_beyond_the_model() -> None:
    assert label_range_warning([_record(1, 7)], 8) is None
    msg = label_range_warning([_record(1, 3), _record(1, 19), _record(1, -1)], 8)
    assert msg and "knows 8 places (0-7)" in msg and "3-19" in msg and "1 of 2" in msg


def test_replay_environment_comes_from_the_user_or_the_sidecar(tmp_path: Path) -> None:
    assert replay_ground_truth(tmp_path) is None
    truth = replay_ground_truth(tmp_path, label_topic="/place_label", environment="env2")
    assert isinstance(truth, GroundTruth) and truth.environment_at(10**18) == "env2" and not truth.stamps_ns
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "route.json").write_text(json.dumps({"format": "hstnn_ros.synth_route", "env": "env3", "num_places": 2,
                                                "place_enter_ns": [100, 200], "t_start_ns": 50}))
    sidecar = replay_ground_truth(bag)
    assert sidecar.place_at(150) == 0 and sidecar.environment_at(60) == "env3"
    topic = replay_ground_truth(bag, label_topic="/place_label")  # labels come from the topic, not the route
    assert not topic.stamps_ns and topic.environment_at(60) == "env3"
    np.testing.assert_equal(replay_ground_truth(bag, environment="env1").environment_at(60), "env1")
