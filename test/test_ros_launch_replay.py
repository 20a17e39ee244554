"""launch_testing of replay.launch.py with the package's own bag player (the default `player:=hstnn`): the player
waits for the node, plays a synthetic route with /clock, place messages arrive stamped in bag time, and the launch
ends by itself once the bag has been played, every process exiting cleanly.

Runs under plain pytest through launch_testing's plugin in a ROS environment (`make test` builds one); see
test/ros_support.py for when it skips (and fails under CI=true instead).
"""

from __future__ import annotations

import time
import unittest
from pathlib import Path
from typing import Any

import pytest
from ros_support import EVENTS, IMAGE, place_decision, route_bag

try:
    from launch_testing import post_shutdown_test
except ImportError:  # no ROS 2 here: the `ros` mark skips these classes (or fails them under CI=true)
    def post_shutdown_test() -> Any:
        return lambda cls: cls

pytestmark = [pytest.mark.ros, pytest.mark.slow]

WAIT_S = 120.0
#: what the player prints last (its per-topic report)
PLAYED = "loop(s) in"


@pytest.mark.launch_test
@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.timeout(400)
def generate_test_description() -> Any:
    import launch_testing.actions
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    import launch

    replay = Path(get_package_share_directory("hstnn_ros")) / "launch" / "replay.launch.py"
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(replay)),
        launch_arguments={"bag": str(route_bag()), "environment": "env1", "events": EVENTS, "image": IMAGE,
                          "start_delay": "0.5", "linger": "3.0"}.items(),
    )
    return launch.LaunchDescription([include, launch_testing.actions.ReadyToTest()])


class TestReplayLaunch(unittest.TestCase):
    """While the launch runs (it shuts itself down `linger` seconds after the bag)."""

    def test_place_messages_arrive_in_bag_time(self, proc_output: Any) -> None:
        import rclpy
        import rclpy.executors
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from vision_msgs.msg import Classification

        from hstnn_ros.bags import BagReader

        ctx = rclpy.Context()
        rclpy.init(context=ctx)
        node = rclpy.create_node("hstnn_replay_launch_test", context=ctx)
        executor = rclpy.executors.SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        place: list[Classification] = []
        clock: list[Clock] = []
        node.create_subscription(Classification, "/place", place.append,
                                 QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
        node.create_subscription(Clock, "/clock", clock.append, 100)
        try:
            # the player prints its report when the bag has been played; decisions trail it a little
            proc_output.assertWaitFor(PLAYED, process=None, timeout=WAIT_S, stream="stdout")
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.1)
        finally:
            executor.shutdown()
            node.destroy_node()
            rclpy.shutdown(context=ctx)
        with BagReader(route_bag()) as bag:
            t = [m.t_ns for m in bag.messages([IMAGE])]
        self.assertGreaterEqual(len(place), 5, "place messages while the bag played")
        self.assertTrue(clock, "/clock published by the player")
        for msg in place:  # stamped in the recording's time (the decision frame's stamp)
            stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
            self.assertTrue(t[0] - 1_000_000_000 <= stamp <= t[-1] + 1_000_000_000, stamp)
            _, _, scores = place_decision(msg)  # after a leading "unknown", best first
            self.assertTrue(scores and scores == sorted(scores, reverse=True))


@post_shutdown_test()
class TestReplayLaunchEnd(unittest.TestCase):
    """After the launch ended by itself: the package's player ran, published every topic, and all exited 0."""

    def test_player_reported_and_everything_exited_cleanly(self, proc_info: Any, proc_output: Any) -> None:
        import launch_testing.asserts

        launch_testing.asserts.assertExitCodes(proc_info)
        names = [p.process_name if hasattr(p, "process_name") else str(p) for p in proc_info.process_names()]
        self.assertTrue(any(n.startswith("bag_player") for n in names), names)
        out = "".join(o.text.decode() for o in proc_output if "bag_player" in o.process_name)
        self.assertIn(f"{IMAGE}", out)
        self.assertIn(PLAYED, out)
