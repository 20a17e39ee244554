"""ROS 2 message construction for synthetic records (rosbags typestore classes, numpy payloads, CDR bytes)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hstnn_ros.datasets.synth.simulate import OdomRecord, RgbdRecord

#: Topic names and frames of a synthetic route (a RealSense + DAVIS rig on a wheeled robot).
TOPIC_EVENTS = "/dvs/events"
TOPIC_RGB = "/camera/color/image_raw"
TOPIC_DEPTH = "/camera/aligned_depth_to_color/image_raw"
TOPIC_ODOM = "/odom"
FRAME_DVS = "dvs"
FRAME_RGB = "camera_color_optical_frame"
FRAME_ODOM = "odom"
FRAME_BASE = "base_link"

MSG_IMAGE = "sensor_msgs/msg/Image"
MSG_ODOM = "nav_msgs/msg/Odometry"


class MessageFactory:
    """Builds and serialises messages with one typestore (which must know the event message types)."""

    def __init__(self, typestore: Any) -> None:
        self.ts = typestore
        t = typestore.types
        self.Time, self.Header = t["builtin_interfaces/msg/Time"], t["std_msgs/msg/Header"]
        self.Image, self.Odometry = t[MSG_IMAGE], t[MSG_ODOM]
        self.PoseCov = t["geometry_msgs/msg/PoseWithCovariance"]
        self.TwistCov = t["geometry_msgs/msg/TwistWithCovariance"]
        self.Pose, self.Twist = t["geometry_msgs/msg/Pose"], t["geometry_msgs/msg/Twist"]
        self.Point, self.Quat, self.Vec3 = (t["geometry_msgs/msg/Point"], t["geometry_msgs/msg/Quaternion"],
                                            t["geometry_msgs/msg/Vector3"])

    def header(self, t_ns: int, frame: str) -> Any:
        return self.Header(stamp=self.Time(sec=t_ns // 10**9, nanosec=t_ns % 10**9), frame_id=frame)

    def serialize(self, msg: Any, msgtype: str) -> bytes:
        return bytes(self.ts.serialize_cdr(msg, msgtype))

    def rgb(self, rec: RgbdRecord) -> bytes:
        h, w = rec.rgb.shape[:2]
        msg = self.Image(header=self.header(rec.t_ns, FRAME_RGB), height=h, width=w, encoding="rgb8",
                         is_bigendian=0, step=w * 3, data=np.ascontiguousarray(rec.rgb).reshape(-1))
        return self.serialize(msg, MSG_IMAGE)

    def depth(self, rec: RgbdRecord) -> bytes:
        h, w = rec.depth_mm.shape
        data = np.ascontiguousarray(rec.depth_mm.astype("<u2")).view(np.uint8).reshape(-1)
        msg = self.Image(header=self.header(rec.t_ns, FRAME_RGB), height=h, width=w, encoding="16UC1",
                         is_bigendian=0, step=w * 2, data=data)
        return self.serialize(msg, MSG_IMAGE)

    def odom(self, rec: OdomRecord) -> bytes:
        cov = np.zeros(36, np.float64)
        cov[[0, 7, 35]] = 1e-4  # ground truth: tiny, but a consumer dividing by it should not blow up
        pose = self.Pose(position=self.Point(x=rec.x, y=rec.y, z=0.0),
                         orientation=self.Quat(x=0.0, y=0.0, z=math.sin(rec.yaw / 2), w=math.cos(rec.yaw / 2)))
        twist = self.Twist(linear=self.Vec3(x=rec.v, y=0.0, z=0.0), angular=self.Vec3(x=0.0, y=0.0, z=rec.yaw_rate))
        msg = self.Odometry(header=self.header(rec.t_ns, FRAME_ODOM), child_frame_id=FRAME_BASE,
                            pose=self.PoseCov(pose=pose, covariance=cov),
                            twist=self.TwistCov(twist=twist, covariance=cov.copy()))
        return self.serialize(msg, MSG_ODOM)
