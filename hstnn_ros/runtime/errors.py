"""The runtime's exception type: bad engine configuration, unusable pipelines and inputs the engine refuses."""

from hstnn_ros.errors import HstnnError


class RuntimeEngineError(HstnnError):
    """Raised by ``hstnn_ros.runtime`` (engine set-up, pipelines, presets, replay); the message names the input
    and the fix."""
