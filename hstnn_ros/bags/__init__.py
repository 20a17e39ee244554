"""rosbag2 reading and writing (sqlite3 and MCAP) with the event-camera message types registered."""

from hstnn_ros.bags.enums import Storage
from hstnn_ros.bags.errors import BagError
from hstnn_ros.bags.playback import Playback, PlaybackReport, Scheduled
from hstnn_ros.bags.reader import BagReader, RawMessage, TopicInfo
from hstnn_ros.bags.types import CUSTOM_MSGDEFS, typestore
from hstnn_ros.bags.writer import BagWriter

__all__ = [
    "CUSTOM_MSGDEFS",
    "BagError",
    "BagReader",
    "BagWriter",
    "Playback",
    "PlaybackReport",
    "RawMessage",
    "Scheduled",
    "Storage",
    "TopicInfo",
    "typestore",
]
