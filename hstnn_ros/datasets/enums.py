"""Choices of the dataset layer (what a recording is); labelling modes are ``labels.Labelling``, the synthetic
generator's choices ``synth.enums``."""

from __future__ import annotations

import enum


class RecordingKind(enum.StrEnum):
    """What ``recordings.open_recording`` reads a path as (``recordings.recording_kind`` tells it from the path)."""

    BAG = "bag"  #: a rosbag2 folder or a .mcap / .db3 file
    NEUROGPR = "neurogpr"  #: a NeuroGPR traversal folder (frames/ + event tensors)
    FRAMES = "frames"  #: a frame folder with its stamps file
    AEDAT4 = "aedat4"  #: an AEDAT4 file (DV)
    RAW = "raw"  #: a Prophesee raw EVT3 file
