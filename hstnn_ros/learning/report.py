"""Sweep report: per kind, ratio and seed the measured metrics, aggregated as mean/std over seeds, written as JSON,
and PNG plots like the paper's Fig. 2 and 4 (accuracy vs SNN ratio, ops vs SNN ratio, accuracy vs ops)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hstnn_ros.learning.config import TrainConfig
from hstnn_ros.learning.enums import UnitKind
from hstnn_ros.learning.errors import LearningError
from hstnn_ros.plotting import pyplot, save_figure

REPORT_FORMAT = "hstnn_ros.train_report"
#: Scalars aggregated over seeds: name -> path into a unit result.
SCALARS: dict[str, tuple[str, ...]] = {
    "top1": ("test", "top1"),
    "top5": ("test", "top5"),
    "recall": ("test", "recall"),
    "val_top1": ("val", "top1"),
    "mac": ("mac",),
    "ac": ("ac",),
    "selected_top1": ("selected", "test", "top1"),
    "random_top1": ("random", "test", "top1"),
    "random_restored_top1": ("random", "restored", "test", "top1"),
    "overlap_with_random": ("overlap_with_random",),
    "importance_batches": ("importance", "batches"),
    "rank_reliability": ("importance", "rank_reliability"),
    "selection_seconds": ("selection_seconds",),
    "seconds": ("seconds",),
    "train_epochs": ("training", "epochs_run"),
    "train_seconds": ("training", "seconds"),
}


def _get(d: Mapping[str, Any], path: Sequence[str]) -> float | None:
    cur: Any = d
    for p in path:
        if not isinstance(cur, Mapping) or p not in cur:
            return None
        cur = cur[p]
    return None if cur is None else float(cur)


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (0 for a single value) of the values; n for context."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n}


def model_label(kind: UnitKind, ratio: float | None) -> str:
    """What a summary row is in the paper's terms: adaptation, hstnn, or the baselines rnn / snn / direct_hybrid."""
    if kind is not UnitKind.DIRECT or ratio is None:
        return kind.value
    return {0.0: "rnn", 1.0: "snn"}.get(ratio, "direct_hybrid")


def unit_kind(result: Mapping[str, Any]) -> UnitKind:
    """The kind of a unit result or summary row (its JSON ``kind``); an unknown one is refused, naming the unit."""
    try:
        return UnitKind(result["kind"])
    except (KeyError, ValueError):
        raise LearningError(f"unit result {result.get('unit', '?')}: kind {result.get('kind')!r} is not one of "
                            f"{[k.value for k in UnitKind]}; was it written by another version?") from None


def build_report(results: Sequence[Mapping[str, Any]], cfg: TrainConfig, *, fingerprint: str,
                 failures: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Aggregate finished unit results into the report dict (see module docstring)."""
    groups: dict[tuple[UnitKind, float | None], list[Mapping[str, Any]]] = {}
    for r in results:
        groups.setdefault((unit_kind(r), r.get("snn_ratio")), []).append(r)
    summary = []
    for (kind, ratio), rs in sorted(groups.items(),
                                    key=lambda kv: (kv[0][0].value, -1 if kv[0][1] is None else kv[0][1])):
        row: dict[str, Any] = {"kind": kind.value, "model": model_label(kind, ratio), "snn_ratio": ratio,
                               "seeds": sorted(r["seed"] for r in rs)}
        for name, path in SCALARS.items():
            vals = [v for r in rs if (v := _get(r, path)) is not None]
            if vals:
                row[name] = mean_std(vals)
        ops = [r["mac"] + r["ac"] for r in rs if "mac" in r and "ac" in r]
        if ops:
            row["ops"] = mean_std(ops)
        n_layers = max((len(r.get("spike_rates") or []) for r in rs), default=0)
        rates = []
        for i in range(n_layers):
            vals = [r["spike_rates"][i] for r in rs if r["spike_rates"][i] is not None]
            rates.append(mean_std(vals) if vals else None)
        row["spike_rates"] = rates
        summary.append(row)
    per_unit = [{k: r.get(k) for k in ("unit", "kind", "snn_ratio", "seed", "sizes", "test", "val", "mac", "ac",
                                       "spike_rates", "selected", "random", "overlap_with_random", "importance",
                                       "training")}
                for r in results]
    ep = cfg.epochs
    comparison = {
        "basis": "equal total epochs" if ep.direct_epochs == ep.hstnn_epochs else "unequal epoch budgets",
        "hstnn_epoch_budget": ep.hstnn_epochs, "direct_epoch_budget": ep.direct_epochs,
        "note": "three-stage: Adaptation of the redundant 2M network + Restoration of the selected one; baselines: "
                "the final-size network from scratch. Both stop early on validation (train_epochs: epochs run); "
                "train_seconds is the wall time of that training (Adaptation nets are twice as wide, so equal "
                "epochs is not equal compute)."}
    return {"format": REPORT_FORMAT, "format_version": 1, "data_fingerprint": fingerprint,
            "config": cfg.to_dict(), "comparison": comparison, "summary": summary, "units": per_unit,
            "failures": dict(failures or {})}


def write_report(out_dir: Path | str, report: Mapping[str, Any], *, plots: bool = True) -> Path:
    """Write ``report.json`` (atomically) and, when asked, the PNG plots into ``out_dir``; returns the JSON path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(out / "report.json")
    if plots:
        plot_report(report, out)
    return out / "report.json"


def plot_report(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """``accuracy_vs_ratio.png``, ``ops_vs_ratio.png`` and ``accuracy_vs_ops.png`` (error bars: std over seeds)."""
    plt = pyplot()

    rows = [(unit_kind(r), r) for r in report["summary"] if r["snn_ratio"] is not None]
    series = {UnitKind.HSTNN: "HSTNN (3-stage)", UnitKind.DIRECT: "directly hybrid"}
    paths = []

    def line(ax: Any, kind: UnitKind, key: str, label: str, xkey: str = "snn_ratio", **kw: Any) -> None:
        rs = sorted((r for k, r in rows if k is kind and key in r), key=lambda r: r["snn_ratio"])
        if not rs:
            return
        xs = [r[xkey]["mean"] if isinstance(r[xkey], dict) else r[xkey] for r in rs]
        ax.errorbar(xs, [r[key]["mean"] for r in rs], yerr=[r[key]["std"] for r in rs], marker="o", capsize=3,
                    label=label, **kw)

    fig, ax = plt.subplots(figsize=(5, 3.8))
    line(ax, UnitKind.HSTNN, "top1", series[UnitKind.HSTNN])
    line(ax, UnitKind.HSTNN, "selected_top1", "after Selection (before Restoration)", linestyle=":")
    line(ax, UnitKind.DIRECT, "top1", series[UnitKind.DIRECT], linestyle="--")
    ax.set(xlabel="SNN ratio", ylabel="test top-1 accuracy", title="Accuracy vs SNN ratio")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    paths.append(save_figure(fig, out_dir / "accuracy_vs_ratio.png"))

    fig, ax = plt.subplots(figsize=(5, 3.8))
    for kind, style in ((UnitKind.HSTNN, "-"), (UnitKind.DIRECT, "--")):
        line(ax, kind, "mac", f"{series[kind]}: MAC", linestyle=style)
        line(ax, kind, "ac", f"{series[kind]}: AC", linestyle=style)
    ax.set(xlabel="SNN ratio", ylabel="operations per sample", title="Operations vs SNN ratio")
    ax.set_yscale("symlog")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    paths.append(save_figure(fig, out_dir / "ops_vs_ratio.png"))

    fig, ax = plt.subplots(figsize=(5, 3.8))
    for kind in (UnitKind.HSTNN, UnitKind.DIRECT):
        rs = [r for k, r in rows if k is kind and "ops" in r and "top1" in r]
        if rs:
            ax.errorbar([r["ops"]["mean"] for r in rs], [r["top1"]["mean"] for r in rs],
                        yerr=[r["top1"]["std"] for r in rs], fmt="o", capsize=3, label=series[kind])
            for r in rs:
                ax.annotate(f"r={r['snn_ratio']:g}", (r["ops"]["mean"], r["top1"]["mean"]), fontsize=6)
    ax.set(xlabel="operations per sample (MAC + AC)", ylabel="test top-1 accuracy", title="Accuracy vs operations")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    paths.append(save_figure(fig, out_dir / "accuracy_vs_ops.png"))
    return paths
