"""Choices shared across the package's layers (the synthetic world, datasets, training, presets, reports)."""

from __future__ import annotations

import enum


class Environment(enum.StrEnum):
    """The paper's three lighting environments of a route (Methods, robot place recognition)."""

    ENV1 = "env1"  #: indoor, good and stable light
    ENV2 = "env2"  #: outdoor, illumination drifting over time with moving cloud shadows
    ENV3 = "env3"  #: indoor, low light: sensor noise (more background activity, noisy RGB)
