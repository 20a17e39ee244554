"""The real event-only bags in ../shared/data/bags: topics found, RGB models refused with the fix named, and an
events-only model replays them (decisions emitted, every event accounted for)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_engine import make_pipeline

from hstnn_ros.perception.enums import DropPolicy
from hstnn_ros.runtime.bag_source import check_model_fits, open_bag
from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine
from hstnn_ros.runtime.enums import InputMode
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.replay import run_replay

torch.set_num_threads(1)

BAGS = ["evt3_640x480", "libcaer_cmp_davis346_mcap", "event_array_legacy_640x480", "libcaer_640x480_rollover",
        "evt3_1280x720_trigger"]


@pytest.mark.parametrize("name", BAGS)
def test_real_bag_topics_and_rgb_model_refused(shared_data: Path, name: str) -> None:
    src = open_bag(shared_data / "bags" / name)
    assert src.topics.events is not None and src.topics.image is None
    with pytest.raises(RuntimeEngineError, match="events-only model"):
        check_model_fits(src, make_pipeline())
    check_model_fits(src, make_pipeline(events_only=True))


@pytest.mark.parametrize("name", BAGS[:3])
def test_real_bag_replays_events_only(shared_data: Path, name: str) -> None:
    src = open_bag(shared_data / "bags" / name)
    engine = PlaceRecognitionEngine(make_pipeline(events_only=True), EngineConfig(
        frame_period_ns=100_000_000, drop_policy=DropPolicy.DROP_NEWEST, max_pending_frames=64))
    assert engine.mode is InputMode.EVENTS_ONLY
    out = run_replay(src.items(), engine, progress=False)
    c = out.counters
    assert c.events_in > 0 and c.malformed == 0
    assert len(out.results) >= 1, f"{name}: {out.stream_s:.2f} s of events gave no decision"
    assert c.events_in == (engine.buffered_events + c.events_expired + c.events_dropped_overflow
                           + c.events_dropped_late + c.events_dropped_resolution)
