"""Per-neuron Hessian traces by Hutchinson's estimator and the OBS-style neuron importance (paper Eq. 13).

For neuron c with afferent weights ``w_c`` (every parameter row it owns), ``Tr(H_cc) = E[v_c . (H v)_c]`` for a
Rademacher vector ``v`` over all afferent parameters at once: the cross terms ``H_cd v_d`` (d != c) vanish in
expectation because the entries of ``v`` are independent with mean 0. One Hessian-vector product (double backward
through the surrogate gradients) therefore gives an unbiased trace for every neuron of every population
simultaneously. Importance = ``Tr(H_cc) * ||w_c||^2 / numel(w_c)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from hstnn_ros.learning.errors import LearningError
from hstnn_ros.model import sequence
from hstnn_ros.model.enums import Role

log = logging.getLogger(__name__)

#: Cache file format marker.
CACHE_FORMAT = "hstnn_ros.importance"


@dataclass(frozen=True)
class NeuronGroup:
    """One population's neurons: its afferent parameters and the map to a per-neuron view ``[size, k]``."""

    layer: int
    kind: Role
    params: Sequence[torch.Tensor]
    per_neuron: Callable[[list[torch.Tensor]], torch.Tensor]

    @property
    def key(self) -> str:
        return f"L{self.layer}.{self.kind}"

    @property
    def size(self) -> int:
        """Number of neurons (rows of the per-neuron view)."""
        return int(self.per_neuron([p.detach() for p in self.params]).shape[0])


@dataclass
class Importance:
    """Selection-stage result: per group (keyed ``L<layer>.<kind>``) Hessian traces and importance scores."""

    traces: dict[str, torch.Tensor]
    scores: dict[str, torch.Tensor]
    batches: int
    probes: int
    rel_stderr: float  #: standard error of the importance vector over batches, relative to its norm
    converged: bool
    log: list[dict[str, float]] = field(default_factory=list)
    #: split-half reliability of the neuron *ranking* (see ``rank_reliability``); NaN before 4 batches
    rank_reliability: float = math.nan

    def meta(self) -> dict[str, object]:
        return {"batches": self.batches, "probes": self.probes, "rel_stderr": self.rel_stderr,
                "converged": self.converged, "log": self.log, "rank_reliability": self.rank_reliability}


def rademacher_like(t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random +-1 entries shaped like ``t``."""
    return (torch.randint(0, 2, t.shape, generator=generator, dtype=torch.int8) * 2 - 1).to(t.device, t.dtype)


def hutchinson_vhv(loss: torch.Tensor, params: Sequence[torch.Tensor], probes: int,
                   generator: torch.Generator) -> list[torch.Tensor]:
    """Mean over ``probes`` Rademacher vectors of ``v * (H v)`` for each parameter tensor (same shapes).

    ``H`` is the Hessian of ``loss`` w.r.t. all ``params`` jointly; the products come from one double backward per
    probe (``torch.autograd.grad`` with ``create_graph=True``).
    """
    grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
    live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
    acc = [torch.zeros_like(p) for p in params]
    if not live:
        return acc
    gl = [grads[i] for i in live]
    pl = [params[i] for i in live]
    for k in range(probes):
        vs = [rademacher_like(p, generator) for p in pl]
        hv = torch.autograd.grad(gl, pl, grad_outputs=vs, retain_graph=k < probes - 1, allow_unused=True)
        for i, v, h in zip(live, vs, hv, strict=True):
            if h is not None:
                acc[i] += v * h.detach()
    return [a / probes for a in acc]


def neuron_importance(groups: Sequence[NeuronGroup], traces: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``Tr(H_cc) * ||w_c||^2 / numel(w_c)`` for every neuron of every group (vectorised per group)."""
    out = {}
    for g in groups:
        w = g.per_neuron([p.detach() ** 2 for p in g.params])
        out[g.key] = traces[g.key] * w.sum(dim=1) / w.shape[1]
    return out


def _ranks(v: torch.Tensor) -> torch.Tensor:
    """0-based ranks of ``v`` (float64; ties by position)."""
    r = torch.empty(v.numel(), dtype=torch.float64)
    r[torch.argsort(v, stable=True)] = torch.arange(v.numel(), dtype=torch.float64)
    return r


def rank_reliability(half_a: torch.Tensor, half_b: torch.Tensor, kinds: Sequence[torch.Tensor]) -> float:
    """How reproducible the selection's ranking is: for each pool of neurons ranked together (``kinds``: index
    tensors, SNN neurons of all layers, RNN neurons of all layers), the Spearman correlation between the importance
    averaged over two disjoint halves of the batches, stepped up to the full count by Spearman-Brown
    (``2r / (1 + r)``, for ``r > 0``); the minimum over pools of >= 3 neurons (1.0 when there is none). Selection
    keeps the best ``round(r * total)`` of each pool, so the order, not the magnitudes, is what has to be stable."""
    worst = 1.0
    for idx in kinds:
        if idx.numel() < 3:
            continue
        ra, rb = _ranks(half_a[idx]), _ranks(half_b[idx])
        ra, rb = ra - ra.mean(), rb - rb.mean()
        r = float((ra * rb).sum() / (ra.norm() * rb.norm()))
        worst = min(worst, 2 * r / (1 + r) if r > 0 else max(r, -1.0))  # no step-up for chance or worse
    return worst


def _pools(groups: Sequence[NeuronGroup | GateGroup], alive: torch.Tensor | None) -> list[torch.Tensor]:
    """Index tensors (into the concatenation of the groups' neurons) of the neurons ranked together: one pool per
    kind (SNN of all layers, RNN of all layers), without neurons already removed (``alive`` False)."""
    sizes = [g.size for g in groups]
    offsets = [sum(sizes[:i]) for i in range(len(groups))]
    pools = []
    for kind in sorted({g.kind for g in groups}):
        idx = [torch.arange(o, o + n, dtype=torch.long) for g, o, n in zip(groups, offsets, sizes, strict=True)
               if g.kind is kind]
        ix = torch.cat(idx) if idx else torch.zeros(0, dtype=torch.long)
        pools.append(ix if alive is None else ix[alive[ix]])
    return pools


def _average(estimates: Iterable[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]],
             groups: Sequence[NeuronGroup | GateGroup], *, probes: int, min_batches: int, max_batches: int,
             tolerance: float, rank_target: float | None, alive: torch.Tensor | None, desc: str) -> Importance:
    """Average per-batch ``(traces, scores)`` (dicts keyed by group) until the scores converge (see
    :func:`estimate_importance` for the stopping rules); the result's scores are the mean per-batch scores."""
    keys = [g.key for g in groups]
    pools = _pools(groups, alive)
    sum_tr: dict[str, torch.Tensor] = {}
    sum_imp: torch.Tensor | None = None
    sum_imp2: torch.Tensor | None = None
    halves: list[torch.Tensor | None] = [None, None]  # scores summed over even / odd batches
    history: list[dict[str, float]] = []
    n, rel, rank_rel, converged = 0, math.inf, math.nan, False
    bar = tqdm(total=max_batches, desc=desc, leave=False, unit="batch")
    for tr, sc in estimates:
        imp = torch.cat([sc[k].detach().double().flatten() for k in keys])
        if alive is not None:
            imp = imp * alive  # removed neurons: no score (their gates and weights no longer act)
        for k in keys:
            sum_tr[k] = tr[k].detach() if k not in sum_tr else sum_tr[k] + tr[k].detach()
        sum_imp = imp if sum_imp is None else sum_imp + imp
        sum_imp2 = imp**2 if sum_imp2 is None else sum_imp2 + imp**2
        h = halves[n % 2]
        halves[n % 2] = imp if h is None else h + imp
        n += 1
        bar.update(1)
        if n >= 2:
            mean = sum_imp / n
            var = (sum_imp2 / n - mean**2).clamp_min(0) * n / (n - 1)
            rel = float(var.sum().sqrt() / math.sqrt(n) / mean.norm().clamp_min(1e-30))
            if n >= 4:
                h_even, h_odd = halves
                assert h_even is not None and h_odd is not None  # each half holds a batch once n >= 2
                rank_rel = rank_reliability(h_even, h_odd, pools)
            history.append({"batch": n, "rel_stderr": rel, "rank_reliability": rank_rel})
            bar.set_postfix(rel_stderr=f"{rel:.3g}", rank_rel=f"{rank_rel:.3f}")
            log.debug("%s: batch %d relative standard error %.4g, rank reliability %.4f", desc, n, rel, rank_rel)
            if n >= min_batches and (rel <= tolerance or (rank_target is not None and rank_rel >= rank_target)):
                converged = True
                break
        if n >= max_batches:
            break
    bar.close()
    if n == 0:
        raise LearningError(f"{desc}: no batches to estimate Hessian traces on; the training split is empty")
    assert sum_imp is not None
    traces = {k: v / n for k, v in sum_tr.items()}
    scores = dict(zip(keys, (sum_imp / n).float().split([g.size for g in groups]), strict=True))
    target = f", rank reliability {rank_rel:.3f} vs {rank_target}" if rank_target is not None else \
        f", rank reliability {rank_rel:.3f}"
    if converged:
        log.info("%s: importance converged after %d batches x %d probes (relative std. error %.3g vs %.3g%s)",
                 desc, n, probes, rel, tolerance, target)
    else:
        log.warning("%s: importance NOT converged after %d batches x %d probes (relative std. error %.3g > %.3g%s); "
                    "raise selection.max_batches or selection.probes, or set selection.rank_reliability",
                    desc, n, probes, rel, tolerance, target)
    return Importance(traces=traces, scores=scores, batches=n, probes=probes, rel_stderr=rel,
                      converged=converged, log=history, rank_reliability=rank_rel)


def estimate_importance(loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                        batches: Iterable[tuple[torch.Tensor, torch.Tensor]], groups: Sequence[NeuronGroup], *,
                        probes: int = 1, min_batches: int = 3, max_batches: int = 20, tolerance: float = 0.02,
                        rank_target: float | None = None, seed: int = 0, alive: torch.Tensor | None = None,
                        desc: str = "selection") -> Importance:
    """The paper's importance (Eq. 13, ``Tr(H_cc) ||w_c||^2 / numel(w_c)`` over afferent weights), Hutchinson traces
    averaged over batches until they converge.

    Convergence: after at least ``min_batches`` (and 2) batches, stop when the standard error of the mean
    importance vector (from the spread between batches) is below ``tolerance`` times its L2 norm, or (when
    ``rank_target`` is set, from 4 batches on) when the ranking's split-half reliability (``rank_reliability``, odd
    vs even batches) reaches ``rank_target``; else stop at ``max_batches`` and log that it did not converge. The
    reliability is computed and recorded either way: a per-neuron trace can stay noisy in magnitude (heavy-tailed
    Hutchinson draws) long after the order the selection uses has settled. ``alive`` (bool over the groups' neurons
    in order) leaves neurons already removed out of the scores and the reliability.
    """
    if not groups:
        raise LearningError("no neuron populations to rank: the model exposes no populations()")
    gen = torch.Generator().manual_seed(seed)
    params: list[torch.Tensor] = []
    seen: dict[int, int] = {}
    for g in groups:
        for p in g.params:
            if id(p) not in seen:
                seen[id(p)] = len(params)
                params.append(p)

    def per_batch() -> Iterator[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
        for x, y in batches:
            with sequence.per_step():  # second order: as in removal_saliency, the per-step graph is faster
                loss = loss_fn(x, y)
            vhv = hutchinson_vhv(loss, params, probes, gen)
            tr = {g.key: g.per_neuron([vhv[seen[id(p)]] for p in g.params]).sum(dim=1) for g in groups}
            yield tr, neuron_importance(groups, tr)

    return _average(per_batch(), groups, probes=probes, min_batches=min_batches, max_batches=max_batches,
                    tolerance=tolerance, rank_target=rank_target, alive=alive, desc=desc)


@dataclass(frozen=True)
class GateGroup:
    """One population seen through its output gates: ``size`` neurons of ``kind`` in hidden layer ``layer``."""

    layer: int
    kind: Role
    size: int

    @property
    def key(self) -> str:
        return f"L{self.layer}.{self.kind}"


Gates = list[tuple[torch.Tensor, torch.Tensor]]


def _sample_gates(alive: Sequence[tuple[torch.Tensor, torch.Tensor]], batch: int, dtype: torch.dtype
                  ) -> tuple[Gates, list[torch.Tensor]]:
    """Each sample's own copy ``[B, n]`` of the gates ``alive`` (leaves requiring grad), per layer and flat."""
    gates = [(a_s.to(dtype).expand(batch, -1).clone().requires_grad_(),
              a_r.to(dtype).expand(batch, -1).clone().requires_grad_()) for a_s, a_r in alive]
    return gates, [g for pair in gates for g in pair]


def removal_saliency_fisher(loss_fn: Callable[[torch.Tensor, torch.Tensor, Gates], torch.Tensor], x: torch.Tensor,
                            y: torch.Tensor, alive: Sequence[tuple[torch.Tensor, torch.Tensor]]
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL/da, d2L/da2)`` per neuron as :func:`removal_saliency` returns them, the curvature from the empirical
    Fisher instead of Hutchinson: with per-sample gates, one backward gives every sample's own gate gradient
    ``G_b = dL/da_b = (1/B) dl_b/da``, and ``d2l_b/da2 ~ (dl_b/da)^2`` (the Gauss-Newton/Fisher approximation of a
    log-loss Hessian, exact in expectation under the model's own labels) makes ``d2L/da2 ~ B sum_b G_b^2``. No probe
    noise and no double backward: the estimate's only noise is which windows the batch holds."""
    B = x.shape[0]
    gates, flat = _sample_gates(alive, B, x.dtype)
    grads = torch.autograd.grad(loss_fn(x, y, gates), flat, allow_unused=True)
    per = [g.detach().double() if g is not None else torch.zeros(f.shape, dtype=torch.float64)
           for g, f in zip(grads, flat, strict=True)]
    grad = torch.cat([g.sum(0) for g in per])
    curv = torch.cat([g.square().sum(0) for g in per]) * B
    return grad, curv


def removal_saliency(loss_fn: Callable[[torch.Tensor, torch.Tensor, Gates], torch.Tensor], x: torch.Tensor,
                     y: torch.Tensor, alive: Sequence[tuple[torch.Tensor, torch.Tensor]], *, probes: int,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dL/da, d2L/da2)`` per neuron for the output gates ``a`` of every neuron (``alive``: per layer the SNN and
    RNN 0/1 gate values; 1 = present), on one batch, the curvature by Hutchinson.

    Each *sample* gets its own copy of the gates (``[B, n]``): the loss of sample b depends on its copy only, so the
    Hessian over the copies is block-diagonal by sample and one Rademacher probe over all ``B x n`` copies estimates
    ``d2L/da_c2 = sum_b d2L_b/da_bc2`` with the cross terms of different samples gone (they are independent draws
    that average out): the probe noise grows as ``sqrt(B)`` while the curvature grows as ``B``. The gradient is exact.
    Returns two flat ``[neurons]`` float64 tensors in ``alive``'s order (layer by layer, SNN then RNN).
    """
    B = x.shape[0]
    gates, flat = _sample_gates(alive, B, x.dtype)
    # second order through the network: its per-step graph differentiates twice faster than model.sequence's
    # whole-window nodes (measured: 202-222 vs 254-335 ms per batch of 256 on the paper-width network)
    with sequence.per_step():
        loss = loss_fn(x, y, gates)
    grads = torch.autograd.grad(loss, flat, create_graph=True, allow_unused=True)
    grad = torch.cat([g.detach().sum(0) if g is not None else torch.zeros(f.shape[1], dtype=x.dtype)
                      for g, f in zip(grads, flat, strict=True)]).double()
    live = [i for i, g in enumerate(grads) if g is not None and g.requires_grad]
    curv = [torch.zeros(f.shape[1], dtype=torch.float64) for f in flat]
    for k in range(probes):
        vs = [rademacher_like(flat[i], generator) for i in live]
        hv = torch.autograd.grad([grads[i] for i in live], [flat[i] for i in live], grad_outputs=vs,
                                 retain_graph=k < probes - 1, allow_unused=True)
        for i, v, h in zip(live, vs, hv, strict=True):
            if h is not None:
                curv[i] += (v * h.detach()).sum(0).double()
    return grad, torch.cat(curv) / probes


def estimate_removal_saliency(loss_fn: Callable[[torch.Tensor, torch.Tensor, Gates], torch.Tensor],
                              batches: Iterable[tuple[torch.Tensor, torch.Tensor]], groups: Sequence[GateGroup],
                              alive: Sequence[tuple[torch.Tensor, torch.Tensor]], *, probes: int = 1,
                              min_batches: int = 3, max_batches: int = 20, tolerance: float = 0.02,
                              rank_target: float | None = None, seed: int = 0,
                              desc: str = "selection", fisher: bool = False) -> Importance:
    """Each neuron's removal saliency: the loss change when its output gate goes from 1 to 0, to second order,
    ``dL = -dL/da + 1/2 d2L/da2`` (paper Eq. 8 for the perturbation that removes the neuron: the weights that carry
    its output scaled to zero; the block's own quadratic form, not the trace approximation of Eq. 13; the gradient
    term kept, since a network with neurons already removed is not at a minimum). Averaged over batches with the
    stopping rules of :func:`estimate_importance`; ``traces`` hold the curvature ``d2L/da2``.

    ``loss_fn(x, y, gates)`` is the mean loss with ``gates`` (per layer ``(g_snn[B, n_snn], g_rnn[B, n_rnn])``)
    multiplying the populations' outputs; ``groups`` lists the populations (empty ones included) in that order.
    ``fisher``: the curvature by :func:`removal_saliency_fisher` (``probes`` unused).
    """
    if not groups:
        raise LearningError("no neuron populations to rank: the model has no hidden layers")
    gen = torch.Generator().manual_seed(seed)
    flat_alive = torch.cat([m.bool() for pair in alive for m in pair])
    sizes = [g.size for g in groups]

    def per_batch() -> Iterator[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
        for x, y in batches:
            grad, curv = (removal_saliency_fisher(loss_fn, x, y, alive) if fisher else
                          removal_saliency(loss_fn, x, y, alive, probes=probes, generator=gen))
            sal = 0.5 * curv - grad
            yield (dict(zip((g.key for g in groups), curv.split(sizes), strict=True)),
                   dict(zip((g.key for g in groups), sal.split(sizes), strict=True)))

    return _average(per_batch(), groups, probes=probes, min_batches=min_batches, max_batches=max_batches,
                    tolerance=tolerance, rank_target=rank_target, alive=flat_alive, desc=desc)


def weights_hash(model: nn.Module) -> str:
    """SHA-256 over the model's state (names, shapes, values): the cache key of its importance scores."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_importance(path: Path | str, imp: Importance, key: str) -> Path:
    """Write ``imp`` (safetensors + JSON metadata) atomically; ``key`` identifies model weights and settings."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"trace.{k}": v.contiguous() for k, v in imp.traces.items()}
    tensors |= {f"score.{k}": v.contiguous() for k, v in imp.scores.items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"format": CACHE_FORMAT, "key": key, "meta": json.dumps(imp.meta())})
    tmp.replace(path)
    return path


def load_importance(path: Path | str, key: str) -> Importance | None:
    """The cached importance at ``path`` if it exists and was computed for ``key``; else None."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            md = fh.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        log.warning("%s: unreadable importance cache (%s); recomputing", path, exc)
        return None
    if md.get("format") != CACHE_FORMAT or md.get("key") != key:
        return None
    meta = json.loads(md.get("meta", "{}"))
    return Importance(
        traces={k.removeprefix("trace."): v for k, v in tensors.items() if k.startswith("trace.")},
        scores={k.removeprefix("score."): v for k, v in tensors.items() if k.startswith("score.")},
        batches=int(meta.get("batches", 0)), probes=int(meta.get("probes", 0)),
        rel_stderr=float(meta.get("rel_stderr", math.nan)), converged=bool(meta.get("converged", False)),
        log=list(meta.get("log", [])), rank_reliability=float(meta.get("rank_reliability", math.nan)),
    )
