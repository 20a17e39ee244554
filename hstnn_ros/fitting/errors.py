"""Errors of route fitting."""

from hstnn_ros.errors import HstnnError


class FitError(HstnnError):
    """A route fit cannot start or go on; the message names the input and the fix."""
