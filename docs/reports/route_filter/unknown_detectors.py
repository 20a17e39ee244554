"""Unknown-place detectors compared on route20 (docs/reports/route_filter.md, "Unknown place: detectors").

Per environment bundle of /tmp/rf/out: scores (higher = known place) of the validation traversal t3 (feature set of
the fit), of the held-out traversal t5 and of the other route (windows the online engine gave its HSTNN, captured by
unknown_capture.py). Each detector's threshold accepts 95 % of the validation decisions (as the fit calibrates,
never looking at t5 or the other route); TAR = share of t5 decisions accepted, FAR = share of other-route decisions
accepted. AUROC (t5 vs other) and the FAR at a threshold set on t5 itself (TAR 0.95, in-sample) show separability
apart from calibration shift. Writes /tmp/unk/detectors.json."""
import json
from pathlib import Path

import numpy as np
import torch

from hstnn_ros.datasets.features import SPLIT_TRAIN, load_feature_set
from hstnn_ros.fitting.route_calibration import traversal_sequences
from hstnn_ros.model import Decoder, load_bundle
from hstnn_ros.model.route_filter import MotionModel, RouteFilter, threshold_for_true_accept

M = Path("/tmp/rf/out")
U = Path("/tmp/unk")
SPLIT_VAL = 1
REFS = 256  # reference vectors kept for the kNN detectors (a random subset of the training windows)
rng = np.random.default_rng(0)


@torch.inference_mode()
def forward(model, x: np.ndarray, bs: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Logits and the readout input (rate-decoded spikes of the last SNN population + last RNN state)."""
    lo, em = [], []
    for i in range(0, len(x), bs):
        rec = model.run(torch.from_numpy(np.ascontiguousarray(x[i:i + bs], np.float32)))
        s = rec.spikes[-1]
        dec = s.mean(1) if model.config.decoder is Decoder.RATE else s[:, -1]
        lo.append(rec.logits.numpy())
        em.append(torch.cat([dec, rec.rnn_out[-1][:, -1]], dim=-1).numpy())
    return np.concatenate(lo).astype(np.float64), np.concatenate(em).astype(np.float64)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def knn_sim(q: np.ndarray, ref: np.ndarray, k: int) -> np.ndarray:
    """Cosine similarity of each query to its k-th nearest reference (higher = closer to training data)."""
    s = unit(q) @ unit(ref).T
    return -np.partition(-s, k - 1, axis=1)[:, k - 1]


def running_mean(x: np.ndarray, seqs_len: list[int], w: int) -> np.ndarray:
    """Mean of the last ``w`` scores within each sequence (fewer at its start): the decision's score smoothed over
    ~w / 30 s (an unknown place lasts; single decisions are noisy)."""
    out = []
    for part in np.split(x, np.cumsum(seqs_len)[:-1]):
        c = np.cumsum(np.concatenate([[0.0], part]))
        i = np.arange(1, len(part) + 1)
        out.append((c[i] - c[np.maximum(i - w, 0)]) / np.minimum(i, w))
    return np.concatenate(out)


def softmax(lo: np.ndarray) -> np.ndarray:
    z = np.exp(lo - lo.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def filter_loglik(probs_seqs: list[np.ndarray], n: int, motion: MotionModel) -> np.ndarray:
    """log sum_j prior_t(j) p_t(j)^(1/T): how well each decision fits the filter's prediction (first: uniform)."""
    out = []
    for seq in probs_seqs:
        f = RouteFilter(n, motion)
        for p in seq:
            like = np.clip(p, 1e-12, None) ** (1.0 / motion.temperature)
            prior = np.full(n, 1.0 / n) if f._belief is None else f.predict(f._belief)
            out.append(float(np.log(max(like @ prior, 1e-300))))
            f.update(p)
    return np.array(out)


def auroc(own: np.ndarray, other: np.ndarray) -> float:
    """P(score of an own decision > score of an other-route decision), ties half."""
    d = own[:, None] - other[None, :]
    return float(np.mean(d > 0) + 0.5 * np.mean(d == 0))


def maha(train_emb, train_y, n, q):
    """Negative min over classes of the Mahalanobis distance (class means, tied covariance, shrunk to the identity)."""
    mu = np.stack([train_emb[train_y == c].mean(0) for c in range(n)])
    xc = train_emb - mu[train_y]
    cov = np.cov(xc.T) + 1e-3 * np.eye(xc.shape[1])
    prec = np.linalg.inv(cov)
    d = q[:, None, :] - mu[None]
    return -np.einsum("bcf,fg,bcg->bc", d, prec, d).min(1)


results = {}
for e in ("env1", "env2", "env3"):
    bundle = load_bundle(M / e)
    model = bundle.hstnn().float().eval()
    motion = MotionModel.from_dict(bundle.metadata["route_filter"])
    fs = load_feature_set(M / ".work" / "features" / f"{e}.safetensors")
    n = fs.num_classes
    tr = np.flatnonzero(fs.split == SPLIT_TRAIN)
    val_seqs = traversal_sequences(fs, SPLIT_VAL)
    val = np.concatenate(val_seqs)
    own, oth = np.load(U / f"windows_{e}_own.npz"), np.load(U / f"windows_{e}_other.npz")
    sets = {"val": fs.features[val], "t5": own["windows"], "other": oth["windows"]}
    lo, em, inp = {}, {}, {}
    for k, x in sets.items():
        lo[k], em[k] = forward(model, x)
        inp[k] = x.mean(1).astype(np.float64)
    lo_tr, em_tr = forward(model, fs.features[tr])
    inp_tr = fs.features[tr].mean(1).astype(np.float64)
    flat_tr = fs.features[tr].reshape(len(tr), -1).astype(np.float64)
    sub = rng.choice(len(tr), size=min(REFS, len(tr)), replace=False)
    mean_tr = em_tr.mean(0)
    # engine logits equal the offline model on the same windows
    dev = max(float(np.abs(lo["t5"] - own["logits"]).max()), float(np.abs(lo["other"] - oth["logits"]).max()))
    scores: dict[str, dict[str, np.ndarray]] = {}
    for k, xs in sets.items():
        p = softmax(lo[k])
        ps = np.sort(p, 1)
        s = {"max softmax": ps[:, -1], "max logit": lo[k].max(1),
             "energy (logsumexp)": np.log(np.exp(lo[k] - lo[k].max(1, keepdims=True)).sum(1)) + lo[k].max(1),
             "margin top1-top2": ps[:, -1] - ps[:, -2],
             "kNN cos, HSTNN readout input, all train, k=1": knn_sim(em[k], em_tr, 1),
             "kNN cos, HSTNN readout input, all train, k=5": knn_sim(em[k], em_tr, 5),
             f"kNN cos, HSTNN readout input, {REFS} refs, k=1": knn_sim(em[k], em_tr[sub], 1),
             "kNN cos, window input time-mean, all train, k=1": knn_sim(inp[k], inp_tr, 1),
             f"kNN cos, window input time-mean, {REFS} refs, k=1": knn_sim(inp[k], inp_tr[sub], 1),
             "kNN cos, whole window (9 x F), all train, k=1": knn_sim(
                 xs.reshape(len(xs), -1).astype(np.float64), flat_tr, 1),
             "kNN cos, HSTNN readout input centred, all train, k=1": knn_sim(em[k] - mean_tr, em_tr - mean_tr, 1),
             f"kNN cos, HSTNN readout input centred, {REFS} refs, k=1": knn_sim(em[k] - mean_tr,
                                                                             em_tr[sub] - mean_tr, 1),
             "kNN cos, HSTNN readout input, every 4th train window, k=1": knn_sim(em[k], em_tr[::4], 1),
             "kNN cos, HSTNN readout input, every 8th train window, k=1": knn_sim(em[k], em_tr[::8], 1),
             "Mahalanobis, HSTNN readout input": maha(em_tr, fs.labels[tr], n, em[k])}
        seqs = np.split(p, np.cumsum([len(v) for v in val_seqs])[:-1]) if k == "val" else [p]
        s["route-filter predictive log-likelihood"] = filter_loglik(seqs, n, motion)
        lens = [len(q) for q in seqs]
        for name in ("max softmax", "energy (logsumexp)", "kNN cos, HSTNN readout input, all train, k=1",
                     f"kNN cos, HSTNN readout input, {REFS} refs, k=1",
                     "kNN cos, HSTNN readout input, every 4th train window, k=1",
                     "kNN cos, HSTNN readout input, every 8th train window, k=1",
                     f"kNN cos, HSTNN readout input centred, {REFS} refs, k=1"):
            s[f"{name}, mean of last 9 decisions"] = running_mean(s[name], lens, 9)
        scores[k] = s
    rows = {}
    for name in scores["val"]:
        v, o, x = scores["val"][name], scores["t5"][name], scores["other"][name]
        thr = threshold_for_true_accept(v, 0.95)["threshold"]
        oracle = np.sort(o)[int(np.floor(0.05 * len(o)))]
        rows[name] = {"threshold": float(thr), "tar_t5": float(np.mean(o >= thr)),
                      "far_other": float(np.mean(x >= thr)),
                      "auroc": auroc(o, x), "far_at_t5_tar95_in_sample": float(np.mean(x >= oracle))}
        print(f"{e} {name:52s} TAR {rows[name]['tar_t5']:.3f} FAR {rows[name]['far_other']:.3f} "
              f"AUROC {rows[name]['auroc']:.3f} FAR@t5-oracle {rows[name]['far_at_t5_tar95_in_sample']:.3f}")
    results[e] = {"windows": {k: len(v) for k, v in sets.items()}, "train_windows": len(tr),
                  "max_abs_logit_diff_engine_vs_offline": dev, "detectors": rows}
    print(e, results[e]["windows"], "train", len(tr), "engine-vs-offline logit diff", dev, flush=True)
    np.savez(U / f"scores_{e}.npz", **{f"{k}|{name}": arr for k, s in scores.items() for name, arr in s.items()})
(U / "detectors.json").write_text(json.dumps(results, indent=1))
