"""Online replay equals offline evaluation: the engine's decisions on a bag are the shipped model's outputs on the
windows that the dataset builder and feature cache make from the same bag (issue 6 evidence)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hstnn_ros import defaults
from hstnn_ros.datasets.frontend_training import cache_features
from hstnn_ros.datasets.sidecar import route_bags
from hstnn_ros.datasets.synth.config import preset_config
from hstnn_ros.datasets.synth.route import generate_route_set
from hstnn_ros.datasets.windows import build_dataset
from hstnn_ros.enums import Environment
from hstnn_ros.model import load_bundle
from hstnn_ros.perception.enums import DropPolicy
from hstnn_ros.runtime.bag_source import open_bag
from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine
from hstnn_ros.runtime.loading import load_pipeline
from hstnn_ros.runtime.replay import run_replay

MODEL = defaults.shipped_models_dir() / "default"


@pytest.mark.slow
def test_replay_decisions_equal_offline_windows(tmp_path):
    if not (MODEL / "bundle.json").is_file():
        pytest.skip("no shipped default bundle")
    cfg = preset_config("demo")
    cfg = dataclasses.replace(cfg, world=dataclasses.replace(cfg.world, path_length_m=2.0))
    generate_route_set(tmp_path / "route", cfg, envs=(Environment.ENV2,), traversals=3, seed=0, progress=False)
    bags = route_bags(tmp_path / "route")

    pipeline = load_pipeline(MODEL)
    ds = build_dataset(bags, tmp_path / "ds", window=pipeline.window, progress=False)
    fe = load_bundle(MODEL / load_bundle(MODEL).metadata["frontend_bundle"])
    fs = cache_features(ds, fe.build("scnn"), fe.build("cnn"), progress=False)
    hstnn = load_bundle(MODEL).hstnn("hstnn").float()
    trav = ds.traversals[0]
    offline = fs.subset(fs.group == 0)
    with torch.no_grad():
        off_logits = hstnn(torch.from_numpy(offline.features)).numpy()
    off_stamp = trav.stamps_ns[2:]

    engine = PlaceRecognitionEngine(pipeline, EngineConfig(drop_policy=DropPolicy.DROP_NEWEST,
                                                           max_pending_frames=512, reorder_delay_ns=100_000_000))
    src = open_bag(bags[0][0])
    out = run_replay(src.items(), engine, progress=False)
    on = {r.stamp_ns: r for r in out.results}
    assert len(on) >= len(off_stamp) - 2, "the engine decides on (almost) every RGB frame with a full window"
    matched = [(i, on[s]) for i, s in enumerate(off_stamp) if s in on]
    assert len(matched) >= len(off_stamp) - 2
    for i, r in matched:
        np.testing.assert_allclose(r.logits, off_logits[i], rtol=1e-4, atol=1e-4)
        assert r.place_id == int(off_logits[i].argmax())
    # the accuracy the replay reports is the offline accuracy on the same windows
    labels = {int(s): int(lab) for s, lab in zip(off_stamp, offline.labels, strict=True)}
    on_acc = np.mean([on[s].place_id == labels[s] for s in labels if s in on])
    off_acc = np.mean([off_logits[i].argmax() == offline.labels[i] for i, _ in matched])
    assert on_acc == pytest.approx(off_acc)
