"""Errors of the dataset layer."""

from hstnn_ros.errors import HstnnError


class DatasetError(HstnnError):
    """A dataset, route or feature file is missing, corrupt or inconsistent; the message names the file."""
