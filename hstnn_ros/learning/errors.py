"""Errors of the learning layer (configuration, data checks, selection, sweeps, robustness)."""

from hstnn_ros.errors import HstnnError


class LearningError(HstnnError):
    """A training config, dataset, selection or sweep is invalid; the message names the input and what to change."""
