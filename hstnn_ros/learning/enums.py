"""Choices of the learning layer: sweep unit kinds, selection criterion, empty-layer policy, robustness
perturbations."""

from __future__ import annotations

import enum


class UnitKind(enum.Enum):
    """What one sweep unit trains."""

    ADAPTATION = "adaptation"  #: the redundant M SNN + M RNN network of one seed (shared by every ratio)
    HSTNN = "hstnn"  #: Selection + Restoration from the adapted network at one ratio
    DIRECT = "direct"  #: directly-hybrid baseline, trained from scratch at one ratio (r=0: pure RNN, r=1: pure SNN)


class SelectionCriterion(enum.Enum):
    """How Selection scores a neuron (second-order estimates of the loss change when the neuron is pruned;
    docs/reports/selection.md has the measurements behind the default)."""

    #: removal saliency: the loss change when the neuron's output gate goes 1 -> 0, ``-dL/da + 1/2 d2L/da2`` (Eq. 8
    #: for the perturbation that removes the neuron), curvature by Hutchinson over per-sample gates
    REMOVAL = "removal"
    #: the same removal saliency with the curvature from the empirical Fisher of the per-sample gates,
    #: ``d2L_b/da2 ~ (dL_b/da)^2`` (Fisher pruning): one backward per batch, no probe noise, no double backward
    REMOVAL_FISHER = "removal_fisher"
    #: the paper's Eq. 13: Hutchinson trace of the Hessian block of the neuron's afferent weights x ``||w||^2 / numel``
    TRACE = "trace"


class EmptyPolicy(enum.Enum):
    """What Selection does when the ranking would leave a layer (or a required population) empty."""

    REFUSE = "refuse"  #: raise, naming the ratio and layer
    REPAIR = "repair"  #: swap in the best neuron of the missing kind of that layer for the worst kept one elsewhere


class Perturbation(enum.Enum):
    """Input perturbations of the robustness evaluation (paper Fig. 3)."""

    GAUSSIAN = "gaussian"  #: additive Gaussian noise, level = standard deviation (in units of the data's std)
    SALT_PEPPER = "salt_pepper"  #: level = fraction of input entries set to the data's min or max
    FRAME_LOSS = "frame_loss"  #: level = probability that a whole time step is zeroed
