"""The node on a live ROS 2 graph: the robot launch file fed by the package's bag player at real-time rate, as a robot
would feed it, with what arrives on /place, /ops and /diagnostics compared with what the player published and with
the offline ``hstnn-replay`` of the same bag. Also: launches that must fail, fail with a non-zero status.

Harness: ``ros_support.RobotGraph`` (one launch for the whole module).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ros_support import (
    EVENTS,
    IMAGE,
    Received,
    RobotGraph,
    launch_cmd,
    place_decision,
    route_bag,
    session_tmp,
    start,
    stop,
)

from hstnn_ros import defaults

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(600)]

#: decisions a node can make from n RGB frames: one per frame once the first window is full
FIRST_WINDOW = defaults.RGB_FRAMES_PER_WINDOW - 1


def _stamp_ns(msg: Any) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


@pytest.fixture(scope="module")
def graph() -> Iterator[RobotGraph]:
    log_dir = session_tmp() / "live_graph"
    log_dir.mkdir(parents=True, exist_ok=True)
    with RobotGraph(log_dir, environment="env1") as g:
        yield g


@pytest.fixture(scope="module")
def first_play(graph: RobotGraph) -> tuple[Any, Received]:
    """The route bag played once at real-time rate; what the player published and what the listener received."""
    report = graph.play(route_bag(), rate=1.0, tag="first")
    graph.settle()
    return report, graph.snapshot()


@pytest.fixture(scope="module")
def offline() -> list[dict[str, Any]]:
    """The decisions of ``hstnn-replay`` on the same bag (same preset), without ROS."""
    out = session_tmp() / "offline_replay"
    cmd = [sys.executable, "-m", "hstnn_ros.data_tools.replay", str(route_bag()), "--preset", "env1", "--out",
           str(out), "--no-progress"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout}\n{done.stderr}"
    return json.loads((out / "decisions.json").read_text())["decisions"]


def test_place_messages_arrive_in_bag_time(first_play: tuple[Any, Received]) -> None:
    report, got = first_play
    assert report.published[IMAGE] > FIRST_WINDOW and report.published[EVENTS] > 0
    assert got.place, "no place message while the bag played"
    assert len(got.ops) == len(got.place), "one ops message per decision"
    from hstnn_ros.bags import BagReader

    with BagReader(route_bag()) as bag:
        frame_stamps = {_stamp_ns(bag.deserialize(m)) for m in bag.messages([IMAGE])}
    # each decision is stamped with its frame's stamp, best hypothesis first (after "unknown" when it leads)
    assert {_stamp_ns(m) for m in got.place} <= frame_stamps
    for m in got.place:
        _, _, scores = place_decision(m)
        assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)


def test_a_place_message_for_95_percent_of_frames_after_the_first_window(first_play: tuple[Any, Received]) -> None:
    """The node decides 95 % of the frames it received after the first window. Images travel with the sensor-data
    QoS (best effort), so on a busy machine the middleware may drop a few before the node sees them (a CI run under
    load delivered 92 of 96): that loss is bounded separately, and the node is judged on what it received (its own
    ``frames_received`` count)."""
    report, got = first_play
    status = got.engine_values()
    received = int(status.get("frames_received", "0"))
    assert received >= 0.9 * report.published[IMAGE], (
        f"the node received {received} of {report.published[IMAGE]} published frames; engine status: {status}")
    expected = received - FIRST_WINDOW
    n = len(got.place)
    assert n >= 0.95 * expected, (f"{n} place messages for {expected} received frames after the first window; "
                                  f"engine status: {status}")


def test_live_decisions_equal_the_offline_replay(first_play: tuple[Any, Received],
                                                 offline: list[dict[str, Any]]) -> None:
    """Where the live node and hstnn-replay decided on the same frame, they chose the same place, and almost always
    agreed on whether it is known. The known flag is a threshold on the confidence and may differ on a frame whose
    window differs live (seen once in 91 decisions in CI: live below the threshold, offline 0.98; not yet
    explained, see the closing notes), so it is held to 95 % agreement rather than to equality."""
    _, got = first_play
    off = {int(d["stamp_ns"]): (bool(d["known"]), str(d["place_id"])) for d in offline}
    live = {_stamp_ns(m): place_decision(m)[:2] for m in got.place}
    both = sorted(set(off) & set(live))
    assert len(both) >= 0.5 * len(off), f"only {len(both)} of {len(off)} offline decisions were also made live"
    differ = [(t, live[t][1], off[t][1]) for t in both if live[t][1] != off[t][1]]
    assert not differ, f"{len(differ)} of {len(both)} places differ (stamp, live, offline): {differ[:5]}"
    flags = [(t, live[t][0], off[t][0]) for t in both if live[t][0] != off[t][0]]
    assert len(flags) <= 0.05 * len(both), f"known flags differ on {len(flags)} of {len(both)}: {flags[:5]}"


def test_live_accuracy_within_003_of_the_offline_replay(first_play: tuple[Any, Received],
                                                        offline: list[dict[str, Any]]) -> None:
    _, got = first_play
    truth = {int(d["stamp_ns"]): int(d["true_place"]) for d in offline if int(d["true_place"]) >= 0}
    assert truth, "the route's ground truth (route.json) gave no labels"
    off_acc = sum(str(d["place_id"]) == str(d["true_place"]) for d in offline if int(d["stamp_ns"]) in truth) \
        / len(truth)
    judged = [(place_decision(m)[1], truth[_stamp_ns(m)]) for m in got.place if _stamp_ns(m) in truth]
    assert judged
    live_acc = sum(c == str(t) for c, t in judged) / len(judged)
    assert abs(live_acc - off_acc) <= 0.03, f"live {live_acc:.3f} on {len(judged)}, offline {off_acc:.3f}"


def test_event_counters_account_for_every_published_packet(first_play: tuple[Any, Received]) -> None:
    """/diagnostics: event_msgs_received + event_msgs_lost == packets the player published (nothing silent)."""
    report, got = first_play
    received, lost = got.counter("event_msgs_received"), got.counter("event_msgs_lost")
    assert received is not None and lost is not None, f"engine status lacks the counters: {got.engine_values()}"
    assert received + lost == report.published[EVENTS]
    frames = got.counter("frames_received")
    assert frames is not None and frames <= report.published[IMAGE]
    assert got.counter("decisions") == len(got.place)


def test_playing_again_jumps_time_back_and_place_messages_keep_coming(graph: RobotGraph,
                                                                      first_play: tuple[Any, Received]) -> None:
    """The same bag again into the running node (a replayed or looped recording: time jumps back)."""
    _, before = first_play
    report = graph.play(route_bag(), rate=1.0, tag="again")
    graph.settle()
    new = graph.snapshot().place[len(before.place):]
    expected = report.published[IMAGE] - FIRST_WINDOW
    assert len(new) >= 0.9 * expected, f"{len(new)} place messages after the jump for {expected} frames"


def _launch_must_fail(tmp: Path, launch_file: str, **args: str) -> str:
    log = tmp / f"{launch_file}.log"
    proc = start(launch_cmd(launch_file, **args), log)
    try:
        rc = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        rc = stop(proc)
        pytest.fail(f"the launch was still running after 120 s:\n{log.read_text()[-3000:]}")
    text = log.read_text(errors="replace")
    assert rc != 0, f"ros2 launch exited {rc}:\n{text[-3000:]}"
    return text


def test_robot_launch_fails_on_a_bad_bundle_path(ros_log_dir: Path) -> None:
    bad = ros_log_dir / "no_such_bundle"
    text = _launch_must_fail(ros_log_dir, "place_recognition.launch.py", model_bundle=str(bad))
    assert str(bad) in text  # the node's own message names the path
    assert "place_recognition_node" in text and "exited with code" in text


def test_replay_launch_fails_when_the_chosen_player_is_missing(ros_log_dir: Path) -> None:
    """player:=ros2 where rosbag2 is not installed (this environment): the launch fails naming the player."""
    import shutil

    if shutil.which("ros2") and subprocess.run(["ros2", "bag", "--help"], capture_output=True,
                                               check=False).returncode == 0:
        pytest.skip("rosbag2 is installed here: `ros2 bag play` would succeed")
    text = _launch_must_fail(ros_log_dir, "replay.launch.py", bag=str(route_bag()), player="ros2",
                             start_delay="0.0")
    assert "the bag player" in text and "exited with code" in text
