"""Launch place_recognition_node on a robot: parameters file, environment preset, input topic remaps.

    ros2 launch hstnn_ros place_recognition.launch.py events:=/event_camera/events image:=/camera/color/image_raw \
        use_depth:=true depth:=/camera/aligned_depth_to_color/image_raw environment:=auto

Topic names are set by remapping only: the node subscribes to the relative names `events`, `image` (and `depth` when
`use_depth` is true) and publishes `place` and `ops` in its namespace (`/place`, `/ops` by default; `namespace:=robot1`
gives `/robot1/place`, `/robot1/ops`) and `/diagnostics`. If the node dies (a bad bundle path, an impossible
parameter), the launch ends with a non-zero status naming it.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from hstnn_ros.ros.launching import end_launch_on_exit
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
        DeclareLaunchArgument("use_depth", default_value="false",
                              description="subscribe to aligned depth too (only models trained on RGB-D use it)"),
        DeclareLaunchArgument("depth", default_value="/camera/aligned_depth_to_color/image_raw",
                              description="aligned depth topic (with use_depth:=true)"),
        DeclareLaunchArgument("namespace", default_value="", description="node namespace (moves place and ops)"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock"),
    ]
    node = Node(
        package="hstnn_ros", executable="place_recognition_node", name="place_recognition_node", output="screen",
        namespace=LaunchConfiguration("namespace"),
        parameters=[
            LaunchConfiguration("params_file"),
            {
                "environment": LaunchConfiguration("environment"),
                "model_bundle": LaunchConfiguration("model_bundle"),
                "device": LaunchConfiguration("device"),
                "event_msg_type": LaunchConfiguration("event_msg_type"),
                "use_depth": ParameterValue(LaunchConfiguration("use_depth"), value_type=bool),
                "use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool),
            },
        ],
        remappings=[
            ("events", LaunchConfiguration("events")),
            ("image", LaunchConfiguration("image")),
            ("depth", LaunchConfiguration("depth")),
        ],
    )
    return LaunchDescription([*args, node, end_launch_on_exit(node, "place_recognition_node")])
