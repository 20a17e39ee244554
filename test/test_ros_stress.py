"""The node under what robots do to it, on a live graph: a burst of events at 10x the route's rate, malformed event
messages, impossible parameters. It must keep deciding, keep its memory bounded, account for every event packet
(received + lost == published), and refuse bad parameters at start with one line naming them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ros_support import EVENTS, IMAGE, RobotGraph, launch_cmd, route_bag, session_tmp, start, stop

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(600)]


def _node_rss(graph: RobotGraph) -> int:
    """Resident memory (bytes) of the place_recognition_node process under the launch."""
    import psutil

    for child in psutil.Process(graph.proc.pid).children(recursive=True):
        if any("place_recognition_node" in part for part in child.cmdline()[:2]):
            return child.memory_info().rss
    raise AssertionError(f"no place_recognition_node process under the launch:\n{graph.log_tail()}")


@pytest.fixture(scope="module")
def graph() -> Iterator[RobotGraph]:
    log_dir = session_tmp() / "stress_graph"
    log_dir.mkdir(parents=True, exist_ok=True)
    with RobotGraph(log_dir, environment="env1") as g:
        yield g


def test_ten_times_the_event_rate_keeps_deciding_bounded_and_counted(graph: RobotGraph) -> None:
    warm = graph.play(route_bag(), rate=1.0, tag="warm")  # everything loaded, one clean pass
    graph.settle()
    base = graph.snapshot()
    rss0 = _node_rss(graph)
    samples: list[int] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.is_set():
            samples.append(_node_rss(graph))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    try:  # the 3.2 s route at 10x, 30 times over: ~10 s of events (and frames) at ten times their rate; seq from 0
        # (a restart after the warm pass, which the node counts as one)
        burst = graph.play(route_bag(), rate=10.0, extra=("--loops", "30", "--seq-start", "0"), tag="burst")
    finally:
        stop_sampling.set()
        sampler.join()
    wall = time.monotonic() - t0
    graph.settle(quiet_s=3.0, timeout_s=120.0)
    after = graph.snapshot()
    decided = len(after.place) - len(base.place)
    lost = after.counter("event_msgs_lost")
    growth = max(samples) - rss0
    v = after.engine_values()
    print(f"burst: {burst.published[EVENTS]} event packets in {wall:.1f} s, {decided} decisions, {lost} lost "
          f"(seq gaps {v.get('event_msgs_seq_gaps')}, queue {v.get('event_msgs_dropped_queue')}); frames dropped "
          f"{v.get('frames_dropped')}; node RSS {rss0 / 2**20:.0f} MB -> max {max(samples) / 2**20:.0f} MB")
    assert wall >= 8.0 and decided > 0, "the node stopped deciding under load"
    assert growth < 400 * 2**20, f"node memory grew by {growth / 2**20:.0f} MB under load (bounded queues?)"
    # and afterwards it still works at the normal rate; its packets number on from the burst's, so the first one
    # reveals any packet lost at the very end of the burst (no later packet of the burst could)
    calm = graph.play(route_bag(), rate=1.0, extra=("--seq-start", str(burst.published[EVENTS])), tag="after")
    graph.settle()
    end = graph.snapshot()
    assert len(end.place) - len(after.place) >= 0.9 * (warm.published[IMAGE] - 2)
    published = warm.published[EVENTS] + burst.published[EVENTS] + calm.published[EVENTS]
    received, lost = end.counter("event_msgs_received"), end.counter("event_msgs_lost")
    assert received is not None and lost is not None
    # every packet is received or counted lost, except a loss in the calm pass's last packets (nothing follows them)
    unseen = published - (received + lost)
    assert 0 <= unseen <= 2, f"{received} received + {lost} lost vs {published} published"


def test_malformed_event_messages_are_counted_and_warned_never_fatal(graph: RobotGraph) -> None:
    import numpy as np
    import rclpy
    from event_camera_msgs.msg import EventPacket
    from rclpy.qos import qos_profile_sensor_data

    before = graph.snapshot()
    malformed0 = before.counter("event_msgs_malformed") or 0
    pub = graph.node.create_publisher(EventPacket, EVENTS, qos_profile_sensor_data)
    try:
        deadline = time.monotonic() + 10
        while pub.get_subscription_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        bad: list[Any] = []
        for enc, payload in (("bogus", b"\x01\x02"), ("evt3", b"\x01\x02\x03"), ("libcaer_cmp", b"\xff" * 3)):
            msg = EventPacket(encoding=enc, width=640, height=480, events=list(payload))
            msg.header.stamp.sec = 1700000000 + len(bad)  # after the route: not a time jump
            bad.append(msg)
        rng = np.random.default_rng(0)
        for msg in bad:
            pub.publish(msg)
            time.sleep(0.05)
        for _ in range(3):  # not CDR at all
            pub.publish(b"\x00\x01\x00\x00" + rng.bytes(37))
            time.sleep(0.05)
        time.sleep(3.0)  # a /diagnostics period or two
    finally:
        graph.node.destroy_publisher(pub)
    after = graph.snapshot()
    assert (after.counter("event_msgs_malformed") or 0) - malformed0 >= 5, after.engine_values()
    assert graph.proc.poll() is None, f"the node died on malformed input:\n{graph.log_tail()}"
    assert "malformed event message" in graph.log.read_text(errors="replace")
    del rclpy


@pytest.mark.parametrize(("values", "named"), [
    ({"drop_policy": "bogus"}, "parameter drop_policy='bogus'"),
    ({"top_k": 0}, "parameter top_k=0"),
    ({"bin_ms": 0.0}, "unknown parameter(s) ['bin_ms']"),
    ({"environment": "night"}, "parameter environment='night'"),
])
def test_impossible_parameters_end_the_launch_naming_them(values: dict[str, Any], named: str,
                                                          ros_log_dir: Path) -> None:
    import yaml

    args = {"events": EVENTS, "image": IMAGE}
    if "environment" in values:  # a launch argument (it overrides the params file)
        args["environment"] = values.pop("environment")
    params = ros_log_dir / "bad.yaml"
    params.write_text(yaml.safe_dump({"/place_recognition_node": {"ros__parameters": values or {"top_k": 5}}}))
    log = ros_log_dir / "launch.log"
    proc = start(launch_cmd("place_recognition.launch.py", params_file=str(params), **args), log)
    try:
        rc = proc.wait(timeout=120)
    except Exception:
        stop(proc)
        raise
    text = log.read_text(errors="replace")
    assert rc != 0, text[-2000:]
    assert named in text, text[-2000:]
    assert "Traceback" not in text, "a bad parameter must be one line, not a traceback"
