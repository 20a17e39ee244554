"""Choices of the perception layer shared by its consumers (event binning of a window, queue drop policy).

Event-format choices (encodings, resize modes, normalisation) live in ``perception.events.enums``.
"""

from __future__ import annotations

import enum


class EventBinning(enum.StrEnum):
    """How the event frames belonging to one RGB frame are cut from the event stream.

    ``FIXED``: ``bins`` consecutive bins of ``bin_ns`` ending at the frame stamp (NeuroGPR: 3 x 7 ms per APS frame).
    ``SPAN``: the interval since the previous frame split into ``bins`` equal bins (every event is used once).
    """

    FIXED = "fixed"
    SPAN = "span"


class DropPolicy(enum.StrEnum):
    """What a full bounded input queue does with one more item.

    ``DROP_OLDEST`` keeps the freshest data (right for a live robot: a late decision is worth less than a current one);
    ``DROP_NEWEST`` keeps what is queued and refuses the new item (right for replay when nothing should be skipped
    silently). Either way the drop is counted.
    """

    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"
