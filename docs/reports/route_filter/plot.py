"""docs/reports/route_filter.png from the measured JSONs."""
import csv
import json
import sys
from pathlib import Path

import numpy as np

from hstnn_ros.model import load_bundle
from hstnn_ros.plotting import pyplot, save_figure

a = json.loads(Path("/tmp/rf/analysis.json").read_text())
lens = json.loads(Path("/tmp/rf/lens/run/lens_result.json").read_text())
sweep = json.loads(Path("/tmp/rf/lens/sweep.json").read_text())
plt = pyplot()
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
ax = axes[0]
envs = ["env1", "env2", "env3"]
series = [("own raw", "own_raw_top1"), ("own filtered", "own_filtered_top1"), ("events_only raw", "eo_raw_top1"),
          ("events_only filtered", "eo_filtered_top1"), ("untrained seq9 (events)", "seq9_top1")]
w = 0.8 / len(series)
for k, (lab, key) in enumerate(series):
    ax.bar(np.arange(3) + (k - 2) * w, [a["accuracy"][e][key] for e in envs], w, label=lab)
ax.set_xticks(np.arange(3), envs)
ax.set(ylim=(0, 1.05), ylabel="top-1 on held-out t5", title="route20: raw vs route-filtered")
ax.legend(fontsize=7, loc="lower left")
ax.grid(axis="y", alpha=0.3)
ax = axes[1]
bins = np.linspace(0, 1, 41)
own, oth = [], []
for e in envs:
    own_csv = Path(f"/tmp/rf/replays/{e}_t5_own_raw/decisions.csv").read_text().splitlines()
    own += [float(r["score"]) for r in csv.DictReader(own_csv)]
    p = Path(f"/tmp/rf/replays/{e}_other_rf/decisions.csv")
    if p.is_file():
        oth += [float(r["raw_score"]) for r in csv.DictReader(p.open())]
ax.hist(own, bins, alpha=0.6, density=True, label="own route (held-out t5)")
if oth:
    ax.hist(oth, bins, alpha=0.6, density=True, label="other route (seed 7)")
for e in envs:
    ax.axvline(load_bundle(f"/tmp/rf/out/{e}").metadata["unknown_threshold"], color="k", lw=0.8, ls="--")
ax.set(xlabel="raw top-1 softmax", ylabel="density", title="unknown place: raw confidence (dashed: shipped thresholds)")
ax.legend(fontsize=7)
ax = axes[2]
bars = [("untrained\nsingle", lens["untrained_full_single_within2"]),
        ("untrained\nseq9", lens["untrained_full_seq9_within2"]),
        ("HSTNN\nraw", lens["hstnn_raw_within2"]), ("HSTNN\nfiltered", lens["hstnn_filtered_calibrated_within2"]),
        ("filtered\nT by 2-fold CV", sweep["cv"]["mean_test_within2"]),
        ("filtered\noracle T", max(sweep["grid"].values()))]
ax.bar(range(len(bars)), [v for _, v in bars], color=["C7", "C7", "C0", "C1", "C1", "C3"])
ax.set_xticks(range(len(bars)), [n for n, _ in bars], fontsize=7)
for i, (_, v) in enumerate(bars):
    ax.text(i, v + 0.01, f"{v:.2f}", ha="center", fontsize=7)
ax.set(ylim=(0, 1.05), ylabel="query matched within 2 frames", title="LENS DAVIS128 indoor (real events)")
ax.grid(axis="y", alpha=0.3)
save_figure(fig, Path(sys.argv[1]))
