"""Oracle check on LENS (tuned on the query itself, so NOT a fair result): the trained HSTNN's filtered recall within 2
frames over temperatures and kernels, to see whether any filter setting beats the untrained 9-frame sequence."""
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hstnn_ros.fitting.route_calibration import filtered_probs, window_probs
from hstnn_ros.model import load_bundle
from hstnn_ros.model.route_filter import MotionModel

torch.set_num_threads(1)
ROOT = Path("/work/shared/data/vpr/lens_davis128_indoor")
T, POOL = 5, 4
q = np.stack([np.asarray(Image.open(p), np.float32) for p in sorted((ROOT / "query").glob("*.png"))])
truth = np.load(ROOT / "ground_truth.npy").argmax(0)
n = len(q)
p = np.log1p(q.reshape(n, 80 // POOL, POOL, 80 // POOL, POOL).mean((2, 4)))
f = (p / p.max()).reshape(n, -1).astype(np.float32)
idx = np.clip(np.arange(n)[:, None] + np.arange(-T + 1, 1)[None, :], 0, None)
model = load_bundle("/tmp/rf/lens/run/units/hstnn_r0.5000_s0/bundle").hstnn().float().eval()
probs = window_probs(model, f[idx])
print("raw within2", np.mean(np.abs(probs.argmax(1) - truth) <= 2))
res = {}
kernels = {"+1": ((0, 1, 2), (0.1, 0.8, 0.1)), "wide": ((-1, 0, 1, 2, 3), (0.1, 0.2, 0.4, 0.2, 0.1))}
for kn, (o, pr) in kernels.items():
    for t in (0.25, 0.5, 1, 2, 4, 8, 16):
        for jump in (1e-3, 1e-2, 0.1):
            fp = filtered_probs([probs], n, MotionModel(o, pr, jump, float(t)))[0].argmax(1)
            res[f"{kn} T{t} jump{jump}"] = float(np.mean(np.abs(fp - truth) <= 2))
best = sorted(res.items(), key=lambda kv: -kv[1])[:5]
print(best, "worst", min(res.values()))
Path("/tmp/rf/lens/sweep.json").write_text(json.dumps(res, indent=1))

# 2-fold cross-validation on the query: temperature chosen on one half (kernel: the one estimated from the reference,
# every frame one place ahead), tested on the other half, each half filtered from a reset belief
est = json.loads(Path("/tmp/rf/lens/run/lens_result.json").read_text())["motion"]
halves = (np.arange(0, n // 2), np.arange(n // 2, n))
cv = {}
for a, b in ((0, 1), (1, 0)):
    def score(h, t):
        m = MotionModel(tuple(est["offsets"]), tuple(est["probs"]), est["jump"], float(t))
        fp = filtered_probs([probs[halves[h]]], n, m)[0].argmax(1)
        return float(np.mean(np.abs(fp - truth[halves[h]]) <= 2))
    ts = (0.25, 0.5, 1, 2, 4, 8, 16, 32)
    t_best = max(ts, key=lambda t: (score(a, t), -t))
    cv[f"tune_half{a}_test_half{b}"] = {"T": t_best, "test_within2": score(b, t_best),
                                        "test_raw_within2": float(np.mean(np.abs(probs[halves[b]].argmax(1)
                                                                                 - truth[halves[b]]) <= 2))}
cv["mean_test_within2"] = float(np.mean([v["test_within2"] for v in cv.values()]))
print(cv)
Path("/tmp/rf/lens/sweep.json").write_text(json.dumps({"grid": res, "cv": cv}, indent=1))
