"""The ROS 2 shell: ``place_recognition_node`` (the only module importing rclpy; import ``hstnn_ros.ros.node``
explicitly so that the rest of the package works without ROS 2)."""

__all__: list[str] = []
