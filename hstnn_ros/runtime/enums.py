"""Choices of the online runtime (drop policy, event binning, input mode, environment presets)."""

from __future__ import annotations

import enum


class DropPolicy(enum.Enum):
    """What a full bounded input queue does with one more item.

    ``DROP_OLDEST`` keeps the freshest data (right for a live robot: a late decision is worth less than a current one);
    ``DROP_NEWEST`` keeps what is queued and refuses the new item (right for replay when nothing should be skipped
    silently). Either way the drop is counted in ``EngineCounters``.
    """

    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"


class EventBinning(enum.Enum):
    """How the event frames belonging to one decision frame are cut from the event stream.

    ``FIXED``: ``bins`` consecutive bins of ``bin_ns`` ending at the frame stamp (NeuroGPR: 3 x 7 ms per APS frame).
    ``SPAN``: the interval since the previous frame split into ``bins`` equal bins (every event is used once).
    """

    FIXED = "fixed"
    SPAN = "span"


class InputMode(enum.Enum):
    """Which sensors drive decisions. ``RGBD_EVENTS``: one decision per new RGB frame. ``EVENTS_ONLY``: no RGB at all;
    decisions come from a virtual frame clock on event time and the RGB part of each step is zeros (the model must
    have been trained that way, see ``Pipeline.events_only``)."""

    RGBD_EVENTS = "rgbd_events"
    EVENTS_ONLY = "events_only"


class Environment(enum.Enum):
    """Lighting environments of the paper and the presets that select a model bundle for them."""

    ENV1 = "env1"  # indoor, good light
    ENV2 = "env2"  # outdoor, varying light
    ENV3 = "env3"  # indoor, low light
    DEFAULT = "default"
    AUTO = "auto"  # pick ENV1..3 from measured illumination and event rate
