"""Choices of the event layer."""

from enum import StrEnum


class Encoding(StrEnum):
    """``EventPacket.encoding`` values this package decodes and encodes."""

    EVT3 = "evt3"
    LIBCAER_CMP = "libcaer_cmp"
    LIBCAER = "libcaer"
    MONO = "mono"


class TimeMode(StrEnum):
    """How decoded sensor time becomes event time.

    ``ROS``: ROS time; encodings whose sensor clock is not ROS time (evt3) are anchored to the first packet's header
    stamp (offset = stamp - first event's sensor time); libcaer, libcaer_cmp and mono carry ROS time via
    ``time_base`` already. ``SENSOR``: unwrapped sensor time as decoded, no anchoring.
    """

    ROS = "ros"
    SENSOR = "sensor"


class ResizeMode(StrEnum):
    """How sensor coordinates map onto the front-end resolution (coordinates are mapped, never images)."""

    SCALE = "scale"  #: x' = x * out_w // width, y' likewise (aspect may change)
    CROP = "crop"  #: centre crop of out_w x out_h sensor pixels, no scaling
    FIT = "fit"  #: scale by the larger ratio so the frame is covered, then centre crop


class Normalization(StrEnum):
    """Per-frame normalisation of event counts."""

    NONE = "none"  #: raw counts (after optional clipping)
    MAX = "max"  #: divided by the frame's largest count
    CLIP = "clip"  #: clipped at ``clip`` then divided by ``clip`` (range [0, 1])
