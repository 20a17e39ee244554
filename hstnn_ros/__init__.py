"""hstnn_ros: place recognition from DVS events and RGB-D with hybrid spiking/non-spiking recurrent networks.

The library is ROS-free; only :mod:`hstnn_ros.ros` imports rclpy.
"""

__version__ = "0.1.0"
