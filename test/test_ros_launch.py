"""launch_testing: replay.launch.py plays a synthetic route bag into place_recognition_node and place messages arrive.

Skipped where ROS 2 (rclpy, launch_testing, launch_ros, vision_msgs) is not installed. Run with
``launch_test test/test_ros_launch.py`` or plain pytest (the launch_testing pytest plugin picks up
``generate_test_description``) after ``colcon build`` / sourcing the workspace.
"""

from __future__ import annotations

import os
import tempfile
import time
import unittest
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("launch_testing")
pytest.importorskip("launch_ros")
pytest.importorskip("vision_msgs")

import launch_testing.actions  # noqa: E402
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from vision_msgs.msg import Classification  # noqa: E402

import launch  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

WAIT_S = float(os.environ.get("HSTNN_LAUNCH_TEST_WAIT_S", "90"))


def _synthetic_bag() -> Path:
    """One short env1 traversal of the demo route, written by the synthetic route tool."""
    from hstnn_ros.data_tools import synth_route

    out = Path(tempfile.mkdtemp(prefix="hstnn_launch_test_"))
    rc = synth_route.main(["--out", str(out), "--preset", "demo", "--envs", "env1", "--traversals", "1", "--quiet"])
    if rc != 0:
        raise RuntimeError(f"hstnn-synth-route failed with {rc}")
    return out / "env1_t0"


@pytest.mark.launch_test
def generate_test_description() -> launch.LaunchDescription:
    bag = _synthetic_bag()
    replay = Path(get_package_share_directory("hstnn_ros")) / "launch" / "replay.launch.py"
    include = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(replay)),
        launch_arguments={
            "bag": str(bag),
            "rate": "1.0",
            "environment": "env1",
            "events": "/dvs/events",
            "image": "/camera/color/image_raw",
            "shutdown_at_end": "false",
        }.items(),
    )
    return launch.LaunchDescription([include, launch_testing.actions.ReadyToTest()])


class TestPlaceMessages(unittest.TestCase):
    """While the bag plays, place estimates arrive on /place stamped in bag time with ordered top-k."""

    @classmethod
    def setUpClass(cls) -> None:
        rclpy.init()
        cls.node = rclpy.create_node("hstnn_launch_test_listener")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.node.destroy_node()
        rclpy.shutdown()

    def test_place_messages_arrive(self) -> None:
        received: list[Classification] = []
        sub = self.node.create_subscription(Classification, "/place", received.append, qos_profile_sensor_data)
        try:
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline and len(received) < 5:
                rclpy.spin_once(self.node, timeout_sec=0.2)
        finally:
            self.node.destroy_subscription(sub)
        self.assertGreaterEqual(len(received), 5, "fewer than 5 place messages within the wait")
        for msg in received:
            self.assertGreater(msg.header.stamp.sec + msg.header.stamp.nanosec, 0)
            scores = [h.score for h in msg.results]
            self.assertTrue(scores and scores == sorted(scores, reverse=True))
            self.assertTrue(all(0.0 <= s <= 1.0 for s in scores))
