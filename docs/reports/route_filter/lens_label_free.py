"""Can the route filter's trust in the HSTNN be set without labels? On the LENS query traversal, with the network that
lens_hstnn.py trained (RUN, default /tmp/rf/lens/run) and the motion kernel from the reference labels, two label-free
criteria computed on the unlabelled query stream itself, beside the accuracy they would give (within 2 frames):
- tempered emissions p^(1/T) (the shipped filter): mean log predictive agreement log sum_j prior_t(j) e_t(j),
  e_t = p_t^(1/T) normalised;
- outlier-mixture emissions L_t(j) = (1 - eps) N p_t(j) + eps (hybrid HMM/NN scaled likelihood with a uniform
  outlier density): the sequence's marginal log-likelihood sum_t log sum_j prior_t(j) L_t(j), a proper likelihood
  in eps.
usage: python lens_label_free.py [RUN]"""
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from hstnn_ros.fitting.route_calibration import window_probs
from hstnn_ros.model import load_bundle
from hstnn_ros.model.route_filter import MotionModel, RouteFilter, estimate_motion

torch.set_num_threads(1)
ROOT = Path("/work/shared/data/vpr/lens_davis128_indoor")
RUN = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/rf/lens/run")
T, POOL, N = 5, 4, 100  # as lens_hstnn.py


def frames(d: str) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p), np.float32) for p in sorted((ROOT / d).glob("*.png"))])


def step_feats(x: np.ndarray) -> np.ndarray:
    n, h, w = x.shape
    p = np.log1p(x.reshape(n, h // POOL, POOL, w // POOL, POOL).mean((2, 4)))
    return (p / max(p.max(), 1e-9)).reshape(n, -1).astype(np.float32)


qry = step_feats(frames("query"))
truth = np.load(ROOT / "ground_truth.npy").argmax(0)
x = qry[np.clip(np.arange(len(qry))[:, None] + np.arange(-T + 1, 1)[None, :], 0, None)]
probs = np.clip(window_probs(load_bundle(RUN / "units/hstnn_r0.5000_s0/bundle").hstnn().float().eval(), x), 1e-12, None)
base = estimate_motion([np.arange(N)])
filt = RouteFilter(N, MotionModel(base.offsets, base.probs, base.jump, 1.0))


def run(emission) -> tuple[float, float]:
    belief, score, out = None, 0.0, []
    for k, p in enumerate(probs):
        e = emission(p)
        prior = np.full(N, 1 / N) if belief is None else filt.predict(belief)
        post = prior * e
        score += np.log(post.sum()) if k else 0.0
        belief = post / post.sum()
        out.append(belief.argmax())
    return float(np.mean(np.abs(np.array(out) - truth) <= 2)), score / (len(probs) - 1)


print(f"raw HSTNN within 2 frames: {np.mean(np.abs(probs.argmax(1) - truth) <= 2):.2f}")
print("| temperature T | within 2 | criterion (mean log predictive agreement) |\n|---|---|---|")
for t in (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64):
    acc, crit = run(lambda p, t=t: (p ** (1 / t)) / (p ** (1 / t)).sum())
    print(f"| {t:g} | {acc:.2f} | {crit:.3f} |")
print("| outlier share eps | within 2 | criterion (marginal log-likelihood per frame) |\n|---|---|---|")
for eps in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.98, 0.99):
    acc, crit = run(lambda p, eps=eps: (1 - eps) * N * p + eps)
    print(f"| {eps:g} | {acc:.2f} | {crit:.3f} |")
