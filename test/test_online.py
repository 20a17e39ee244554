"""The live node's logic without rclpy (``OnlineRecognizer``): fed a recorded route's messages as ROS delivers them
(event packets as raw CDR bytes, images as message objects), it decides as ``hstnn-replay`` does, counts every
message it could not use, detects middleware loss from seq gaps, and survives a replayed bag (time jumping back)."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hstnn_ros import defaults
from hstnn_ros.bags import BagReader
from hstnn_ros.datasets.synth import generate_route_set, preset_config
from hstnn_ros.enums import Environment
from hstnn_ros.runtime.bag_source import open_bag
from hstnn_ros.runtime.online import OnlineRecognizer
from hstnn_ros.runtime.params import node_settings
from hstnn_ros.runtime.replay import replay_engine_config, run_replay

torch.set_num_threads(1)

pytestmark = pytest.mark.skipif(not (defaults.shipped_models_dir() / "env2" / "bundle.json").is_file(),
                                reason="needs the shipped env2 bundle")
EVENTS, IMAGE = "/dvs/events", "/camera/color/image_raw"


@pytest.fixture(scope="module")
def route_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = preset_config("demo")
    cfg = dataclasses.replace(cfg, world=dataclasses.replace(cfg.world, path_length_m=2.0))
    out = tmp_path_factory.mktemp("route")
    generate_route_set(out, cfg, envs=(Environment.ENV2,), traversals=1, first_traversal=100, seed=0, progress=False)
    return out / "env2_t100"


def _messages(bag: Path) -> list[tuple[str, Any]]:
    """The bag's event packets (raw CDR bytes) and colour images (message objects) in receive order."""
    out = []
    with BagReader(bag) as reader:
        for m in reader.messages([EVENTS, IMAGE]):
            out.append(("events", bytes(m.data)) if m.topic == EVENTS else ("image", reader.deserialize(m)))
    return out


class Collector:
    def __init__(self) -> None:
        self.results: list = []
        self.frame_ids: set[str] = set()

    def __call__(self, results: list, frame_id: str) -> None:
        self.results += results
        self.frame_ids.add(frame_id)


def _core(**params: Any) -> tuple[OnlineRecognizer, Collector]:
    values = {"environment": "env2", "reorder_delay_ms": 100.0, "drop_policy": "drop_newest",
              "max_pending_frames": 256, **params}
    sink = Collector()
    return OnlineRecognizer(node_settings(values), sink), sink


def _feed(core: OnlineRecognizer, msgs: list[tuple[str, Any]], skip: set[int] = frozenset()) -> int:
    n = 0
    for i, (kind, payload) in enumerate(msgs):
        if i in skip:
            continue
        if kind == "events":
            core.offer_events(payload)
            n += 1
        else:
            core.offer_image(payload)
    return n


@pytest.mark.slow
def test_decides_as_replay_does_and_accounts_for_every_message(route_bag: Path) -> None:
    src = open_bag(route_bag)
    from hstnn_ros.runtime.session import open_session

    ref = run_replay(src.items(), open_session(preset="env2", config=replay_engine_config()).engine, progress=False)
    ref_ids = {r.stamp_ns: r.place_id for r in ref.results}
    msgs = _messages(route_bag)
    core, sink = _core()
    published = _feed(core, msgs)
    assert core.drain(60)
    core.close(flush=True)
    got = {r.stamp_ns: r.place_id for r in sink.results}
    assert set(got) == set(ref_ids) and got == ref_ids
    c = core.counters
    assert c.event_msgs_received + c.event_msgs_lost == published and c.event_msgs_lost == 0
    assert c.frames_received == sum(k == "image" for k, _ in msgs) and c.decisions == len(got)
    assert sink.frame_ids == {msgs[[k for k, _ in msgs].index("image")][1].header.frame_id}
    d = core.diagnostics()
    assert d.level == 0 and d.values["event_msgs_received"] == str(published) and d.values["event_msgs_lost"] == "0"


@pytest.mark.slow
def test_seq_gaps_count_as_lost_and_a_replayed_bag_keeps_deciding(route_bag: Path) -> None:
    msgs = _messages(route_bag)
    event_idx = [i for i, (k, _) in enumerate(msgs) if k == "events"]
    skip = {event_idx[10], event_idx[11], event_idx[40]}  # the middleware lost three packets
    core, sink = _core()
    first = _feed(core, msgs, skip)
    assert core.drain(60)
    n_first = len(sink.results)
    assert core.counters.event_msgs_seq_gaps == 3
    assert core.counters.event_msgs_received + core.counters.event_msgs_lost == first + 3
    assert core.diagnostics().level == 1  # this period lost messages: WARN
    second = _feed(core, msgs)  # the same bag again: time jumps back ~2 s
    assert core.drain(60)
    core.close(flush=True)
    assert core.session.engine.counters.time_jumps == 1 and core.counters.seq_restarts == 1
    assert len(sink.results) - n_first >= 0.9 * n_first, "decisions stopped after the time jump"
    assert core.counters.event_msgs_received + core.counters.event_msgs_lost == first + 3 + second
    assert core.diagnostics().level == 0  # the clean second period clears the warning


@pytest.mark.slow
def test_malformed_messages_and_a_full_queue_are_counted_never_raised(route_bag: Path) -> None:
    msgs = _messages(route_bag)
    core, _ = _core(work_queue_size=8)
    gate = threading.Event()
    handle = core._handle

    def slow(kind: str, payload: Any) -> None:
        gate.wait(30)
        handle(kind, payload)

    core._handle = slow  # the worker is busy: the bounded queue must refuse, count and go on
    offered = _feed(core, msgs[:200])
    gate.set()
    assert core.drain(60)
    for garbage in (b"", b"\x00\x01\x00\x00" + bytes(range(40)), np.random.default_rng(0).bytes(300)):
        core.offer_events(garbage)
    assert core.drain(60)
    core.close(flush=False)
    c = core.counters
    assert c.event_msgs_dropped_queue > 0
    assert c.event_msgs_received + c.event_msgs_dropped_queue == offered + 3
    assert c.event_msgs_malformed >= 2  # the two non-empty garbage buffers; an empty CDR buffer may decode empty
    d = core.diagnostics()
    assert d.level == 1 and "event_msgs_lost" in d.message
