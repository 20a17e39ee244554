"""Errors of the synthetic route generator."""

from hstnn_ros.datasets.errors import DatasetError


class SynthError(DatasetError):
    """A synthetic-route argument is invalid or a route cannot be written; the message names the input and the fix."""
