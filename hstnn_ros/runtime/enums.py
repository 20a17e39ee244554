"""Choices of the online runtime (input mode, model presets, kinds of input item). Queue drop policy and event
binning are the perception layer's (``hstnn_ros.perception.enums``), lighting environments the package's
(``hstnn_ros.enums``)."""

from __future__ import annotations

import enum

from hstnn_ros.enums import Environment


class InputMode(enum.Enum):
    """Which sensors drive decisions. ``RGBD_EVENTS``: one decision per new RGB frame. ``EVENTS_ONLY``: no RGB at all;
    decisions come from a virtual frame clock on event time and the RGB part of each step is zeros (the model must
    have been trained that way, see ``Pipeline.events_only``)."""

    RGBD_EVENTS = "rgbd_events"
    EVENTS_ONLY = "events_only"


class Preset(enum.StrEnum):
    """Named model bundles a user selects (``--preset``, the node's ``environment`` parameter).

    ``ENV1``..``ENV3``: the model of one lighting environment; ``DEFAULT``: trained on all of them; ``AUTO``: pick
    ENV1..3 from the measured scene; ``EVENTS_ONLY``: no colour input (event-only cameras and bags)."""

    ENV1 = "env1"
    ENV2 = "env2"
    ENV3 = "env3"
    DEFAULT = "default"
    AUTO = "auto"
    EVENTS_ONLY = "events_only"

    @property
    def environment(self) -> Environment | None:
        """The lighting environment this preset is for (``None`` for default, auto, events_only)."""
        try:
            return Environment(self.value)
        except ValueError:
            return None

    @classmethod
    def of(cls, env: Environment) -> Preset:
        """The preset of a lighting environment."""
        return cls(env.value)


class ItemKind(enum.Enum):
    """What one input item carries, in a replay stream (``replay.ReplayItem``) and in the live node's work queue
    (``online.OnlineRecognizer``)."""

    EVENTS = "events"  #: an event message (replay: an ``EventBatch``; online: its serialized CDR bytes)
    IMAGE = "image"  #: a colour image (replay: ``(rgb [H, W, 3] uint8, depth [H, W] or None)``; online: the message)
    DEPTH = "depth"  #: an aligned depth image (online only: replay items carry depth with their colour image)
    LABEL = "label"  #: replay only: an int place id valid from this stamp on
    MALFORMED = "malformed"  #: replay only: a str reason (a message that could not be decoded)
