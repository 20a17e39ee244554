"""Tables (markdown, printed) and plots (PNG, beside this script) of docs/reports/science.md from the science sweep
(run.sh), its cross-condition evaluation (hstnn-cross-condition) and the untrained baselines (baselines.py).
usage: python analyse.py SCI_DIR   (SCI_DIR holds env1/ env2/ env3/ report.json, cross/cross_condition.json and
base/baselines.json)"""
import json
import sys
from pathlib import Path

import numpy as np

from hstnn_ros.learning.transfer import cell, plot_cross_condition
from hstnn_ros.plotting import pyplot, save_figure

SCI = Path(sys.argv[1])
HERE = Path(__file__).resolve().parent
# the environments whose sweep has finished (a partial run still gives its tables and plots)
ENVS = tuple(e for e in ("env1", "env2", "env3") if (SCI / e / "report.json").is_file())
RATIOS = (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)
DPI = 80  # the repository is near its size budget
reports = {e: json.loads((SCI / e / "report.json").read_text()) for e in ENVS}
cross_file = SCI / "cross" / "cross_condition.json"
cross = json.loads(cross_file.read_text()) if cross_file.is_file() else None
base = json.loads((SCI / "base" / "baselines.json").read_text())
plt = pyplot()


def rows(env: str, model: str) -> dict:
    return {r["snn_ratio"]: r for r in reports[env]["summary"] if r["model"] == model}


def direct(env: str) -> dict:
    out = {}
    for m in ("rnn", "direct_hybrid", "snn"):
        out |= rows(env, m)
    return out


def units(env: str, kind: str) -> list:
    return [u for u in reports[env]["units"] if u["kind"] == kind]


def ms(d: dict | None, key: str = "top1", digits: int = 3) -> str:
    if d is None or key not in d:
        return "-"
    return f"{d[key]['mean']:.{digits}f} +- {d[key]['std']:.{digits}f}"


def baselines(ref: str, qry: str) -> dict:
    nn = base["nearest_neighbour"][ref][qry]
    sq = base["sequence"][ref][qry]
    return {"NN RGB": nn.get("nn_rgb_top1"), "NN events": nn.get("nn_events_top1"),
            "single frame (events)": sq["single_top1"], "sequence of 9 (events)": sq["seq9_top1"]}


# ---- table 1: per environment, every model
print("## Per environment (test top-1 | recall@1 within 1 place | MACs | ACs per decision)\n")
for env in ENVS:
    print(f"### {env}\n")
    print("| model | SNN ratio | top-1 | recall@1 (+-1) | MACs | ACs | epochs run |")
    print("|---|---|---|---|---|---|---|")
    for name, table in (("three-stage HSTNN", rows(env, "hstnn")), ("direct", direct(env))):
        for r in RATIOS:
            row = table.get(r)
            if row is None:
                continue
            label = name if name != "direct" else {0.0: "pure RNN", 1.0: "pure SNN"}.get(r, "directly hybrid")
            print(f"| {label} | {r:g} | {ms(row)} | {ms(row, 'recall')} | {row['mac']['mean']:,.0f} | "
                  f"{row['ac']['mean']:,.0f} | {ms(row, 'train_epochs', 1)} |")
    ad = rows(env, "adaptation")[None]
    print(f"| Adaptation network (2 x 500 per layer) | - | {ms(ad)} | {ms(ad, 'recall')} | {ad['mac']['mean']:,.0f} "
          f"| {ad['ac']['mean']:,.0f} | {ms(ad, 'train_epochs', 1)} |")
    for k, v in baselines(env, env).items():
        print(f"| {k} (untrained) | - | {v:.3f} | - | - | - | - |")
    print()

# ---- table 2: selection vs random, before and after Restoration; reliability and cost
print("## Hessian-aware Selection vs random choices of the same sizes (test top-1, mean +- sd over seeds)\n")
print("| env | SNN ratio | Selection, before Restoration | random, before | Selection, after | random, after | "
      "rank reliability, first round / worst round | batches (16 rounds) | Selection s / one Adaptation epoch s |")
print("|---|---|---|---|---|---|---|---|---|")
cost = {}


def adaptation_training(env: str, u: dict) -> dict:
    """An Adaptation unit's epochs run and seconds (sweeps older than the unit's "training" field: its result.json)."""
    if u["training"]:
        return u["training"]
    r = json.loads((SCI / env / "units" / u["unit"] / "result.json").read_text())
    return {"seconds": r["seconds"], "epochs_run": r["fit"]["epochs_run"]}


for env in ENVS:
    epoch_s = np.mean([a["seconds"] / max(a["epochs_run"], 1)
                       for a in (adaptation_training(env, u) for u in units(env, "adaptation"))])
    for r in RATIOS[1:-1]:
        row = rows(env, "hstnn")[r]
        cost[env, r] = row["selection_seconds"]["mean"] / epoch_s
        first = [u["importance"]["first_round_rank_reliability"] for u in units(env, "hstnn") if u["snn_ratio"] == r]
        print(f"| {env} | {r:g} | {ms(row, 'selected_top1')} | {ms(row, 'random_top1')} | {ms(row)} | "
              f"{ms(row, 'random_restored_top1')} | {np.mean(first):.2f} / {row['rank_reliability']['mean']:.2f} | "
              f"{row['importance_batches']['mean']:.0f} | {row['selection_seconds']['mean']:.0f} / {epoch_s:.0f} = "
              f"{cost[env, r]:.1f}x |")
print()

# ---- table 3: cross-condition (HSTNN transfer; and the strict protocol with env1-only front-ends)
def cross_table(result: dict, title: str) -> None:
    print(f"## {title} (test top-1, mean +- sd over seeds)\n")
    print("| train -> test | HSTNN r=0.5 | HSTNN r=0.9 | directly hybrid 0.5 | pure RNN | pure SNN | best HSTNN ratio "
          "(top-1) | NN RGB | seq9 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for tr in result["sweeps"]:
        for te in result["features"]:
            c = {k: cell(result, tr, te, m, r) for k, (m, r) in {
                "h5": ("hstnn", 0.5), "h9": ("hstnn", 0.9), "d5": ("direct_hybrid", 0.5), "rnn": ("rnn", 0.0),
                "snn": ("snn", 1.0)}.items()}
            best = max(RATIOS, key=lambda r, tr=tr, te=te: (cell(result, tr, te, "hstnn", r) or {"mean": -1})["mean"])
            b = baselines(tr, te)

            def f(x: dict | None) -> str:
                return "-" if x is None else f"{x['mean']:.3f} +- {x['std']:.3f}"
            print(f"| {tr} -> {te} | {f(c['h5'])} | {f(c['h9'])} | {f(c['d5'])} | {f(c['rnn'])} | {f(c['snn'])} | "
                  f"{best:g} ({cell(result, tr, te, 'hstnn', best)['mean']:.3f}) | {b['NN RGB']:.3f} | "
                  f"{b['sequence of 9 (events)']:.3f} |")
    print()


if cross is not None:
    cross_table(cross, "Cross-condition, HSTNN transfer (front-ends trained on all environments)")
strict_file = SCI / "strict" / "cross" / "cross_condition.json"
if strict_file.is_file():
    strict = json.loads(strict_file.read_text())
    cross_table(strict, "Cross-condition, strict (front-ends and HSTNN trained on env1 only)")

# ---- table 4: does three-stage help more when the network is small?
small = {e: json.loads((SCI / f"small_{e}" / "report.json").read_text()) for e in ENVS
         if (SCI / f"small_{e}" / "report.json").is_file()}
if small:
    print("## Three-stage vs directly-hybrid by width (test top-1 means; their difference per seed pair in points)\n")
    print("| env | SNN ratio | 500 + 500 | 100 + 100 |\n|---|---|---|---|")

    def gain(rep: dict, r: float) -> str:
        by = {(u["kind"], u["seed"]): u["test"]["top1"] for u in rep["units"] if u["snn_ratio"] == r}
        d = [100 * (by["hstnn", s] - by["direct", s]) for s in sorted({s for _, s in by})
             if ("hstnn", s) in by and ("direct", s) in by]
        h, b = (np.mean([v for (k, _), v in by.items() if k == kind]) for kind in ("hstnn", "direct"))
        return (f"{h:.3f} vs {b:.3f}: {np.mean(d):+.1f} +- {np.std(d, ddof=1) if len(d) > 1 else 0:.1f} "
                f"(n={len(d)})")
    for env, rep in small.items():
        for r in (0.5, 0.9):
            print(f"| {env} | {r:g} | {gain(reports[env], r)} | {gain(rep, r)} |")
    print()

# ---- figure 1: accuracy vs SNN ratio per environment (paper Fig. 2 style), baselines as lines
fig, axes = plt.subplots(2, len(ENVS), figsize=(3.7 * len(ENVS), 6.2), sharex=True, squeeze=False)
for j, env in enumerate(ENVS):
    for i, key in enumerate(("top1", "recall")):
        ax = axes[i][j]
        for name, table, colour in (("three-stage HSTNN", rows(env, "hstnn"), "C0"),
                                    ("direct (RNN at 0, SNN at 1)", direct(env), "C1")):
            xs = [r for r in RATIOS if r in table]
            ax.errorbar(xs, [table[r][key]["mean"] for r in xs], yerr=[table[r][key]["std"] for r in xs],
                        marker="o", ms=4, capsize=3, color=colour, label=name)
        if key == "top1":
            for (k, v), ls in zip(baselines(env, env).items(), (":", "--", "-.", (0, (1, 3))), strict=True):
                ax.axhline(v, color="grey", ls=ls, lw=1, label=f"{k}, untrained")
        ax.set_title(f"{env}: test {'top-1' if key == 'top1' else 'recall@1 within 1 place'}", fontsize=9)
        ax.grid(alpha=0.3)
        if i == 1:
            ax.set_xlabel("SNN ratio")
axes[0][0].legend(fontsize=6, loc="lower left")
save_figure(fig, HERE / "science_accuracy.png", dpi=DPI)

# ---- figure 2: ops per decision vs SNN ratio (paper Fig. 4 style)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
for ax, key, what in ((axes[0], "mac", "MACs"), (axes[1], "ac", "ACs")):
    for name, get, colour in (("three-stage HSTNN", lambda e: rows(e, "hstnn"), "C0"),
                              ("direct", direct, "C1")):
        vals = {r: [get(e)[r][key]["mean"] for e in ENVS if r in get(e)] for r in RATIOS}
        xs = [r for r in RATIOS if vals[r]]
        ax.errorbar(xs, [np.mean(vals[r]) / 1e3 for r in xs], yerr=[np.std(vals[r]) / 1e3 for r in xs],
                    marker="o", ms=4, capsize=3, color=colour, label=name)
    ax.set_xlabel("SNN ratio")
    ax.set_ylabel(f"{what} per decision (thousands)")
    ax.set_title(f"{what} (computed operations; mean +- sd over environments)", fontsize=9)
    ax.grid(alpha=0.3)
axes[0].legend(fontsize=7)
save_figure(fig, HERE / "science_ops.png", dpi=DPI)

# ---- figure 3: Selection vs random, before and after Restoration
fig, axes = plt.subplots(1, len(ENVS), figsize=(3.7 * len(ENVS), 3.4), sharey=True, squeeze=False)
axes = axes[0]
for ax, env in zip(axes, ENVS, strict=True):
    table = rows(env, "hstnn")
    xs = list(RATIOS[1:-1])
    for key, label, colour, ls in (("selected_top1", "Selection, before Restoration", "C0", "--"),
                                   ("random_top1", "random, before Restoration", "C3", "--"),
                                   ("top1", "Selection, after Restoration", "C0", "-"),
                                   ("random_restored_top1", "random, after Restoration", "C3", "-")):
        ax.errorbar(xs, [table[r][key]["mean"] for r in xs], yerr=[table[r][key]["std"] for r in xs],
                    marker="o", ms=4, capsize=3, color=colour, ls=ls, label=label)
    ax.set_title(env, fontsize=9)
    ax.set_xlabel("SNN ratio")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("test top-1")
axes[0].legend(fontsize=6)
save_figure(fig, HERE / "science_selection.png", dpi=DPI)
if cross is not None:
    plot_cross_condition(cross, HERE / "science_cross.png", dpi=DPI)
if strict_file.is_file():
    plot_cross_condition(strict, HERE / "science_cross_strict.png", dpi=DPI)
print("plots:", *sorted(p.name for p in HERE.glob("science_*.png")))
