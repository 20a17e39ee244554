"""The perception subpackage's exception type."""

from hstnn_ros.errors import HstnnError


class DecodeError(HstnnError):
    """Raised by ``hstnn_ros.perception`` for malformed or unsupported input (event payloads, CDR buffers, images,
    AEDAT4 files); the message says what was wrong and with which input."""


class WindowError(HstnnError):
    """Raised by ``hstnn_ros.perception.window`` for an impossible window description or buffer bound."""
