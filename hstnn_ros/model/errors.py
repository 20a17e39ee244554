"""Errors of the model core (configs, inputs, shrinking, op counting, bundles)."""

from hstnn_ros.errors import HstnnError


class ModelError(HstnnError):
    """An invalid model config, input tensor, kept-neuron set or bundle; the message says what was expected."""


class BundleError(ModelError):
    """A model bundle is missing, corrupt, truncated or does not match its own description; names the file."""
