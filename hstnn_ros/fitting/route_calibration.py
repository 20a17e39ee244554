"""Route-filter calibration of a shipped bundle (``model.route_filter``): the motion model from the training
traversals' place sequences, the likelihood temperature and the "unknown place" thresholds from the validation
traversals.

One window of a feature set is one decision of the online engine (a window ends at every frame), so the label steps
between consecutive windows of a traversal are the steps between decisions. The fit has no traversal of another
route, so the unknown thresholds are set for a target true-accept rate on the validation traversals
(``threshold_for_true_accept``); their false-accept rate has to be measured on recordings off the route
(``fitting.off_route``, ``hstnn-fit-route --off-route``; docs/reports/route_filter.md did it by hand). Besides the
softmax thresholds (kept for bundles read by older engines), the unknown-place detector the engine uses
(``model.unknown_place``: novelty of the window's representation) takes its reference vectors from the training
traversals and its threshold from the validation ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hstnn_ros.datasets.features import SPLIT_TRAIN, SPLIT_VAL, FeatureSet
from hstnn_ros.fitting.errors import FitError
from hstnn_ros.model.network import HSTNN
from hstnn_ros.model.route_filter import MotionModel, RouteFilter, estimate_motion, threshold_for_true_accept
from hstnn_ros.model.unknown_place import calibrate_novelty

log = logging.getLogger(__name__)

#: Likelihood temperatures tried on the validation traversals (the best filtered top-1 is kept; ties: lowest NLL).
#: Below 1 sharpens the likelihood: the filter then lags less behind place changes of an accurate classifier.
TEMPERATURES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def traversal_indices(fs: FeatureSet, mask: np.ndarray | None = None) -> list[np.ndarray]:
    """Window indices of every traversal (``group``) among the windows in ``mask`` (all: ``None``), in stored (time)
    order."""
    idx = np.flatnonzero(mask) if mask is not None else np.arange(len(fs.group))
    return [idx[fs.group[idx] == g] for g in np.unique(fs.group[idx])]


def traversal_sequences(fs: FeatureSet, split: int) -> list[np.ndarray]:
    """Window indices of every traversal (``group``) of ``split``, in stored (time) order."""
    return traversal_indices(fs, fs.split == split)


@torch.inference_mode()
def window_outputs(model: HSTNN, features: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Softmax ``[N, C]`` and readout input ``[N, n]`` (``RunRecord.readout_input``) of ``model`` (an ``HSTNN``,
    eval mode) over windows ``[N, T, F]``."""
    model.eval()
    probs, feats = [], []
    for i in range(0, len(features), batch_size):
        rec = model.run(torch.from_numpy(np.array(features[i:i + batch_size], np.float32)))  # a copy: a loaded
        # feature set is a read-only map
        if rec.readout_input is None:  # HSTNN.run always records it
            raise FitError("the HSTNN's run recorded no readout input; cannot calibrate the unknown-place detector")
        probs.append(torch.softmax(rec.logits.float(), dim=1))
        feats.append(rec.readout_input.float())
    return torch.cat(probs).numpy().astype(np.float64), torch.cat(feats).numpy()


def window_probs(model: HSTNN, features: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Softmax ``[N, C]`` of ``model`` (eval mode) over windows ``[N, T, F]``."""
    return window_outputs(model, features, batch_size)[0]


def filtered_probs(probs: Sequence[np.ndarray], num_places: int, motion: MotionModel) -> list[np.ndarray]:
    """The route filter run over each traversal's softmax sequence (from a reset belief)."""
    filt = RouteFilter(num_places, motion)
    return [filt.run(p) for p in probs]


def calibrate_route(model: HSTNN, fs: FeatureSet, *, true_accept: float = 0.95,
                    temperatures: Sequence[float] = TEMPERATURES) -> dict[str, Any]:
    """Motion model, temperature and unknown thresholds of ``model`` on ``fs`` (see the module docstring).

    Returns ``route_filter`` (``MotionModel.to_dict``), ``unknown_threshold`` (on the raw softmax top-1),
    ``unknown_threshold_filtered`` (on the filtered top-1) and ``validation`` (windows, raw and filtered top-1,
    the true-accept rates, the filtered top-1 and NLL of every temperature tried)."""
    train = traversal_sequences(fs, SPLIT_TRAIN)
    val = traversal_sequences(fs, SPLIT_VAL)
    if not train or not val:
        raise FitError("route calibration needs training and validation traversals in the feature set")
    base = estimate_motion([fs.labels[i] for i in train])
    val_out = [window_outputs(model, fs.features[i]) for i in val]
    probs = [p for p, _ in val_out]
    labels = [fs.labels[i] for i in val]
    y = np.concatenate(labels)
    nll, top1 = {}, {}
    for t in temperatures:
        motion = MotionModel(base.offsets, base.probs, base.jump, float(t))
        post = np.concatenate(filtered_probs(probs, fs.num_classes, motion))
        nll[float(t)] = float(-np.mean(np.log(np.clip(post[np.arange(len(y)), y], 1e-12, None))))
        top1[float(t)] = float(np.mean(post.argmax(axis=1) == y))
    best_t = max(nll, key=lambda t: (top1[t], -nll[t]))
    motion = MotionModel(base.offsets, base.probs, base.jump, best_t)
    raw = np.concatenate(probs)
    post = np.concatenate(filtered_probs(probs, fs.num_classes, motion))
    thr_raw = threshold_for_true_accept(raw.max(axis=1), true_accept)
    thr_filt = threshold_for_true_accept(post.max(axis=1), true_accept)
    validation = {"windows": len(y), "traversals": len(val),
                  "raw_top1": float(np.mean(raw.argmax(axis=1) == y)),
                  "filtered_top1": float(np.mean(post.argmax(axis=1) == y)),
                  "true_accept_raw": thr_raw["true_accept"], "true_accept_filtered": thr_filt["true_accept"],
                  "target_true_accept": float(true_accept), "nll_by_temperature": nll,
                  "filtered_top1_by_temperature": top1}
    detector, facts = calibrate_novelty([window_outputs(model, fs.features[i])[1] for i in train],
                                        [f for _, f in val_out], true_accept)
    validation["true_accept_detector"] = facts["true_accept_validation"]
    log.info("route filter: kernel %s over steps %s, temperature %g; val top-1 raw %.3f filtered %.3f; unknown "
             "thresholds raw %.3f filtered %.3f, detector %.4f (%d references)", np.round(motion.probs, 3),
             motion.offsets, best_t, validation["raw_top1"], validation["filtered_top1"], thr_raw["threshold"],
             thr_filt["threshold"], detector.threshold, len(detector.reference))
    return {"route_filter": motion.to_dict(), "unknown_threshold": thr_raw["threshold"],
            "unknown_threshold_filtered": thr_filt["threshold"], "unknown_detector": detector.to_metadata(**facts),
            "detector": detector, "validation": validation}
