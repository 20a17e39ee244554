"""launch_testing of place_recognition.launch.py: the node starts, declares its parameters, and publishes place,
ops and /diagnostics on the documented names while the package's bag player feeds it a synthetic route.

Runs under plain pytest through launch_testing's plugin in a ROS environment (`make test` builds one); see
test/ros_support.py for when it skips (and fails under CI=true instead).
"""

from __future__ import annotations

import time
import unittest
from pathlib import Path
from typing import Any

import pytest
from ros_support import ENGINE_STATUS, EVENTS, IMAGE, place_decision, route_bag

try:
    from launch_testing import post_shutdown_test
except ImportError:  # no ROS 2 here: the `ros` mark skips these classes (or fails them under CI=true)
    def post_shutdown_test() -> Any:
        return lambda cls: cls

pytestmark = [pytest.mark.ros, pytest.mark.slow]

#: parameters every version of the node declares (launch arguments and config files set them)
CORE_PARAMS = {"model_bundle", "environment", "event_msg_type", "use_depth", "reorder_delay_ms", "top_k", "device",
               "event_queue_depth", "work_queue_size", "route_filter", "unknown_threshold", "use_sim_time"}
WAIT_S = 120.0


@pytest.mark.launch_test
@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.timeout(400)
def generate_test_description() -> Any:
    import launch_testing.actions
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import ExecuteProcess, IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    import launch

    robot = Path(get_package_share_directory("hstnn_ros")) / "launch" / "place_recognition.launch.py"
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(robot)),
        launch_arguments={"events": EVENTS, "image": IMAGE, "environment": "env1"}.items(),
    )
    player = ExecuteProcess(cmd=["ros2", "run", "hstnn_ros", "bag_player", str(route_bag()), "--wait-for", EVENTS,
                                 IMAGE], name="bag_player", output="screen")
    return launch.LaunchDescription([include, player, launch_testing.actions.ReadyToTest()]), {"player": player}


class TestRobotLaunch(unittest.TestCase):
    """While the launch runs."""

    @classmethod
    def setUpClass(cls) -> None:
        import rclpy
        import rclpy.executors

        cls.ctx = rclpy.Context()
        rclpy.init(context=cls.ctx)
        cls.node = rclpy.create_node("hstnn_robot_launch_test", context=cls.ctx)
        cls.executor = rclpy.executors.SingleThreadedExecutor(context=cls.ctx)
        cls.executor.add_node(cls.node)

    @classmethod
    def tearDownClass(cls) -> None:
        import rclpy

        cls.executor.shutdown()
        cls.node.destroy_node()
        rclpy.shutdown(context=cls.ctx)

    def _spin_until(self, done: Any, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done():
            self.assertLess(time.monotonic(), deadline, f"{what} within {WAIT_S:.0f} s")
            self.executor.spin_once(timeout_sec=0.1)

    def test_node_declares_its_parameters(self) -> None:
        from rclpy.parameter_client import AsyncParameterClient

        client = AsyncParameterClient(self.node, "/place_recognition_node")
        self.assertTrue(client.wait_for_services(timeout_sec=WAIT_S), "parameter services of the node")
        listed = client.list_parameters()
        self._spin_until(listed.done, "list_parameters")
        names = set(listed.result().result.names)
        self.assertLessEqual(CORE_PARAMS, names, f"declared: {sorted(names)}")
        got = client.get_parameters(["environment"])
        self._spin_until(got.done, "get_parameters")
        self.assertEqual(got.result().values[0].string_value, "env1")  # the launch argument reached the node

    def test_place_ops_and_diagnostics_are_published(self) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from vision_msgs.msg import Classification

        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        place: list[Classification] = []
        ops: list[DiagnosticArray] = []
        diag: list[DiagnosticArray] = []
        subs = [self.node.create_subscription(Classification, "/place", place.append, qos),
                self.node.create_subscription(DiagnosticArray, "/ops", ops.append, qos),
                self.node.create_subscription(DiagnosticArray, "/diagnostics", diag.append, qos)]
        try:
            self._spin_until(lambda: len(place) >= 5 and len(ops) >= 5 and any(
                s.name == ENGINE_STATUS for m in diag for s in m.status), "5 place, 5 ops and an engine status")
            types = dict(self.node.get_topic_names_and_types())
        finally:
            for s in subs:
                self.node.destroy_subscription(s)
        # one documented name each: `place` and `ops` in the node's (root) namespace
        self.assertEqual(types.get("/place"), ["vision_msgs/msg/Classification"])
        self.assertEqual(types.get("/ops"), ["diagnostic_msgs/msg/DiagnosticArray"])
        for msg in place:
            self.assertGreater(msg.header.stamp.sec, 0)  # stamped with the recording's time, not zero
            _, _, scores = place_decision(msg)  # after a leading "unknown", best first
            self.assertTrue(scores and scores == sorted(scores, reverse=True))
            self.assertTrue(all(0.0 <= s <= 1.0 for s in scores))
            self.assertTrue(all(h.class_id for h in msg.results))
        stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in place}
        self.assertTrue(all(m.status for m in ops))
        self.assertTrue(stamps & {(m.header.stamp.sec, m.header.stamp.nanosec) for m in ops},
                        "ops messages carry the stamps of the decisions they describe")


@post_shutdown_test()
class TestRobotLaunchExit(unittest.TestCase):
    """After the launch: every process (node, player) exited cleanly on the launch's SIGINT."""

    def test_exit_codes(self, proc_info: Any) -> None:
        import launch_testing.asserts

        launch_testing.asserts.assertExitCodes(proc_info)
