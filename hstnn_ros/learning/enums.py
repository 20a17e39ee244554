"""Choices of the learning layer: sweep unit kinds, empty-layer policy, robustness perturbations."""

from __future__ import annotations

import enum


class UnitKind(enum.Enum):
    """What one sweep unit trains."""

    ADAPTATION = "adaptation"  #: the redundant M SNN + M RNN network of one seed (shared by every ratio)
    HSTNN = "hstnn"  #: Selection + Restoration from the adapted network at one ratio
    DIRECT = "direct"  #: directly-hybrid baseline, trained from scratch at one ratio (r=0: pure RNN, r=1: pure SNN)


class EmptyPolicy(enum.Enum):
    """What Selection does when the ranking would leave a layer (or a required population) empty."""

    REFUSE = "refuse"  #: raise, naming the ratio and layer
    REPAIR = "repair"  #: swap in the best neuron of the missing kind of that layer for the worst kept one elsewhere


class Perturbation(enum.Enum):
    """Input perturbations of the robustness evaluation (paper Fig. 3)."""

    GAUSSIAN = "gaussian"  #: additive Gaussian noise, level = standard deviation (in units of the data's std)
    SALT_PEPPER = "salt_pepper"  #: level = fraction of input entries set to the data's min or max
    FRAME_LOSS = "frame_loss"  #: level = probability that a whole time step is zeroed
