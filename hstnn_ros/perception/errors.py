"""The perception subpackage's exception type."""

from hstnn_ros.errors import HstnnError


class DecodeError(HstnnError):
    """Raised by ``hstnn_ros.perception`` for malformed or unsupported input (event payloads, CDR buffers, images,
    AEDAT4 files); the message says what was wrong and with which input."""


class WindowError(HstnnError):
    """Raised by ``hstnn_ros.perception.window`` for an impossible window description or buffer bound."""


class DamagedFileError(DecodeError):
    """A damaged recording (AEDAT4 file): the message names the file, the damage, the recovery used and what was
    lost; ``recovered`` holds the events of its intact parts (an ``EventBatch``, possibly empty)."""

    def __init__(self, message: str, recovered: object = None) -> None:
        super().__init__(message)
        self.recovered = recovered
