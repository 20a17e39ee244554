"""Collect the default-preset evidence (fit summary, replays of run.sh, sequence_baseline.py) into
``$OUT/analysis.json`` and plot per-environment top-1 / recall@1 (tol 1) of raw and filtered HSTNN decisions beside
the untrained baselines: ``docs/reports/fit_route_default.png``."""
import json
import os
from pathlib import Path

import numpy as np

from hstnn_ros.plotting import pyplot, save_figure

ROOT = Path(os.environ.get("OUT", "/work/fitdata/default3"))
PNG = Path(__file__).resolve().parent.parent / "fit_route_default.png"


def summary(txt: Path) -> dict:
    lines = txt.read_text().splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("env "))
    keys, vals = lines[head].split(), lines[head + 1].split()
    out = dict(zip(keys, vals, strict=True))
    tp = next((ln for ln in lines if ln.startswith("throughput:")), "")
    out["throughput"] = tp.split()[1] if tp else None
    return out


report = json.loads((ROOT / "out" / "build_report.json").read_text())
base = json.loads((ROOT / "seq" / "baseline.json").read_text())
replays = {}
for txt in sorted((ROOT / "replays").glob("*.txt")):
    s = summary(txt)
    replays[txt.stem] = {k: s[k] for k in ("decisions", "raw_accuracy", "accuracy", "raw_recall_at_1_tol1",
                                           "recall_at_1_tol1", "unknown_rate", "latency_p50_ms", "latency_p99_ms",
                                           "macs_per_decision", "acs_per_decision", "throughput")}
out = {"summary": report["summary"], "stage_seconds": report["stage_seconds"],
       "total_seconds": report["total_seconds"], "frontends": report["frontends"], "replays": replays,
       "baseline": base}
(ROOT / "analysis.json").write_text(json.dumps(out, indent=1))
print(json.dumps({"summary": report["summary"], "replays": replays, "baseline": base}, indent=1))

# plot: one group per query traversal; bars: own bundle raw / filtered, default raw / filtered, seq9, single
queries = [q for q in ("env1_t4", "env1_t5", "env1_t3", "env2_t3", "env3_t3") if q in base]
series = {"own raw": [], "own filtered": [], "default raw": [], "default filtered": [], "untrained seq9": [],
          "untrained single": []}
for q in queries:
    env = q[:4]
    own, dflt = replays.get(f"{q}_{env}", {}), replays.get(f"{q}_default", {})
    series["own raw"].append(float(own.get("raw_accuracy", "nan")))
    series["own filtered"].append(float(own.get("accuracy", "nan")))
    series["default raw"].append(float(dflt.get("raw_accuracy", "nan")))
    series["default filtered"].append(float(dflt.get("accuracy", "nan")))
    series["untrained seq9"].append(base[q]["seq9_top1"])
    series["untrained single"].append(base[q]["single_top1"])
plt = pyplot()
fig, ax = plt.subplots(figsize=(9, 3.6))
w = 0.8 / len(series)
for k, (name, vals) in enumerate(series.items()):
    ax.bar(np.arange(len(queries)) + (k - (len(series) - 1) / 2) * w, vals, w, label=name)
ax.set_xticks(np.arange(len(queries)), [f"{q}{' (held out)' if q in ('env1_t4', 'env1_t5') else ' (test)'}"
                                        for q in queries])
ax.set_ylim(0, 1.2)
ax.set_ylabel("top-1 (chance 0.01)")
ax.set_title("default preset, 100 places: online replay, raw vs route-filtered, beside untrained baselines")
ax.legend(fontsize=7, ncol=3, loc="upper center")
ax.grid(axis="y", alpha=0.3)
print(save_figure(fig, PNG))
