"""The measurements behind docs/reports/selection.md (issue 16): how reliable and how costly each Selection estimator
is, and whether the networks it selects beat randomly chosen neurons before and after Restoration.

    python docs/reports/selection_evidence.py --out DIR [--route-features FEATURES.safetensors] [--seeds 0 1 2]

Datasets: scikit-learn's digits (each 8x8 image read row by row: 8 steps of 8 features, as test_learning_sweep.py)
and, with ``--route-features``, a feature set of a small synthetic route (built as selection.md says). Per dataset
and seed the Adaptation network is trained once (``Sweep.run_adaptation``), then:

* reliability: each estimator setting runs 32 batches without stopping; the split-half reliability of its ranking
  after 4, 8, 16 and 32 batches, and its cost in Adaptation epochs (seconds per batch / median seconds of 3 epochs);
* selection: at SNN ratios 0.5 and 0.9, each method's shrunk network (test top-1 and loss before Restoration), and
  after Restoration (``epochs.restoration``) for the default method, the paper's one-shot ranking and one random
  draw; random selections of the same sizes: mean and sd of 10 draws.

Everything is written to ``DIR/evidence.json`` (re-running skips finished parts) and ``DIR/selection.png``; the
tables of selection.md are printed. Single-threaded; run it under ``nice`` on a shared machine.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hstnn_ros.datasets.features import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, FeatureSet, load_feature_set
from hstnn_ros.learning import config_from_dict
from hstnn_ros.learning import network as net
from hstnn_ros.learning.enums import UnitKind
from hstnn_ros.learning.ranking import Kept, LayerScores, select_random
from hstnn_ros.learning.sweep import Sweep, Unit
from hstnn_ros.learning.trainer import evaluate, fit
from hstnn_ros.plotting import pyplot, save_figure

RATIOS = (0.5, 0.9)
RANDOM_DRAWS = 10
#: estimator settings of the reliability experiment: (criterion, probes, batch size)
SETTINGS = (("removal", 1, 256), ("removal", 4, 256), ("trace", 1, 128), ("trace", 8, 256))
#: selection methods: name -> selection section (on top of the dataset's recipe)
METHODS: dict[str, dict[str, Any]] = {
    # what shipped before issue 16: the paper's Eq. 13 ranking, one shot, 1 probe x 128 windows, <= 40 batches
    "paper (trace, one-shot)": {"criterion": "trace", "rounds": 1, "probes": 1, "batch_size": 128,
                                "min_batches": 3, "max_batches": 40, "tolerance": 0.15, "rank_reliability": None},
    "trace, 16 rounds": {"criterion": "trace", "rounds": 16, "probes": 4},
    "removal, one-shot": {"criterion": "removal", "rounds": 1},
    "removal, 16 rounds (default)": {},
}
DEFAULT, PAPER = "removal, 16 rounds (default)", "paper (trace, one-shot)"


def digits_features() -> FeatureSet:
    """scikit-learn digits as ``[N, 8 steps, 8 features]`` windows; 60 / 20 / 20 % train / val / test (seed 0)."""
    from sklearn.datasets import load_digits  # noqa: PLC0415

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)
    n = len(x)
    split = np.full(n, SPLIT_TRAIN, np.int8)
    perm = np.random.default_rng(0).permutation(n)
    split[perm[: n // 5]] = SPLIT_VAL
    split[perm[n // 5: 2 * n // 5]] = SPLIT_TEST
    return FeatureSet(features=x, labels=d.target.astype(np.int64), split=split, group=np.arange(n, dtype=np.int32),
                      env=np.zeros(n, np.int8), num_classes=10, meta={"source": "sklearn.load_digits"})


RECIPES: dict[str, dict[str, Any]] = {
    "digits": {"network": {"hidden": [24, 24]}, "optim": {"lr": 5e-3, "batch_size": 64},
               "epochs": {"adaptation": 40, "restoration": 20, "patience": 8}},
    "route": {"network": {"hidden": [64, 64]}, "optim": {"lr": 2e-3, "batch_size": 32},
              "epochs": {"adaptation": 40, "restoration": 20, "patience": 10}},
}


def _cfg(dataset: str, seeds: list[int], selection: dict[str, Any] | None = None) -> Any:
    raw = copy.deepcopy(RECIPES[dataset])
    raw["selection"] = dict(selection or {})
    raw["sweep"] = {"ratios": list(RATIOS), "seeds": seeds, "direct_baselines": False}
    raw["eval"] = {"recall_tolerance": 1}
    return config_from_dict(raw)


def _adapted(sweep: Sweep, seed: int) -> nn.Module:
    unit = Unit(UnitKind.ADAPTATION, seed)
    if not sweep.is_done(unit):
        sweep.units_dir.mkdir(parents=True, exist_ok=True)
        sweep.run_adaptation(unit)
    model, _ = net.load_model(sweep.unit_dir(unit) / "bundle")
    return model.eval()


def _epoch_seconds(sweep: Sweep, model: nn.Module) -> float:
    times = []
    for _ in range(3):
        m = copy.deepcopy(model)
        t0 = time.perf_counter()
        fit(m, sweep.data.train, sweep.data.val, sweep.cfg.optim, epochs=1, patience=1, seed=0, desc="epoch")
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def reliability(dataset: str, fs: FeatureSet, out: Path, seeds: list[int], done: dict) -> list[dict]:
    rows = done.setdefault("reliability", {}).setdefault(dataset, [])
    have = {(r["seed"], r["criterion"], r["probes"], r["batch_size"]) for r in rows}
    base = Sweep(_cfg(dataset, seeds), fs, out / dataset)
    for seed in seeds:
        model = _adapted(base, seed)
        epoch_s = None
        for crit, probes, bs in SETTINGS:
            if (seed, crit, probes, bs) in have:
                continue
            epoch_s = epoch_s or _epoch_seconds(base, model)
            sel = {"criterion": crit, "probes": probes, "batch_size": bs, "min_batches": 32, "max_batches": 32,
                   "tolerance": 0.0, "rank_reliability": None}
            sweep = Sweep(_cfg(dataset, seeds, sel), fs, out / dataset / "reliability")
            for f in sweep.cache_dir.glob("importance_*"):
                f.unlink()
            t0 = time.perf_counter()
            imp = sweep.importance(model, seed)
            per_batch = (time.perf_counter() - t0) / imp.batches
            rel = {h["batch"]: h["rank_reliability"] for h in imp.log}
            rows.append({"seed": seed, "criterion": crit, "probes": probes, "batch_size": bs, "epoch_s": epoch_s,
                         "batch_s": per_batch, "reliability": {str(n): rel[n] for n in (4, 8, 16, 32)}})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _test(model: nn.Module, sweep: Sweep) -> dict[str, float]:
    m = evaluate(model, sweep.data.test, tolerance=1)
    return {"top1": m.top1, "loss": m.loss}


def _restore(model: nn.Module, sweep: Sweep, seed: int) -> dict[str, float]:
    model = copy.deepcopy(model)
    fit(model, sweep.data.train, sweep.data.val, sweep.cfg.optim, epochs=sweep.cfg.epochs.restoration,
        patience=sweep.cfg.epochs.patience, seed=seed, desc="restore")
    return _test(model, sweep)


def selection(dataset: str, fs: FeatureSet, out: Path, seeds: list[int], done: dict) -> list[dict]:
    rows = done.setdefault("selection", {}).setdefault(dataset, [])
    have = {(r["seed"], r["ratio"], r["method"]) for r in rows}
    base = Sweep(_cfg(dataset, seeds), fs, out / dataset)
    for seed in seeds:
        model = _adapted(base, seed)
        for ratio in RATIOS:
            like: list[Kept] | None = None
            for name, sel in METHODS.items():
                if (seed, ratio, name) in have:
                    continue
                sweep = Sweep(_cfg(dataset, seeds, sel), fs, out / dataset / "selection")
                t0 = time.perf_counter()
                kept, rounds = sweep.select(model, ratio, seed)
                seconds = time.perf_counter() - t0
                like = kept
                small = net.shrink_model(model, kept)
                row = {"seed": seed, "ratio": ratio, "method": name, "selected": _test(small, sweep),
                       "seconds": seconds, "batches": sum(r.batches for r in rounds),
                       "rank_reliability": [r.rank_reliability for r in rounds]}
                if name in (DEFAULT, PAPER):
                    row["restored"] = _restore(small, sweep, seed)
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "rank_reliability"}), flush=True)
            if (seed, ratio, "random") in have or like is None:
                continue
            full = [LayerScores(snn=torch.zeros(s), rnn=torch.zeros(r)) for s, r in net.sizes_of(model)]
            draws = [_test(net.shrink_model(model, select_random(full, like, seed=1000 * seed + j)), base)
                     for j in range(RANDOM_DRAWS)]
            row = {"seed": seed, "ratio": ratio, "method": "random",
                   "selected": {k: float(np.mean([d[k] for d in draws])) for k in ("top1", "loss")},
                   "selected_sd": {k: float(np.std([d[k] for d in draws])) for k in ("top1", "loss")},
                   "restored": _restore(net.shrink_model(model, select_random(full, like, seed=1000 * seed)), base,
                                        seed)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _ms(values: list[float]) -> str:
    return f"{np.mean(values):.3f} +- {np.std(values, ddof=1) if len(values) > 1 else 0.0:.3f}"


def tables(done: dict) -> str:
    """The markdown tables of selection.md."""
    lines = ["| dataset | criterion | probes x batch | rel. @4 | @8 | @16 | @32 | epochs per batch |",
             "|---|---|---|---|---|---|---|---|"]
    for ds, rows in done.get("reliability", {}).items():
        for crit, probes, bs in SETTINGS:
            rs = [r for r in rows if (r["criterion"], r["probes"], r["batch_size"]) == (crit, probes, bs)]
            if rs:
                rel = [_ms([r["reliability"][n] for r in rs]) for n in ("4", "8", "16", "32")]
                cost = _ms([r["batch_s"] / r["epoch_s"] for r in rs])
                lines.append(f"| {ds} | {crit} | {probes} x {bs} | " + " | ".join(rel) + f" | {cost} |")
    lines += ["", "| dataset | ratio | method | test top-1 before Restoration | after Restoration | "
                  "Selection s | batches |", "|---|---|---|---|---|---|---|"]
    for ds, rows in done.get("selection", {}).items():
        for ratio in RATIOS:
            for name in [*METHODS, "random"]:
                rs = [r for r in rows if r["ratio"] == ratio and r["method"] == name]
                if not rs:
                    continue
                after = _ms([r["restored"]["top1"] for r in rs]) if all("restored" in r for r in rs) else "-"
                secs = _ms([r["seconds"] for r in rs]) if all("seconds" in r for r in rs) else "-"
                batches = f"{np.mean([r['batches'] for r in rs]):.0f}" if all("batches" in r for r in rs) else "-"
                lines.append(f"| {ds} | {ratio} | {name} | {_ms([r['selected']['top1'] for r in rs])} | {after} | "
                             f"{secs} | {batches} |")
    return "\n".join(lines)


def plot(done: dict, path: Path) -> Path:
    """Left: reliability vs cost per estimator setting; right: top-1 before/after Restoration, default vs paper vs
    random (mean +- sd over seeds)."""
    plt = pyplot()
    datasets = list(done.get("selection", {}))
    fig, axes = plt.subplots(1, 1 + len(datasets), figsize=(4.6 * (1 + len(datasets)), 3.8))
    ax = axes[0]
    for ds, rows in done.get("reliability", {}).items():
        for crit, probes, bs in SETTINGS:
            rs = [r for r in rows if (r["criterion"], r["probes"], r["batch_size"]) == (crit, probes, bs)]
            if not rs:
                continue
            ns = [4, 8, 16, 32]
            cost = [n * np.mean([r["batch_s"] / r["epoch_s"] for r in rs]) for n in ns]
            rel = [np.mean([r["reliability"][str(n)] for r in rs]) for n in ns]
            ax.plot(cost, rel, marker="o", linestyle="-" if crit == "removal" else "--",
                    label=f"{ds}: {crit} {probes}x{bs}")
    ax.axhline(0.9, color="k", lw=0.8, ls=":")
    ax.axvline(3.0, color="k", lw=0.8, ls=":")
    ax.set(xscale="log", xlabel="cost (Adaptation epochs), 4/8/16/32 batches", ylabel="split-half rank reliability",
           title="Ranking reliability vs cost")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    for ax, ds in zip(axes[1:], datasets, strict=True):
        rows = done["selection"][ds]
        names = [DEFAULT, PAPER, "random"]
        width = 0.13
        for j, ratio in enumerate(RATIOS):
            for k, name in enumerate(names):
                rs = [r for r in rows if r["ratio"] == ratio and r["method"] == name]
                if not rs:
                    continue
                for m, (key, hatch) in enumerate((("selected", ""), ("restored", "//"))):
                    vals = [r[key]["top1"] for r in rs if key in r]
                    if not vals:
                        continue
                    x = j + (k * 2 + m - 2.5) * width
                    ax.bar(x, np.mean(vals), width, yerr=np.std(vals, ddof=1) if len(vals) > 1 else 0,
                           color=f"C{k}", hatch=hatch, alpha=0.85, capsize=2,
                           label=f"{name}, {'before' if m == 0 else 'after'} Restoration" if j == 0 else None)
        ax.set_xticks(range(len(RATIOS)), [f"SNN ratio {r}" for r in RATIOS])
        ax.set(ylabel="test top-1", title=f"{ds}: selected networks (mean +- sd, seeds)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=6)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--route-features", type=Path, help="feature set of a small synthetic route")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--parts", nargs="+", default=["reliability", "selection"], choices=["reliability", "selection"])
    p.add_argument("--methods", nargs="+", choices=["default", "paper", "others"],
                   default=["default", "paper", "others"],
                   help="selection methods to run (others: trace with 16 rounds, removal one-shot); random always")
    args = p.parse_args(argv)
    short = {"default": [DEFAULT], "paper": [PAPER], "others": [m for m in METHODS if m not in (DEFAULT, PAPER)]}
    for name in [m for m in METHODS if not any(m in short[k] for k in args.methods)]:
        del METHODS[name]
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    store = args.out / "evidence.json"
    done: dict = json.loads(store.read_text()) if store.is_file() else {}
    data = {"digits": digits_features()}
    if args.route_features:
        data["route"] = load_feature_set(args.route_features)
    for ds, fs in data.items():
        for part in args.parts:
            {"reliability": reliability, "selection": selection}[part](ds, fs, args.out, args.seeds, done)
            store.write_text(json.dumps(done, indent=1))
    print(tables(done))
    print(plot(done, args.out / "selection.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
