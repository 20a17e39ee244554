"""Replay a rosbag2 recording into place_recognition_node with simulated time.

    ros2 launch hstnn_ros replay.launch.py bag:=/path/to/route_bag rate:=1.0 environment:=env2 [player:=ros2]

The player publishes the bag and /clock; the node runs with use_sim_time, so every output is stamped in bag time.
`player:=hstnn` (default) is the package's own `bag_player` (rosbags + rclpy: works without rosbag2; it waits until
the node has subscribed to the event and image topics); `player:=ros2` is `ros2 bag play` where rosbag2 is installed.
Playback starts `start_delay` seconds later; the launch ends `linger` seconds after the bag ends unless
`shutdown_at_end:=false`. If the node or the player fails, the launch ends with a non-zero status naming it.
The topic defaults are those of `hstnn-synth-route` bags.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.action import Action
from launch.actions import DeclareLaunchArgument, EmitEvent, ExecuteProcess, RegisterEventHandler, TimerAction
from launch.conditions import IfCondition
from launch.events import Shutdown
from launch.substitutions import EqualsSubstitution, LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from hstnn_ros.ros.launching import end_launch_on_exit
from launch import LaunchDescription


def _end_when_played(player: Action) -> RegisterEventHandler:
    """Failing player -> failing launch; finished player -> shut down after `linger` (if shutdown_at_end)."""
    finished = EmitEvent(event=Shutdown(reason="the bag finished"),
                         condition=IfCondition(LaunchConfiguration("shutdown_at_end")))
    return end_launch_on_exit(player, "the bag player", on_success=[finished], linger=LaunchConfiguration("linger"))


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("hstnn_ros"))
    args = [
        DeclareLaunchArgument("bag", description="rosbag2 directory (sqlite3 or MCAP)"),
        DeclareLaunchArgument("rate", default_value="1.0", description="playback rate"),
        DeclareLaunchArgument("player", default_value="hstnn", choices=["hstnn", "ros2"],
                              description="hstnn: the package's bag_player; ros2: ros2 bag play (needs rosbag2)"),
        DeclareLaunchArgument("environment", default_value="default",
                              description="environment preset: default | env1 | env2 | env3 | auto"),
        DeclareLaunchArgument("model_bundle", default_value="", description="bundle dir; empty = preset's bundle"),
        DeclareLaunchArgument("params_file", default_value=str(share / "config" / "replay.yaml"),
                              description="node parameters"),
        DeclareLaunchArgument("event_msg_type", default_value="event_camera_msgs/msg/EventPacket",
                              description="event message type in the bag"),
        DeclareLaunchArgument("events", default_value="/dvs/events", description="event topic in the bag"),
        DeclareLaunchArgument("image", default_value="/camera/color/image_raw", description="colour topic in the bag"),
        DeclareLaunchArgument("use_depth", default_value="false", description="feed aligned depth to the node"),
        DeclareLaunchArgument("depth", default_value="/camera/aligned_depth_to_color/image_raw",
                              description="depth topic in the bag (with use_depth:=true)"),
        DeclareLaunchArgument("start_delay", default_value="1.0", description="seconds before playback starts"),
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
                "use_depth": ParameterValue(LaunchConfiguration("use_depth"), value_type=bool),
            },
        ],
        remappings=[("events", LaunchConfiguration("events")), ("image", LaunchConfiguration("image")),
                    ("depth", LaunchConfiguration("depth"))],
    )
    bag, rate = LaunchConfiguration("bag"), LaunchConfiguration("rate")
    hstnn_player = Node(
        package="hstnn_ros", executable="bag_player", name="bag_player", output="screen",
        arguments=[bag, "--rate", rate, "--clock", "--start-delay", LaunchConfiguration("start_delay"),
                   "--wait-for", LaunchConfiguration("events"), LaunchConfiguration("image")],
        condition=IfCondition(EqualsSubstitution(LaunchConfiguration("player"), "hstnn")),
    )
    ros2_player = ExecuteProcess(
        cmd=["ros2", "bag", "play", bag, "--clock", "--rate", rate], name="ros2_bag_play", output="screen",
    )

    return LaunchDescription([
        *args, node, end_launch_on_exit(node, "place_recognition_node"), hstnn_player,
        TimerAction(period=LaunchConfiguration("start_delay"), actions=[ros2_player],
                    condition=IfCondition(EqualsSubstitution(LaunchConfiguration("player"), "ros2"))),
        _end_when_played(hstnn_player), _end_when_played(ros2_player),
    ])
