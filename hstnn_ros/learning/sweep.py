"""The three-stage learning pipeline and the resumable sweep over SNN ratios and seeds.

A sweep is a list of *units* (the Adaptation network of a seed; Selection + Restoration at a ratio and seed; the
directly-hybrid baseline at a ratio and seed, which at r = 0 / r = 1 is the pure RNN / SNN). Each unit is built in
a temporary directory and renamed into ``units/<name>/`` when complete (bundle + ``result.json``), so an
interrupted sweep loses at most the unit in progress and a rerun skips every finished unit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import torch
from torch import nn
from tqdm.auto import tqdm

from hstnn_ros.datasets.features import FeatureSet
from hstnn_ros.learning import network as net
from hstnn_ros.learning.config import TrainConfig, population_sizes
from hstnn_ros.learning.data import Split, TrainData, iter_batches, prepare_data
from hstnn_ros.learning.enums import SelectionCriterion, UnitKind
from hstnn_ros.learning.errors import LearningError
from hstnn_ros.learning.hessian import (
    Importance,
    estimate_importance,
    estimate_removal_saliency,
    load_importance,
    save_importance,
    weights_hash,
)
from hstnn_ros.learning.ranking import Kept, LayerScores, select_counts, select_fixed, select_random
from hstnn_ros.learning.report import build_report, write_report
from hstnn_ros.learning.trainer import evaluate, fit
from hstnn_ros.model.enums import Role

if TYPE_CHECKING:
    from hstnn_ros.model.network import HSTNN

log = logging.getLogger(__name__)

RESULT = "result.json"
BUNDLE = "bundle"


class _EstimateOptions(TypedDict):
    """Keyword arguments that ``estimate_importance`` and ``estimate_removal_saliency`` share."""

    probes: int
    min_batches: int
    max_batches: int
    tolerance: float
    rank_target: float | None
    seed: int
    desc: str


@dataclass(frozen=True)
class Unit:
    """One resumable piece of a sweep."""

    kind: UnitKind
    seed: int
    ratio: float | None = None

    @property
    def name(self) -> str:
        if self.kind is UnitKind.ADAPTATION:
            return f"adaptation_s{self.seed}"
        return f"{self.kind.value}_r{self.ratio:.4f}_s{self.seed}"


def plan_units(cfg: TrainConfig) -> list[Unit]:
    """Every unit of the sweep in execution order (each seed's Adaptation before the HSTNNs that use it)."""
    units: list[Unit] = []
    for seed in cfg.sweep.seeds:
        units.append(Unit(UnitKind.ADAPTATION, seed))
        units += [Unit(UnitKind.HSTNN, seed, float(r)) for r in cfg.sweep.ratios]
        if cfg.sweep.direct_baselines:
            units += [Unit(UnitKind.DIRECT, seed, float(r)) for r in cfg.sweep.ratios]
    return units


def _metrics(model: nn.Module, data: TrainData, cfg: TrainConfig) -> dict[str, dict[str, float]]:
    tol, bs = cfg.eval.recall_tolerance, cfg.eval.batch_size
    return {"val": evaluate(model, data.val, tolerance=tol, batch_size=bs).to_dict(),
            "test": evaluate(model, data.test, tolerance=tol, batch_size=bs).to_dict()}


def _kept_json(kept: list[Kept]) -> list[dict[str, list[int]]]:
    return [{"snn": k.snn.tolist(), "rnn": k.rnn.tolist()} for k in kept]


def _overlap(a: list[Kept], b: list[Kept]) -> float:
    """Fraction of kept neurons that two selections share (same layer, same population, same index)."""
    same = sum(len(set(x.snn.tolist()) & set(y.snn.tolist())) + len(set(x.rnn.tolist()) & set(y.rnn.tolist()))
               for x, y in zip(a, b, strict=True))
    total = sum(k.size for k in a)
    return same / total if total else 1.0


class Sweep:
    """Runs the units of one training config on one feature set into ``out_dir``."""

    def __init__(self, cfg: TrainConfig, fs: FeatureSet, out_dir: Path | str, *, name: str = "feature set") -> None:
        self.cfg = cfg
        self.out = Path(out_dir)
        self.data = prepare_data(fs, name=name)
        self.fs_meta = dict(fs.meta)
        self.units_dir = self.out / "units"
        self.cache_dir = self.out / "cache"
        # Build one redundant network now so that a bad network.model section or size fails before training.
        net.build_model(cfg, self.data, self.adapt_sizes(), seed=0)
        ep = cfg.epochs
        if cfg.sweep.direct_baselines and ep.direct_epochs != ep.hstnn_epochs:
            log.warning("baselines get %d epochs, the three-stage models %d (adaptation %d + restoration %d): the "
                        "comparison is not at equal total epochs (set epochs.direct: null for that)",
                        ep.direct_epochs, ep.hstnn_epochs, ep.adaptation, ep.restoration)

    # -- shapes ---------------------------------------------------------------------------------------------------
    def adapt_sizes(self) -> list[tuple[int, int]]:
        """M SNN + M RNN per hidden layer (the redundant Adaptation network)."""
        return [(m, m) for m in self.cfg.network.hidden]

    def _ops_x(self) -> torch.Tensor:
        """The windows ops are measured on: ``eval.ops_samples`` spread evenly over the whole test split (every test
        traversal, start to end), not its first windows (the start of one traversal)."""
        return self.data.test.x[spread_indices(len(self.data.test), self.cfg.eval.ops_samples)]

    # -- bookkeeping ----------------------------------------------------------------------------------------------
    def unit_dir(self, unit: Unit) -> Path:
        return self.units_dir / unit.name

    def is_done(self, unit: Unit) -> bool:
        return (self.unit_dir(unit) / RESULT).is_file()

    def _commit(self, unit: Unit, tmp: Path, result: dict[str, Any]) -> dict[str, Any]:
        (tmp / RESULT).write_text(json.dumps(result, indent=1))
        final = self.unit_dir(unit)
        if final.exists():
            shutil.rmtree(final)
        tmp.replace(final)
        return result

    def _tmp(self, unit: Unit) -> Path:
        tmp = self.units_dir / f".tmp-{unit.name}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        return tmp

    def _meta(self, unit: Unit, model: HSTNN, extra: dict[str, Any]) -> dict[str, Any]:
        return {"unit": unit.name, "kind": unit.kind.value, "seed": unit.seed, "snn_ratio": unit.ratio,
                "sizes": net.sizes_of(model), "place_count": self.data.num_classes,
                "data_fingerprint": self.data.fingerprint, "train_config": self.cfg.to_dict(),
                "versions": {"torch": torch.__version__}, **self._frontends(unit), **extra}

    def _frontends(self, unit: Unit) -> dict[str, Any]:
        """The front-ends the feature set was cached with, as the unit's bundle names them (a path relative to
        ``units/<unit>/bundle``, the same from the temporary directory it is written in, and their digest), so
        that the bundle replays and deploys as it is. Nothing for feature sets that do not record them."""
        fe = self.fs_meta.get("frontend_bundle")
        if not fe:
            return {}
        here = (self.out / "units" / unit.name / BUNDLE).resolve()
        return {"frontend_bundle": Path(os.path.relpath(Path(fe).resolve(), here)).as_posix(),
                "frontend_sha256": self.fs_meta.get("frontend_sha256"),
                "events_only": bool(self.fs_meta.get("events_only", False))}

    def check_resume(self) -> None:
        """Refuse to mix units of different recipes or data in one output directory (only the sweep's ratios and
        seeds may change between runs); record the recipe and data fingerprint on the first run."""
        path = self.out / "sweep.json"
        recipe = {k: v for k, v in self.cfg.to_dict().items() if k != "sweep"}
        mine = {"recipe": recipe, "data_fingerprint": self.data.fingerprint}
        if path.is_file():
            prev = json.loads(path.read_text())
            if prev.get("data_fingerprint") != self.data.fingerprint:
                raise LearningError(f"{self.out}: holds a sweep on other data (fingerprint "
                                    f"{str(prev.get('data_fingerprint'))[:12]}...); use a new --out directory")
            if prev.get("recipe") != recipe:
                changed = sorted(k for k in recipe if prev.get("recipe", {}).get(k) != recipe[k])
                raise LearningError(f"{self.out}: holds a sweep with a different recipe (sections {changed} "
                                    f"differ); only sweep.ratios/seeds may change on resume; use a new --out")
        else:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(mine, indent=1))
            tmp.replace(path)

    # -- stages ---------------------------------------------------------------------------------------------------
    def _fit(self, model: nn.Module, epochs: int, seed: int, desc: str) -> dict[str, Any]:
        res = fit(model, self.data.train, self.data.val, self.cfg.optim, epochs=epochs,
                  patience=self.cfg.epochs.patience, seed=seed, tolerance=self.cfg.eval.recall_tolerance, desc=desc)
        return res.to_dict()

    def run_adaptation(self, unit: Unit) -> dict[str, Any]:
        """Stage 1: train the redundant M SNN + M RNN network with BPTT, checkpoint on validation."""
        t0 = time.perf_counter()
        model = net.build_model(self.cfg, self.data, self.adapt_sizes(), seed=unit.seed)
        fit_res = self._fit(model, self.cfg.epochs.adaptation, unit.seed, f"adapt s{unit.seed}")
        result = {"unit": unit.name, "kind": unit.kind.value, "seed": unit.seed, "snn_ratio": None,
                  "sizes": net.sizes_of(model), "fit": fit_res, **_metrics(model, self.data, self.cfg),
                  **net.measure_ops(model, self._ops_x())}
        result["seconds"] = time.perf_counter() - t0
        result["training"] = {"epochs_budget": self.cfg.epochs.adaptation, "epochs_run": int(fit_res["epochs_run"]),
                              "seconds": result["seconds"]}
        tmp = self._tmp(unit)
        net.save_model(tmp / BUNDLE, model, self._meta(unit, model, {"metrics": result["test"]}))
        return self._commit(unit, tmp, result)

    def importance(self, model: HSTNN, seed: int, alive: Alive | None = None) -> Importance:
        """Stage 2a: per-neuron scores of an adapted model with the neurons outside ``alive`` removed (default: none
        removed), cached by weights hash and ``alive`` (the first round's scores are reused by every ratio)."""
        sel = self.cfg.selection
        alive = alive if alive is not None else _all_alive(model)
        mask_key = hashlib.sha256(b"".join(torch.cat([a, b]).numpy().tobytes() for a, b in alive)).hexdigest()
        key = json.dumps({"weights": weights_hash(model), "criterion": sel.criterion.value, "probes": sel.probes,
                          "batch": sel.batch_size, "min": sel.min_batches, "max": sel.max_batches,
                          "tol": sel.tolerance, "rank": sel.rank_reliability, "seed": seed, "alive": mask_key,
                          "data": self.data.fingerprint}, sort_keys=True)
        path = self.cache_dir / f"importance_{weights_hash(model)[:16]}_{mask_key[:12]}_s{seed}.safetensors"
        cached = load_importance(path, key)
        if cached is not None:
            log.info("selection: reusing cached importance %s", path)
            return cached
        model.eval()
        device = next(model.parameters()).device
        gen = torch.Generator().manual_seed(seed)
        batches = _cycle(self.data.train, sel.batch_size, gen)
        n_removed = sum(int((~a).sum() + (~b).sum()) for a, b in alive)
        desc = f"selection s{seed}" + (f" ({n_removed} removed)" if n_removed else "")
        common: _EstimateOptions = {
            "probes": sel.probes, "min_batches": sel.min_batches, "max_batches": sel.max_batches,
            "tolerance": sel.tolerance, "rank_target": sel.rank_reliability, "seed": seed, "desc": desc}
        if sel.criterion in (SelectionCriterion.REMOVAL, SelectionCriterion.REMOVAL_FISHER):
            def gated_loss(x: torch.Tensor, y: torch.Tensor, gates: list[tuple[torch.Tensor, torch.Tensor]]
                           ) -> torch.Tensor:
                return nn.functional.cross_entropy(model.run(x.to(device), gates=gates).logits, y.to(device))

            imp = estimate_removal_saliency(gated_loss, batches, net.gate_groups(model),
                                            [(a.to(device), b.to(device)) for a, b in alive],
                                            fisher=sel.criterion is SelectionCriterion.REMOVAL_FISHER, **common)
        else:
            keep = None if n_removed == 0 else net.kept_of(alive)

            def loss_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                return nn.functional.cross_entropy(model.run(x.to(device), keep=keep).logits, y.to(device))

            groups = net.neuron_groups(model)
            flat = torch.cat([alive[g.layer][0 if g.kind is Role.SNN else 1] for g in groups])
            imp = estimate_importance(loss_fn, batches, groups, alive=flat, **common)
        save_importance(path, imp, key)
        return imp

    def select(self, model: HSTNN, ratio: float, seed: int) -> tuple[list[Kept], list[Importance]]:
        """Stage 2b: prune the adapted network to the sizes of ``ratio`` in ``selection.rounds`` steps, each keeping
        the best-scored neurons still present (grouped global ranking, or fixed hardware-friendly layer sizes) and
        re-scoring them on the network without the neurons removed so far. Returns the kept neurons and each
        round's scores (none when the ratio leaves no choice, e.g. keeping every RNN neuron and no SNN one)."""
        sel = self.cfg.selection
        sizes = net.sizes_of(model)
        # per round, the target sizes: hardware-friendly, (n_snn, n_rnn) of every layer; else the totals
        fixed: list[list[tuple[int, int]]] = []
        counts: list[tuple[int, int]] = []
        if sel.hardware_friendly:
            final = population_sizes(self.cfg, ratio)
            fixed = [[(_step(s0, s1, k, sel.rounds), _step(r0, r1, k, sel.rounds))
                      for (s0, r0), (s1, r1) in zip(sizes, final, strict=True)] for k in range(1, sel.rounds + 1)]
            forced = all(s1 in (0, s0) and r1 in (0, r0) for (s0, r0), (s1, r1) in zip(sizes, final, strict=True))
        else:
            total = sum(self.cfg.network.hidden)
            n_snn = round(ratio * total)
            avail_s, avail_r = sum(s for s, _ in sizes), sum(r for _, r in sizes)
            counts = [(_step(avail_s, n_snn, k, sel.rounds), _step(avail_r, total - n_snn, k, sel.rounds))
                      for k in range(1, sel.rounds + 1)]
            forced = n_snn in (0, avail_s) and total - n_snn in (0, avail_r)
        alive = _all_alive(model)
        rounds: list[Importance] = []
        for rnd in range(sel.rounds) if not forced else [sel.rounds - 1]:
            if forced:  # nothing to choose: every neuron of a kind is kept or none is
                layers = [LayerScores(snn=torch.zeros(s), rnn=torch.zeros(r)) for s, r in sizes]
            else:
                imp = self.importance(model, seed, alive)
                rounds.append(imp)
                layers = [LayerScores(snn=lay.snn.masked_fill(~a, -torch.inf), rnn=lay.rnn.masked_fill(~b, -torch.inf))
                          for lay, (a, b) in zip(net.layer_scores(model, imp.scores), alive, strict=True)]
            if sel.hardware_friendly:
                kept = select_fixed(layers, fixed[rnd])
            else:
                kept = select_counts(layers, *counts[rnd], policy=sel.empty_layer,
                                     need_both=sel.keep_both_populations and 0.0 < ratio < 1.0,
                                     what=f"SNN ratio {ratio}")
            alive = [(_mask(k.snn, s), _mask(k.rnn, r)) for k, (s, r) in zip(kept, sizes, strict=True)]
        return kept, rounds

    def run_hstnn(self, unit: Unit) -> dict[str, Any]:
        """Stages 2 and 3 at one ratio: select from the seed's adapted network, shrink, retrain (Restoration)."""
        assert unit.ratio is not None
        t0 = time.perf_counter()
        adapted, _ = net.load_model(self.unit_dir(Unit(UnitKind.ADAPTATION, unit.seed)) / BUNDLE,
                                    device=self.cfg.optim.device)
        t_sel = time.perf_counter()
        kept, rounds = self.select(adapted, unit.ratio, unit.seed)
        t_sel = time.perf_counter() - t_sel
        model = net.shrink_model(adapted, kept)
        selected = _metrics(model, self.data, self.cfg)
        result: dict[str, Any] = {"unit": unit.name, "kind": unit.kind.value, "seed": unit.seed,
                                  "snn_ratio": unit.ratio, "kept": _kept_json(kept), "selected": selected,
                                  "importance": _importance_meta(self.cfg.selection.criterion, rounds),
                                  "selection_seconds": t_sel}
        if self.cfg.sweep.random_control and rounds:  # forced sizes (e.g. ratio 0 or 1) leave no choice to randomise
            full = [LayerScores(snn=torch.zeros(s), rnn=torch.zeros(r)) for s, r in net.sizes_of(adapted)]
            rnd = select_random(full, kept, seed=unit.seed + 7919)
            control = net.shrink_model(adapted, rnd)
            result["random"] = _metrics(control, self.data, self.cfg)
            result["overlap_with_random"] = _overlap(kept, rnd)
            if self.cfg.sweep.random_restoration:
                fit_rnd = self._fit(control, self.cfg.epochs.restoration, unit.seed,
                                    f"restore random r={unit.ratio:g} s{unit.seed}")
                result["random"]["restored"] = {"fit": fit_rnd, **_metrics(control, self.data, self.cfg)}
        result["fit"] = self._fit(model, self.cfg.epochs.restoration, unit.seed,
                                  f"restore r={unit.ratio:g} s{unit.seed}")
        result |= _metrics(model, self.data, self.cfg)
        result |= {"sizes": net.sizes_of(model), **net.measure_ops(model, self._ops_x())}
        result["seconds"] = time.perf_counter() - t0
        adapt = json.loads((self.unit_dir(Unit(UnitKind.ADAPTATION, unit.seed)) / RESULT).read_text())
        # the whole three-stage training, for the comparison with the baselines at equal total epochs
        result["training"] = {"epochs_budget": self.cfg.epochs.hstnn_epochs,
                              "epochs_run": int(adapt["fit"]["epochs_run"]) + int(result["fit"]["epochs_run"]),
                              "seconds": float(adapt["seconds"]) + result["seconds"]}
        tmp = self._tmp(unit)
        net.save_model(tmp / BUNDLE, model, self._meta(unit, model, {
            "kept": result["kept"], "metrics": result["test"], "selected_metrics": selected["test"]}))
        return self._commit(unit, tmp, result)

    def run_direct(self, unit: Unit) -> dict[str, Any]:
        """Baseline: a network of the final sizes trained from scratch (r = 0: pure RNN, r = 1: pure SNN)."""
        assert unit.ratio is not None
        t0 = time.perf_counter()
        sizes = population_sizes(self.cfg, unit.ratio)
        model = net.build_model(self.cfg, self.data, sizes, seed=unit.seed)
        fit_res = self._fit(model, self.cfg.epochs.direct_epochs, unit.seed, f"direct r={unit.ratio:g} s{unit.seed}")
        result = {"unit": unit.name, "kind": unit.kind.value, "seed": unit.seed, "snn_ratio": unit.ratio,
                  "sizes": net.sizes_of(model), "fit": fit_res, **_metrics(model, self.data, self.cfg),
                  **net.measure_ops(model, self._ops_x())}
        result["seconds"] = time.perf_counter() - t0
        result["training"] = {"epochs_budget": self.cfg.epochs.direct_epochs,
                              "epochs_run": int(fit_res["epochs_run"]), "seconds": result["seconds"]}
        tmp = self._tmp(unit)
        net.save_model(tmp / BUNDLE, model, self._meta(unit, model, {"metrics": result["test"]}))
        return self._commit(unit, tmp, result)

    def run_unit(self, unit: Unit) -> dict[str, Any]:
        runner = {UnitKind.ADAPTATION: self.run_adaptation, UnitKind.HSTNN: self.run_hstnn,
                  UnitKind.DIRECT: self.run_direct}[unit.kind]
        return runner(unit)

    def run(self, *, plots: bool = True) -> dict[str, Any]:
        """Run every unfinished unit, then write ``report.json`` (and plots) over every finished unit."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.units_dir.mkdir(exist_ok=True)
        self.check_resume()
        units = plan_units(self.cfg)
        todo = [u for u in units if not self.is_done(u)]
        if len(todo) < len(units):
            log.info("resuming: %d of %d units already done", len(units) - len(todo), len(units))
        failures: dict[str, str] = {}
        for unit in tqdm(todo, desc="sweep", unit="unit"):
            if unit.kind is UnitKind.HSTNN and not self.is_done(Unit(UnitKind.ADAPTATION, unit.seed)):
                failures[unit.name] = "its adaptation unit failed"
                continue
            try:
                self.run_unit(unit)
            except LearningError as exc:  # a refused unit (e.g. an empty layer) must not lose the others
                log.error("unit %s refused: %s", unit.name, exc)
                failures[unit.name] = str(exc)
        return self.finish(units, failures, plots=plots)

    def finish(self, units: list[Unit], failures: dict[str, str], *, plots: bool = True) -> dict[str, Any]:
        """``report.json`` (and plots) over every finished unit of ``units``; how they ran does not matter (here,
        in Ray workers, in an earlier interrupted run)."""
        results = [json.loads((self.unit_dir(u) / RESULT).read_text()) for u in units if self.is_done(u)]
        report = build_report(results, self.cfg, fingerprint=self.data.fingerprint, failures=failures)
        write_report(self.out, report, plots=plots)
        return report


Alive = list[tuple[torch.Tensor, torch.Tensor]]


def _all_alive(model: HSTNN) -> Alive:
    return [(torch.ones(s, dtype=torch.bool), torch.ones(r, dtype=torch.bool)) for s, r in net.sizes_of(model)]


def _mask(idx: torch.Tensor, n: int) -> torch.Tensor:
    m = torch.zeros(n, dtype=torch.bool)
    m[idx] = True
    return m


def _step(start: int, end: int, k: int, rounds: int) -> int:
    """Neurons kept after round ``k`` of ``rounds`` when going from ``start`` to ``end`` in equal steps."""
    return end if k == rounds else round(start - (start - end) * k / rounds)


def _importance_meta(criterion: SelectionCriterion, rounds: list[Importance]) -> dict[str, Any]:
    """What a unit records about its Selection: every round's estimate, and over the rounds the batches used, the
    worst ranking reliability and whether all converged."""
    if not rounds:
        return {"criterion": criterion.value, "rounds": [], "batches": 0}
    return {"criterion": criterion.value, "rounds": [r.meta() for r in rounds],
            "batches": sum(r.batches for r in rounds), "probes": rounds[0].probes,
            "rank_reliability": min((r.rank_reliability for r in rounds if not math.isnan(r.rank_reliability)),
                                    default=math.nan),
            "first_round_rank_reliability": rounds[0].rank_reliability,
            "converged": all(r.converged for r in rounds)}


def spread_indices(n: int, k: int) -> torch.Tensor:
    """``min(k, n)`` distinct indices spread evenly over ``0..n-1`` (first and last included)."""
    if k >= n:
        return torch.arange(n)
    return torch.linspace(0, n - 1, k, dtype=torch.float64).round().long().unique()


def _cycle(split: Split, batch_size: int, gen: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless shuffled passes over ``split`` in full batches of ``batch_size`` (the whole split when it is smaller),
    so max_batches may exceed one epoch of a small training split. A pass's incomplete last batch is left out (the
    next pass reshuffles): every batch's estimate is a mean over equally many windows, so no small batch adds its
    larger noise to the average and the split-half reliability compares like with like."""
    size = min(batch_size, len(split))
    while True:
        for x, y in iter_batches(split, size, generator=gen):
            if len(y) == size:
                yield x, y


def run_sweep(cfg: TrainConfig, fs: FeatureSet, out_dir: Path | str, *, name: str = "feature set",
              plots: bool = True) -> dict[str, Any]:
    """Train and evaluate everything ``cfg.sweep`` asks for into ``out_dir`` (resumable); returns the report."""
    return Sweep(cfg, fs, out_dir, name=name).run(plots=plots)
