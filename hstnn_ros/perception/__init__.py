"""Perception: event-camera decoding and framing (``events``), RGB(-D) image decoding (``images``); the frozen
front-ends live in ``frontends``."""

from hstnn_ros.perception.errors import DecodeError

__all__ = ["DecodeError"]
