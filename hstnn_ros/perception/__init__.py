"""Perception: event-camera decoding and framing (``events``), RGB(-D) image decoding (``images``); the frozen
front-ends live in ``frontends``."""

from hstnn_ros.perception.errors import DamagedFileError, DecodeError
from hstnn_ros.perception.images import ImageEncoding, decode_image, encode_image, preprocess_rgbd

__all__ = ["DamagedFileError", "DecodeError", "ImageEncoding", "decode_image", "encode_image",
           "preprocess_rgbd"]
