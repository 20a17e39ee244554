"""Replay of a synthetic route bag (events + RGB + depth + route.json ground truth) through the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_engine import make_pipeline

from hstnn_ros.runtime.bag_source import check_model_fits, open_bag
from hstnn_ros.runtime.engine import PlaceRecognitionEngine
from hstnn_ros.runtime.replay import ItemKind, ground_truth_from_route, replay_engine_config, run_replay
from hstnn_ros.runtime.report import summarise

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def demo_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hstnn_ros.data_tools import synth_route
    out = tmp_path_factory.mktemp("route")
    assert synth_route.main(["--out", str(out), "--preset", "demo", "--envs", "env3", "--traversals", "1",
                             "--quiet"]) == 0
    return out / "env3_t0"


@pytest.mark.slow
def test_synthetic_bag_replays_with_depth_and_ground_truth(demo_bag: Path) -> None:
    src = open_bag(demo_bag)
    t = src.topics
    assert (t.events, t.image, t.depth) == ("/dvs/events", "/camera/color/image_raw",
                                            "/camera/aligned_depth_to_color/image_raw")
    check_model_fits(src, make_pipeline())
    items = list(src.items())
    stamps = [i.stamp_ns for i in items]
    images = [i for i in items if i.kind is ItemKind.IMAGE]
    assert all(i.payload[1] is not None and i.payload[1].dtype == np.float32 for i in images), "depth not paired"
    assert all(i.payload[0].shape == (120, 160, 3) for i in images)
    assert np.all(np.diff([i.stamp_ns for i in images]) > 0)
    assert max(stamps) - min(stamps) > 2e9

    engine = PlaceRecognitionEngine(make_pipeline(rgb_channels=4), replay_engine_config())
    truth = ground_truth_from_route(demo_bag)
    out = run_replay(items, engine, truth, progress=False)
    c = out.counters
    assert c.malformed == 0 and c.frames_dropped_late == 0 and c.frames_dropped_overflow == 0
    assert len(out.results) == len(images) - 2  # one decision per RGB frame once 3 frames are in
    assert c.events_in == (engine.buffered_events + c.events_expired + c.events_dropped_overflow
                           + c.events_dropped_late + c.events_dropped_resolution)
    labels = [r.true_place for r in out.records]
    assert min(labels) >= 0 and labels == sorted(labels)  # one traversal walks the places in order
    assert labels[-1] - labels[0] >= 4
    s = summarise(out.records)
    assert s["env3"]["decisions"] == len(out.results) and "accuracy" in s["env3"]
    assert out.realtime_factor > 0
