"""The package's root exception; every subpackage raises its own subclass (see each ``errors.py``)."""


class HstnnError(Exception):
    """Base of every error raised on purpose by hstnn_ros: catch this to handle all of them."""
