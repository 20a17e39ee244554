"""Errors of the TianjicX export layer (quantisation, mapping, manifests, simulation)."""

from hstnn_ros.errors import HstnnError


class TianjicxError(HstnnError):
    """A model cannot be quantised or mapped, or a manifest/program is inconsistent; the message names the part."""
