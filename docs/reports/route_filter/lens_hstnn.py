"""LENS DAVIS128 indoor (100 reference + 100 query event-count frames, ground truth = identity): a small HSTNN trained
on the reference traversal (windows of T frames, 20 x 20 pooled counts per step, 100 places = reference frames;
training and validation windows are the reference frames with noise, a +-1 px shift and a repeated/skipped step),
evaluated on the query traversal raw vs route-filtered, beside the untrained single-frame and 9-frame sequence match
on the same pooled frames. Correct within 2 frames: |pred - truth| <= 2."""
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hstnn_ros.datasets.features import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, FeatureSet
from hstnn_ros.fitting.config import train_recipe
from hstnn_ros.fitting.route_calibration import TEMPERATURES, filtered_probs, window_probs
from hstnn_ros.learning import run_sweep
from hstnn_ros.learning.config import config_from_dict
from hstnn_ros.model import load_bundle
from hstnn_ros.model.route_filter import MotionModel, estimate_motion, sequence_match

torch.set_num_threads(1)
ROOT = Path("/work/shared/data/vpr/lens_davis128_indoor")
OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/rf/lens/run")
T, POOL, COPIES = 5, 4, 40
rng = np.random.default_rng(0)


def frames(d: str) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p), np.float32) for p in sorted((ROOT / d).glob("*.png"))])


def pool(x: np.ndarray) -> np.ndarray:
    n, h, w = x.shape
    return x.reshape(n, h // POOL, POOL, w // POOL, POOL).mean((2, 4))


def norm(x: np.ndarray) -> np.ndarray:
    d = x.reshape(len(x), -1).astype(np.float64)
    d -= d.mean(1, keepdims=True)
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)


ref, qry = frames("reference"), frames("query")
gt = np.load(ROOT / "ground_truth.npy")
truth = gt.argmax(0)  # reference frame of every query frame
n = len(ref)
res: dict = {"frames": [len(ref), len(qry)], "T": T, "pool": POOL}

# untrained baselines on the pooled frames (what the HSTNN sees) and on the full 80 x 80 frames
for name, r, q in (("full", ref, qry), ("pooled", pool(ref), pool(qry))):
    sim = norm(q) @ norm(r).T
    for k, s in (("single", sim), ("seq9", sequence_match(sim, 9))):
        pred = s.argmax(1)
        res[f"untrained_{name}_{k}_exact"] = float(np.mean(pred == truth))
        res[f"untrained_{name}_{k}_within2"] = float(np.mean(np.abs(pred - truth) <= 2))


def step_feats(x: np.ndarray) -> np.ndarray:
    p = np.log1p(pool(x))
    return (p / max(p.max(), 1e-9)).reshape(len(x), -1).astype(np.float32)


def windows(seq: np.ndarray) -> np.ndarray:
    """[n, T, F]: the window ending at every frame (the first frames repeat frame 0)."""
    idx = np.clip(np.arange(len(seq))[:, None] + np.arange(-T + 1, 1)[None, :], 0, None)
    return seq[idx]


def augmented(x: np.ndarray) -> np.ndarray:
    """The reference traversal again with count noise, a +-1 px shift and per-step time jitter."""
    dy, dx = rng.integers(-1, 2, 2)
    y = np.roll(x, (dy, dx), axis=(1, 2))
    y = rng.poisson(np.clip(y * rng.uniform(0.7, 1.3), 0, None)).astype(np.float32)
    w = windows(step_feats(y))
    jit = np.clip(np.arange(n)[:, None] + np.arange(-T + 1, 1)[None, :] + rng.integers(-1, 2, (n, T)), 0, n - 1)
    return np.where(rng.random((n, 1, 1)) < 0.5, step_feats(y)[jit], w)


feats, labels, split, group = [], [], [], []
for c in range(COPIES):
    feats.append(augmented(ref))
    labels.append(np.arange(n))
    split.append(np.full(n, SPLIT_VAL if c >= COPIES - 4 else SPLIT_TRAIN))
    group.append(np.full(n, c))
feats.append(windows(step_feats(qry)))
labels.append(truth)
split.append(np.full(n, SPLIT_TEST))
group.append(np.full(n, COPIES))
fs = FeatureSet(np.concatenate(feats), np.concatenate(labels).astype(np.int64), np.concatenate(split).astype(np.int8),
                np.concatenate(group).astype(np.int32), np.zeros(n * (COPIES + 1), np.int8), n,
                env_names=("lens",))
cfg = train_recipe(quick=True, hidden=(128, 128), ratios=(0.5,))
cfg = config_from_dict({**cfg.to_dict(), "eval": {**cfg.to_dict()["eval"], "recall_tolerance": 2}})
t0 = time.time()
report = run_sweep(cfg, fs, OUT, name="lens davis128", plots=False)
res["train_seconds"] = time.time() - t0
unit = max((u for u in report["units"] if u["kind"] == "hstnn" and u.get("val")), key=lambda u: u["val"]["top1"])
model = load_bundle(OUT / "units" / unit["unit"] / "bundle").hstnn().float().eval()
res["unit"] = unit["unit"]
res["val_top1"] = unit["val"]["top1"]

test = fs.split == SPLIT_TEST
probs = window_probs(model, fs.features[test])
pred = probs.argmax(1)
res["hstnn_raw_exact"] = float(np.mean(pred == truth))
res["hstnn_raw_within2"] = float(np.mean(np.abs(pred - truth) <= 2))
# the filter: motion from the reference label sequence (one place per frame), temperature from the validation copies
base = estimate_motion([np.arange(n)])
val_groups = np.unique(fs.group[fs.split == SPLIT_VAL])
val_idx = [np.flatnonzero((fs.split == SPLIT_VAL) & (fs.group == g)) for g in val_groups]
val_probs = [window_probs(model, fs.features[i]) for i in val_idx]
best = None
for t in TEMPERATURES:
    m = MotionModel(base.offsets, base.probs, base.jump, t)
    acc = float(np.mean([np.mean(np.abs(p.argmax(1) - np.arange(n)) <= 2) for p in filtered_probs(val_probs, n, m)]))
    res[f"val_filtered_within2_T{t:g}"] = acc
    if best is None or acc > best[0]:
        best = (acc, m)
motion = best[1]
res["motion"] = motion.to_dict()
for name, m in (("calibrated", motion), ("T1", MotionModel(base.offsets, base.probs, base.jump, 1.0))):
    fp = filtered_probs([probs], n, m)[0].argmax(1)
    res[f"hstnn_filtered_{name}_exact"] = float(np.mean(fp == truth))
    res[f"hstnn_filtered_{name}_within2"] = float(np.mean(np.abs(fp - truth) <= 2))
print(json.dumps(res, indent=1))
(OUT / "lens_result.json").write_text(json.dumps(res, indent=1))
