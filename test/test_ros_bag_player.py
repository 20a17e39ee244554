"""The package's bag player on a live graph: recorded bytes arrive unchanged on the recorded types, paced by recorded
time over rate, /clock follows the recording (jumping back once per loop), a topic of a type this install lacks is
named and left out while the rest plays, and the player's per-topic counts are what a reliable subscriber got."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest
from ros_support import EVENTS, IMAGE, route_bag

pytestmark = [pytest.mark.ros, pytest.mark.slow, pytest.mark.timeout(300)]


def test_player_publishes_the_recording_with_clock_and_loops(ros_log_dir: Path, shared_data: Path) -> None:  # noqa: PLR0915  one scenario, top to bottom
    import rclpy
    import rclpy.executors
    from event_camera_msgs.msg import EventPacket
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image

    from hstnn_ros.bags import BagReader, PlaybackReport

    bag, legacy = route_bag(), shared_data / "bags" / "event_array_legacy_640x480"
    with BagReader(bag) as r:
        rec_events = [r.deserialize(m) for m in r.messages([EVENTS])]
        rec_t = [m.t_ns for m in r.messages()]
        n_img = r.topics[IMAGE].count
    span_s = (rec_t[-1] - rec_t[0]) / 1e9

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = rclpy.create_node("hstnn_player_test", context=ctx)
    lock = threading.Lock()
    events: list[tuple[int, int]] = []
    images: list[int] = []
    clock: list[int] = []

    def on_events(m: EventPacket) -> None:
        with lock:
            events.append((m.seq, len(m.events)))

    def on_image(m: Image) -> None:
        with lock:
            images.append(m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec)

    def on_clock(m: Clock) -> None:
        with lock:
            clock.append(m.clock.sec * 1_000_000_000 + m.clock.nanosec)

    qos = QoSProfile(depth=2000, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(EventPacket, EVENTS, on_events, qos)
    node.create_subscription(Image, IMAGE, on_image, qos)
    node.create_subscription(Clock, "/clock", on_clock, qos)
    executor = rclpy.executors.SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    report_file = ros_log_dir / "player.json"
    cmd = ["ros2", "run", "hstnn_ros", "bag_player", str(bag), str(legacy), "--rate", "2", "--loops", "2",
           "--clock", "--wait-for", EVENTS, IMAGE, "--report", str(report_file)]
    try:
        t0 = time.monotonic()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False,
                              stdin=subprocess.DEVNULL, start_new_session=True)
        wall = time.monotonic() - t0
        deadline = time.monotonic() + 10.0  # the last messages in flight (a busy machine delivers late)
        while time.monotonic() < deadline:
            with lock:
                if len(events) >= 2 * len(rec_events) and len(images) >= 2 * n_img:
                    break
            time.sleep(0.1)
        time.sleep(0.2)
    finally:
        executor.shutdown(timeout_sec=2.0)
        node.destroy_node()
        rclpy.shutdown(context=ctx)
        spin.join(5.0)
    assert done.returncode == 0, done.stdout + done.stderr
    # the legacy topic is named with its type and left out; the route plays
    assert "/event_camera/events has type event_array_msgs/msg/EventArray" in done.stderr
    report = PlaybackReport.from_json(report_file.read_text())
    assert "/event_camera/events" in report.skipped and "/event_camera/events" not in report.published
    assert report.loops == 2
    assert report.published[EVENTS] == 2 * len(rec_events) and report.published[IMAGE] == 2 * n_img
    # a reliable subscriber on this host got every message, bytes unchanged (seq and payload size per packet)
    assert events == [(m.seq, len(m.events)) for m in rec_events] * 2
    assert len(images) == report.published[IMAGE]
    # paced: two loops at rate 2 take about one recording's span (plus one message gap)
    assert 0.9 * span_s <= report.wall_s <= 1.5 * span_s + 0.5, (report.wall_s, span_s)
    assert wall >= report.wall_s
    # /clock: recorded time, forward within a loop, one jump back to the start for the second loop
    assert report.clock_msgs >= 0.5 * 40 * report.wall_s and len(clock) >= 0.9 * report.clock_msgs
    backs = [i for i in range(1, len(clock)) if clock[i] < clock[i - 1]]
    assert len(backs) == 1, backs
    assert rec_t[0] <= min(clock) and max(clock) <= rec_t[-1] + 200_000_000
    assert clock[backs[0]] <= rec_t[0] + 100_000_000
