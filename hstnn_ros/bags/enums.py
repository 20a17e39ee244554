"""Choices of the bag layer."""

from enum import StrEnum


class Storage(StrEnum):
    """rosbag2 storage plugins this package reads and writes."""

    SQLITE3 = "sqlite3"
    MCAP = "mcap"
