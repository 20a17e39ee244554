"""route20 evidence from the replays in /tmp/rf/replays: raw vs filtered top-1 / recall@1 (tol 1) on held-out t5,
the sequence baseline, and unknown-place TAR/FAR at the shipped thresholds on the other route."""
import csv
import json
from pathlib import Path

import numpy as np

from hstnn_ros.model import load_bundle
from hstnn_ros.model.route_filter import calibrate_unknown_threshold

R = Path("/tmp/rf/replays")
M = Path("/tmp/rf/out")


def summary(txt: Path) -> dict:
    lines = txt.read_text().splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("env "))
    keys = lines[head].split()
    vals = lines[head + 1].split()
    return dict(zip(keys, vals, strict=True))


def rows(d: Path) -> list[dict]:
    return list(csv.DictReader((d / "decisions.csv").open()))


base = json.loads(Path("/tmp/rf/seq/baseline_route20.json").read_text())
out = {"accuracy": {}, "unknown": {}}
for e in ("env1", "env2", "env3"):
    rf, raw, eo = (summary(R / f"{e}_t5_{k}.txt") for k in ("own_rf", "own_raw", "eo_rf"))
    out["accuracy"][e] = {
        "own_raw_top1": float(rf["raw_accuracy"]), "own_filtered_top1": float(rf["accuracy"]),
        "own_raw_recall1": float(rf["raw_recall_at_1_tol1"]), "own_filtered_recall1": float(rf["recall_at_1_tol1"]),
        "eo_raw_top1": float(eo["raw_accuracy"]), "eo_filtered_top1": float(eo["accuracy"]),
        "eo_raw_recall1": float(eo["raw_recall_at_1_tol1"]), "eo_filtered_recall1": float(eo["recall_at_1_tol1"]),
        "decisions": int(rf["decisions"]),
        "seq9_top1": base[e]["seq9_top1"], "seq9_recall1": base[e]["seq9_within1"],
        "single_top1": base[e]["single_top1"], "single_recall1": base[e]["single_within1"],
        "p99_ms_filter_run": float(rf["latency_p99_ms"]), "p99_ms_raw_run": float(raw["latency_p99_ms"]),
    }
    other = R / f"{e}_other_rf"
    if not (other / "decisions.csv").is_file():
        continue
    meta = load_bundle(M / e).metadata
    own_raw = np.array([float(r["score"]) for r in rows(R / f"{e}_t5_own_raw")])
    own_filt = np.array([float(r["score"]) for r in rows(R / f"{e}_t5_own_rf")])
    oth = rows(other)
    oth_raw = np.array([float(r["raw_score"]) for r in oth])
    oth_filt = np.array([float(r["score"]) for r in oth])
    u = {"other_decisions": len(oth)}
    for name, own, o, thr in (("raw", own_raw, oth_raw, meta["unknown_threshold"]),
                              ("filtered", own_filt, oth_filt, meta["unknown_threshold_filtered"])):
        u[name] = {"threshold": thr, "tar": float(np.mean(own >= thr)), "far": float(np.mean(o >= thr)),
                   "oracle_far05": calibrate_unknown_threshold(own, o, 0.05),
                   "own_median": float(np.median(own)), "other_median": float(np.median(o))}
    out["unknown"][e] = u
Path("/tmp/rf/analysis.json").write_text(json.dumps(out, indent=1))
print(json.dumps(out, indent=1))
