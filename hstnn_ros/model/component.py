"""What a bundle stores per network, as a leaf module: ``Component`` (kind, config, tensors) and the
``HasComponent`` protocol. The network (``network.py``) describes itself as a component and the bundle
(``bundle.py``) stores and builds components; both import this module, so neither imports the other's back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

HSTNN_KIND = "hstnn"


@dataclass
class Component:
    """One stored network: what it is (``kind``), how to build it (``config``) and its tensors (``state``)."""

    kind: str
    config: dict[str, Any]
    state: dict[str, torch.Tensor]


class HasComponent(Protocol):
    """Anything that can describe itself as a :class:`Component` (e.g. :class:`~hstnn_ros.model.HSTNN`)."""

    def to_component(self) -> Component:
        """This object as a bundle component."""
        ...
