"""Replay loop and reports: time-ordered inputs through the engine, ground truth matched per decision, files written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_engine import PERIOD, make_pipeline, random_events, random_image

from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.replay import GroundTruth, ItemKind, ReplayItem, run_replay
from hstnn_ros.runtime.report import plot_predictions, summarise, write_records

torch.set_num_threads(1)


def _items(n_frames: int, env_switch: int) -> tuple[list[ReplayItem], list[ReplayItem]]:
    rng = np.random.default_rng(4)
    sensors, labels = [], []
    for k in range(1, n_frames + 1):
        env = "env1" if k < env_switch else "env3"
        stamp = k * PERIOD
        sensors.append(ReplayItem(ItemKind.EVENTS, stamp - PERIOD // 2, random_events(rng, stamp - PERIOD, stamp, 800),
                                  env))
        sensors.append(ReplayItem(ItemKind.IMAGE, stamp, (random_image(rng), None), env))
        labels.append(ReplayItem(ItemKind.LABEL, stamp - 1, k // 4, env))
    return sensors, labels


def test_replay_matches_direct_engine_and_ground_truth(tmp_path: Path) -> None:
    sensors, labels = _items(16, env_switch=9)
    items = sorted([*sensors, *labels], key=lambda i: i.stamp_ns)  # one time-ordered stream, as a bag gives
    assert [i.stamp_ns for i in items] == sorted(i.stamp_ns for i in items)
    items.insert(5, ReplayItem(ItemKind.MALFORMED, items[4].stamp_ns, "truncated CDR"))
    out = run_replay(items, PlaceRecognitionEngine(make_pipeline(), EngineConfig()), progress=False)
    # same inputs pushed directly give the same decisions
    direct = PlaceRecognitionEngine(make_pipeline(), EngineConfig())
    res = []
    for it in sensors:
        if it.kind is ItemKind.EVENTS:
            direct.push_events(it.payload)
        else:
            direct.push_frame(it.stamp_ns, *it.payload)
        res += direct.poll()
    res += direct.flush()
    assert [r.stamp_ns for r in out.results] == [r.stamp_ns for r in res]
    np.testing.assert_allclose(np.stack([r.logits for r in out.results]), np.stack([r.logits for r in res]),
                               rtol=1e-5, atol=1e-6)
    assert out.malformed == 1 and out.items == len(items)
    assert out.stream_s > 0 and out.realtime_factor > 0
    # decision k (stamp k*PERIOD) gets label k // 4 and its environment
    for rec in out.records:
        k = rec.stamp_ns // PERIOD
        assert rec.true_place == k // 4
        assert rec.environment == ("env1" if k < 9 else "env3")
    summary = summarise(out.records, tolerance=1)
    assert set(summary) == {"all", "env1", "env3"}
    assert summary["env1"]["decisions"] + summary["env3"]["decisions"] == summary["all"]["decisions"] == 14
    pred = np.array([r.place_id for r in out.records])
    true = np.array([r.true_place for r in out.records])
    assert summary["all"]["accuracy"] == np.mean(pred == true)
    assert summary["all"]["recall_at_1_tol1"] == np.mean(np.abs(pred - true) <= 1)
    csv_path, json_path = write_records(out.records, tmp_path, summary)
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 14 and int(rows[0]["place_id"]) == out.records[0].place_id
    assert json.loads(json_path.read_text())["summary"]["all"]["decisions"] == 14
    png = plot_predictions(out.records, tmp_path / "places.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ground_truth_lookup() -> None:
    gt = GroundTruth()
    assert gt.place_at(5) == -1 and gt.environment_at(5) == ""
    gt.add_label(10, 3)
    gt.add_label(20, 4)
    gt.add_environment(0, "env2")
    gt.add_environment(15, "env2")
    assert (gt.place_at(9), gt.place_at(10), gt.place_at(19), gt.place_at(99)) == (-1, 3, 3, 4)
    assert gt.envs == ["env2"]


def test_ground_truth_from_route_sidecar(tmp_path: Path) -> None:
    from hstnn_ros.runtime.errors import RuntimeEngineError
    from hstnn_ros.runtime.replay import ground_truth_from_route

    assert ground_truth_from_route(tmp_path) is None
    (tmp_path / "route.json").write_text(json.dumps(
        {"format": "hstnn_ros.synth_route", "env": "env2", "t_start_ns": 100, "place_enter_ns": [100, 250, None, 400]}))
    gt = ground_truth_from_route(tmp_path)
    assert gt is not None
    assert [gt.place_at(t) for t in (99, 100, 300, 399, 400, 10**12)] == [-1, 0, 1, 1, 3, 3]
    assert gt.environment_at(150) == "env2"
    (tmp_path / "route.json").write_text(json.dumps({"format": "hstnn_ros.synth_route", "env": "env2",
                                                      "place_enter_ns": "oops"}))
    with pytest.raises(RuntimeEngineError, match="route sidecar"):
        ground_truth_from_route(tmp_path)


def test_output_bag_has_the_node_topics(tmp_path: Path) -> None:
    from hstnn_ros.bags import BagReader
    from hstnn_ros.runtime.bag_source import output_bag_writer
    from hstnn_ros.runtime.messages import OPS_KEYS

    OUT_PLACE, OUT_OPS = "/place", "/ops"
    sensors, _ = _items(6, env_switch=99)
    pipe = make_pipeline()
    writer = output_bag_writer(tmp_path / "out")
    out = run_replay(sensors, PlaceRecognitionEngine(pipe, EngineConfig()), progress=False, on_results=writer.write)
    writer.close()
    with BagReader(tmp_path / "out") as reader:
        assert reader.message_counts[OUT_PLACE] == reader.message_counts[OUT_OPS] == len(out.results) == 4
        places = [reader.deserialize(m) for m in reader.messages([OUT_PLACE])]
        ops = [reader.deserialize(m) for m in reader.messages([OUT_OPS])]
    for msg, res, o in zip(places, out.results, ops, strict=True):
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == res.stamp_ns
        assert [h.class_id for h in msg.results] == [str(i) for i, _ in res.top_k]
        assert [h.score for h in msg.results] == pytest.approx([p for _, p in res.top_k])
        kv = {v.key: v.value for v in o.status[0].values}
        assert tuple(kv) == OPS_KEYS
        assert float(kv["total_macs"]) == pytest.approx(res.ops.total_macs)
        assert float(kv["rgb_frontend_acs"]) == res.ops.rgb_frontend_acs and int(kv["place_id"]) == res.place_id
    with pytest.raises(RuntimeEngineError, match="exists already"):
        output_bag_writer(tmp_path / "out")
