"""Launch place_recognition_node on a robot: params file, environment preset and topic remaps.

    ros2 launch hstnn_ros place_recognition.launch.py events:=/event_camera/events image:=/camera/color/image_raw \
        depth:=/camera/aligned_depth_to_color/image_raw environment:=auto
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    share = Path(get_package_share_directory("hstnn_ros"))
    args = [
        DeclareLaunchArgument("params_file", default_value=str(share / "config" / "place_recognition.yaml"),
                              description="node parameters (YAML, /place_recognition_node: ros__parameters:)"),
        DeclareLaunchArgument("environment", default_value="default",
                              description="environment preset: default | env1 | env2 | env3 | auto"),
        DeclareLaunchArgument("model_bundle", default_value="", description="bundle dir; empty = preset's bundle"),
        DeclareLaunchArgument("device", default_value="cpu", description="cpu | cuda"),
        DeclareLaunchArgument("event_msg_type", default_value="event_camera_msgs/msg/EventPacket",
                              description="event_camera_msgs/msg/EventPacket | dvs_msgs/msg/EventArray"),
        DeclareLaunchArgument("events", default_value="/event_camera/events", description="event topic"),
        DeclareLaunchArgument("image", default_value="/camera/color/image_raw", description="colour topic"),
        DeclareLaunchArgument("depth", default_value="", description="aligned depth topic; empty = no depth"),
        DeclareLaunchArgument("place", default_value="place", description="output: vision_msgs/Classification"),
        DeclareLaunchArgument("ops", default_value="place/ops", description="output: per-decision op counts"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock"),
    ]
    overrides = {
        "environment": LaunchConfiguration("environment"),
        "model_bundle": LaunchConfiguration("model_bundle"),
        "device": LaunchConfiguration("device"),
        "event_msg_type": LaunchConfiguration("event_msg_type"),
        "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
    }
    remaps = [
        ("events", LaunchConfiguration("events")),
        ("image", LaunchConfiguration("image")),
        ("depth", LaunchConfiguration("depth")),
        ("place", LaunchConfiguration("place")),
        ("ops", LaunchConfiguration("ops")),
    ]
    has_depth = PythonExpression(["'", LaunchConfiguration("depth"), "' != ''"])
    node_with_depth = Node(
        package="hstnn_ros", executable="place_recognition_node", name="place_recognition_node", output="screen",
        parameters=[LaunchConfiguration("params_file"), {**overrides, "depth_topic": "depth"}],
        remappings=remaps, condition=IfCondition(has_depth),
    )
    node_rgb = Node(
        package="hstnn_ros", executable="place_recognition_node", name="place_recognition_node", output="screen",
        parameters=[LaunchConfiguration("params_file"), {**overrides, "depth_topic": ""}],
        remappings=remaps[:2] + remaps[3:], condition=UnlessCondition(has_depth),
    )
    return LaunchDescription([*args, node_with_depth, node_rgb])
