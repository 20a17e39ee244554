"""The bag layer's exception type."""

from hstnn_ros.errors import HstnnError


class BagError(HstnnError):
    """Raised by ``hstnn_ros.bags``: a bag that cannot be opened, read or written; the message names the bag path."""
