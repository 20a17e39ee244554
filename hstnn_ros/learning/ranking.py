"""Grouped global ranking of neurons (paper Methods, Selection stage): SNN neurons of all layers are ranked
together, RNN neurons of all layers together; ``round(r * total)`` SNN and the rest RNN are kept.

Works on plain score tensors so that it can be tested without a network. The hardware-friendly variant keeps a
fixed number of neurons per layer with population sizes in multiples of ``multiple`` (TianjicX core groups).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from hstnn_ros.learning.enums import EmptyPolicy
from hstnn_ros.learning.errors import LearningError
from hstnn_ros.model.enums import Role


@dataclass(frozen=True)
class LayerScores:
    """Importance of the redundant populations of one hidden layer (``[n_snn]`` and ``[n_rnn]``)."""

    snn: torch.Tensor
    rnn: torch.Tensor


@dataclass(frozen=True)
class Kept:
    """Sorted indices of the kept neurons of one layer, into the redundant SNN and RNN populations."""

    snn: torch.Tensor
    rnn: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.snn.numel() + self.rnn.numel())


def _global_top(scores: Sequence[torch.Tensor], k: int) -> list[torch.Tensor]:
    """Boolean masks selecting the ``k`` best entries over all layers together (ties by position)."""
    flat = torch.cat([s.double() for s in scores]) if scores else torch.zeros(0)
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    if k > 0:
        keep[torch.argsort(flat, descending=True, stable=True)[:k]] = True
    return list(keep.split([s.numel() for s in scores]))


def _repair(masks: list[torch.Tensor], scores: Sequence[torch.Tensor], layer: int, other_sizes: list[int]) -> bool:
    """Give ``layer`` its best unkept neuron of this kind by dropping the worst kept one of a layer that can spare
    it (more than one kept of this kind and more than one neuron in total). Returns False when impossible."""
    cand = scores[layer].double().masked_fill(masks[layer], -torch.inf)
    if cand.numel() == 0 or not torch.isfinite(cand.max()):
        return False
    worst, worst_val = None, torch.inf
    for j, (m, s) in enumerate(zip(masks, scores, strict=True)):
        if j == layer or int(m.sum()) < 2 or int(m.sum()) + other_sizes[j] < 2:
            continue
        v, i = s.double().masked_fill(~m, torch.inf).min(dim=0)
        if float(v) < worst_val:
            worst, worst_val = (j, int(i)), float(v)
    if worst is None:
        return False
    masks[worst[0]][worst[1]] = False
    masks[layer][int(cand.argmax())] = True
    return True


def select_global(layers: Sequence[LayerScores], ratio: float, total: int, *, policy: EmptyPolicy,
                  keep_both: bool) -> list[Kept]:
    """Keep ``round(ratio * total)`` SNN neurons and the rest RNN, each ranked globally over layers.

    A layer left with no neurons at all, or (``keep_both`` and 0 < ratio < 1) without one of the populations, is
    refused (``EmptyPolicy.REFUSE``) or repaired by swapping (``EmptyPolicy.REPAIR``).
    """
    if not 0.0 <= ratio <= 1.0:
        raise LearningError(f"SNN ratio {ratio} is outside [0, 1]")
    n_snn = round(ratio * total)
    return select_counts(layers, n_snn, total - n_snn, policy=policy, need_both=keep_both and 0.0 < ratio < 1.0,
                         what=f"SNN ratio {ratio}")


def select_counts(layers: Sequence[LayerScores], n_snn: int, n_rnn: int, *, policy: EmptyPolicy, need_both: bool,
                  what: str = "selection") -> list[Kept]:
    """Keep the best ``n_snn`` SNN and ``n_rnn`` RNN neurons, each kind ranked globally over layers (``-inf``
    scores: neurons already removed, never kept). ``need_both``: every layer must keep both kinds."""
    avail_s = sum(int(lay.snn.numel()) for lay in layers)
    avail_r = sum(int(lay.rnn.numel()) for lay in layers)
    if n_snn > avail_s or n_rnn > avail_r:
        raise LearningError(f"{what} needs {n_snn} SNN + {n_rnn} RNN neurons but the adapted network has "
                            f"{avail_s} + {avail_r}; train the Adaptation stage with M SNN + M RNN per layer")
    ms = _global_top([lay.snn for lay in layers], n_snn)
    mr = _global_top([lay.rnn for lay in layers], n_rnn)
    for i in range(len(layers)):
        for kind, masks, scores, other in ((Role.SNN, ms, [la.snn for la in layers], mr),
                                           (Role.RNN, mr, [la.rnn for la in layers], ms)):
            lacking = int(masks[i].sum()) == 0 and (need_both or int(other[i].sum()) == 0)
            if not lacking:
                continue
            if (kind is Role.SNN and n_snn == 0) or (kind is Role.RNN and n_rnn == 0):
                continue  # this kind is not kept at all; the other kind must cover the layer
            problem = (f"{what}: global ranking leaves layer {i} without {kind.upper()} neurons"
                       f" ({int(ms[i].sum())} SNN, {int(mr[i].sum())} RNN kept)")
            if policy is EmptyPolicy.REFUSE:
                raise LearningError(problem + "; set selection.empty_layer: repair, use hardware_friendly fixed "
                                              "layer sizes, or choose another ratio")
            sizes = [int(o.sum()) for o in other]
            if not _repair(masks, scores, i, sizes):
                raise LearningError(problem + " and no other layer can spare one; choose another ratio")
    for i in range(len(layers)):
        if int(ms[i].sum()) + int(mr[i].sum()) == 0:
            raise LearningError(f"{what}: layer {i} would be empty; choose another ratio or "
                                f"set selection.empty_layer: repair")
    return [Kept(snn=torch.nonzero(s).flatten(), rnn=torch.nonzero(r).flatten()) for s, r in zip(ms, mr, strict=True)]


def select_fixed(layers: Sequence[LayerScores], sizes: Sequence[tuple[int, int]]) -> list[Kept]:
    """Hardware-friendly selection: layer i keeps exactly ``sizes[i] = (n_snn, n_rnn)`` (multiples of 16/32, from
    :func:`~hstnn_ros.learning.config.population_sizes`), its best neurons of each kind."""
    out = []
    for i, (lay, (s, r)) in enumerate(zip(layers, sizes, strict=True)):
        if s > lay.snn.numel() or r > lay.rnn.numel():
            raise LearningError(f"layer {i} should keep {s} SNN + {r} RNN neurons but has only "
                                f"{lay.snn.numel()} + {lay.rnn.numel()}")
        if s + r == 0:
            raise LearningError(f"layer {i} would be empty; choose network.hidden sizes > 0")
        ks = torch.argsort(lay.snn.double(), descending=True, stable=True)[:s].sort().values
        kr = torch.argsort(lay.rnn.double(), descending=True, stable=True)[:r].sort().values
        out.append(Kept(snn=ks, rnn=kr))
    return out


def select_random(layers: Sequence[LayerScores], like: Sequence[Kept], seed: int) -> list[Kept]:
    """Control: the same per-layer population sizes as ``like`` but random neurons (for evidence and baselines)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for lay, k in zip(layers, like, strict=True):
        s = torch.randperm(lay.snn.numel(), generator=gen)[: k.snn.numel()].sort().values
        r = torch.randperm(lay.rnn.numel(), generator=gen)[: k.rnn.numel()].sort().values
        out.append(Kept(snn=s, rnn=r))
    return out
