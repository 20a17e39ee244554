"""Choices of the synthetic route generator: size presets. The lighting environments are
``hstnn_ros.enums.Environment``, event message kinds ``perception.events.enums.EventMessageKind``, bag storage
``bags.enums.Storage``."""

from __future__ import annotations

import enum


class Preset(enum.Enum):
    """Route sizes: ``demo`` takes seconds per traversal, ``bench`` minutes."""

    DEMO = "demo"
    DEFAULT = "default"
    BENCH = "bench"
