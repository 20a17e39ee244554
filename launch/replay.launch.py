"""Replay a rosbag2 recording into place_recognition_node with simulated time.

    ros2 launch hstnn_ros replay.launch.py bag:=/path/to/route_bag rate:=1.0 environment:=env2

`ros2 bag play --clock` publishes /clock; the node runs with use_sim_time so every output is stamped in bag time.
Playback starts after `start_delay` seconds so that the node has subscribed; the launch ends when the bag ends
(plus `linger` seconds for the last decisions) unless `shutdown_at_end:=false`.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteProcess, RegisterEventHandler, TimerAction
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("hstnn_ros"))
    args = [
        DeclareLaunchArgument("bag", description="rosbag2 directory (sqlite3 or MCAP)"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        DeclareLaunchArgument("environment", default_value="default",
                              description="environment preset: default | env1 | env2 | env3 | auto"),
        DeclareLaunchArgument("model_bundle", default_value="", description="bundle dir; empty = preset's bundle"),
        DeclareLaunchArgument("params_file", default_value=str(share / "config" / "replay.yaml"),
                              description="node parameters"),
        DeclareLaunchArgument("event_msg_type", default_value="event_camera_msgs/msg/EventPacket",
                              description="event message type in the bag"),
        DeclareLaunchArgument("events", default_value="/events", description="event topic in the bag"),
        DeclareLaunchArgument("image", default_value="/image", description="colour topic in the bag"),
        DeclareLaunchArgument("start_delay", default_value="2.0", description="seconds before playback starts"),
        DeclareLaunchArgument("linger", default_value="2.0", description="seconds to keep running after the bag"),
        DeclareLaunchArgument("shutdown_at_end", default_value="true", description="stop when the bag ends"),
    ]
    node = Node(
        package="hstnn_ros", executable="place_recognition_node", name="place_recognition_node", output="screen",
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "use_sim_time": True,
                "environment": LaunchConfiguration("environment"),
                "model_bundle": LaunchConfiguration("model_bundle"),
                "event_msg_type": LaunchConfiguration("event_msg_type"),
            },
        ],
        remappings=[("events", LaunchConfiguration("events")), ("image", LaunchConfiguration("image"))],
    )
    play = ExecuteProcess(
        cmd=["ros2", "bag", "play", LaunchConfiguration("bag"), "--clock", "--rate", LaunchConfiguration("rate")],
        output="screen",
    )
    stop = RegisterEventHandler(
        OnProcessExit(
            target_action=play,
            on_exit=[TimerAction(period=LaunchConfiguration("linger"),
                                 actions=[EmitEvent(event=Shutdown(reason="bag finished"))])],
        ),
        condition=IfCondition(LaunchConfiguration("shutdown_at_end")),
    )
    return LaunchDescription([*args, node, TimerAction(period=LaunchConfiguration("start_delay"), actions=[play]),
                              stop])
