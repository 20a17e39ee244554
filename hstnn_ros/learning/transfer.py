"""Cross-condition evaluation: every network a sweep trained on one condition (a lighting environment's traversals),
tested on the test split of every condition. The diagonal is the per-environment protocol of the sweep's own report;
the off-diagonal cells say how a model trained in one light does in another (docs/reports/science.md).

The feature sets must come from the same frozen front-ends (same feature size, same place ids): this measures the
HSTNN's transfer, not the front-ends'."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hstnn_ros import defaults
from hstnn_ros.datasets.features import load_feature_set
from hstnn_ros.learning import network as net
from hstnn_ros.learning.data import Split, prepare_data
from hstnn_ros.learning.errors import LearningError
from hstnn_ros.learning.report import REPORT_FORMAT, mean_std, model_label, unit_kind
from hstnn_ros.learning.sweep import BUNDLE
from hstnn_ros.learning.trainer import evaluate
from hstnn_ros.plotting import pyplot, save_figure

CROSS_FORMAT = "hstnn_ros.cross_condition"


def _sweep_units(sweep_dir: Path) -> list[Mapping[str, Any]]:
    path = sweep_dir / "report.json"
    if not path.is_file():
        raise LearningError(f"{sweep_dir}: no report.json; run hstnn-train with --out {sweep_dir} first")
    report = json.loads(path.read_text())
    if report.get("format") != REPORT_FORMAT:
        raise LearningError(f"{path}: not a sweep report (format {report.get('format')!r}, want {REPORT_FORMAT!r})")
    return list(report["units"])


def cross_condition(sweeps: Mapping[str, Path | str], features: Mapping[str, Path | str], *,
                    tolerance: int = defaults.RECALL_TOLERANCE, batch_size: int = 256,
                    progress: bool = True) -> dict[str, Any]:
    """Test every finished unit of every sweep (``{train condition: sweep --out}``) on the test split of every
    feature set (``{test condition: feature set file}``). Returns per unit and, aggregated over seeds per (train
    condition, model, SNN ratio, test condition), mean +- sd of top-1 and recall@1 within ``tolerance`` places."""
    tests: dict[str, Split] = {c: prepare_data(load_feature_set(p), name=str(p)).test for c, p in features.items()}
    units: list[dict[str, Any]] = []
    todo = [(c, Path(d), u) for c, d in sweeps.items() for u in _sweep_units(Path(d))]
    for cond, sweep_dir, u in tqdm(todo, desc="cross-condition", unit="unit", disable=not progress):
        model, _ = net.load_model(sweep_dir / "units" / u["unit"] / BUNDLE)
        cfg = model.config
        res: dict[str, Any] = {}
        for test_cond, split in tests.items():
            if split.x.shape[2] != cfg.input_size or int(split.y.max()) >= cfg.num_classes:
                raise LearningError(
                    f"{features[test_cond]}: {split.x.shape[2]} features and place ids up to {int(split.y.max())} do "
                    f"not fit {sweep_dir}'s networks ({cfg.input_size} inputs, {cfg.num_classes} places); give "
                    "feature sets cut by the same front-ends from the same route")
            res[test_cond] = evaluate(model, split, tolerance=tolerance, batch_size=batch_size).to_dict()
        kind = unit_kind(u)
        units.append({"train": cond, "unit": u["unit"], "kind": kind.value,
                      "model": model_label(kind, u.get("snn_ratio")), "snn_ratio": u.get("snn_ratio"),
                      "seed": u["seed"], "test": res})
    groups: dict[tuple[str, str, float | None, str], list[Mapping[str, float]]] = {}
    for r in units:
        for test_cond, m in r["test"].items():
            groups.setdefault((r["train"], r["model"], r["snn_ratio"], test_cond), []).append(m)
    summary = [{"train": tr, "model": model, "snn_ratio": ratio, "test": te,
                "top1": mean_std([m["top1"] for m in ms]), "recall": mean_std([m["recall"] for m in ms])}
               for (tr, model, ratio, te), ms in groups.items()]
    return {"format": CROSS_FORMAT, "format_version": 1, "recall_tolerance": tolerance,
            "sweeps": {c: str(d) for c, d in sweeps.items()}, "features": {c: str(p) for c, p in features.items()},
            "units": units, "summary": summary}


def cell(result: Mapping[str, Any], train: str, test: str, model: str, ratio: float | None, *,
         metric: str = "top1") -> Mapping[str, float] | None:
    """The aggregated ``metric`` (mean, std, n) of one cell of a :func:`cross_condition` result, or None."""
    for r in result["summary"]:
        if (r["train"], r["test"], r["model"], r["snn_ratio"]) == (train, test, model, ratio):
            return r[metric]
    return None


def plot_cross_condition(result: Mapping[str, Any], path: Path | str, *, metric: str = "top1", dpi: int = 120) -> Path:
    """One panel per (train condition -> test condition): ``metric`` vs SNN ratio for the three-stage HSTNN and the
    directly trained networks (pure RNN at 0, pure SNN at 1), mean +- sd over seeds; saved as a PNG."""
    plt = pyplot()
    conds = list(result["sweeps"])
    tests = list(result["features"])
    fig, axes = plt.subplots(len(conds), len(tests), figsize=(2.6 * len(tests) + 0.6, 2.2 * len(conds) + 0.6),
                             sharex=True, sharey=True, squeeze=False)
    series = {"hstnn": ("three-stage HSTNN", "C0"), "direct": ("direct (RNN at 0, SNN at 1)", "C1")}
    for i, tr in enumerate(conds):
        for j, te in enumerate(tests):
            ax = axes[i][j]
            for name, (label, colour) in series.items():
                rows = sorted((r for r in result["summary"] if r["train"] == tr and r["test"] == te
                               and r["snn_ratio"] is not None
                               and (r["model"] == "hstnn") == (name == "hstnn")), key=lambda r: r["snn_ratio"])
                if rows:
                    ax.errorbar([r["snn_ratio"] for r in rows], [r[metric]["mean"] for r in rows],
                                yerr=[r[metric]["std"] for r in rows], marker="o", ms=3, capsize=2, color=colour,
                                label=label)
            ax.set_title(f"train {tr} -> test {te}", fontsize=8)
            ax.grid(alpha=0.3)
            if i == len(conds) - 1:
                ax.set_xlabel("SNN ratio")
            if j == 0:
                ax.set_ylabel(f"test {metric}")
    axes[0][0].legend(fontsize=6)
    return save_figure(fig, path, dpi=dpi)
