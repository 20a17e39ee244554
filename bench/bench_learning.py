"""Selection-stage cost versus one Adaptation epoch on the paper's place-recognition network.

[1024-500-500-100] HSTNN (Adaptation: 500 SNN + 500 RNN per layer), T = 9, 10 000 training windows (quick mode:
``HSTNN_BENCH_QUICK=1``, 1 000 windows and a tenth of the default Selection budget). Target: the whole Selection
stage (Hutchinson importance to convergence + ranking + shrink at every sweep ratio) <= 3x one Adaptation epoch.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from hstnn_ros.datasets.features import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, FeatureSet
from hstnn_ros.learning import network as net
from hstnn_ros.learning.config import TrainConfig, config_from_dict
from hstnn_ros.learning.sweep import Sweep
from hstnn_ros.learning.trainer import fit


def _features(n_train: int, seed: int = 0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    n = n_train + 200
    spikes = (rng.random((n, 9, 512)) < 0.1).astype(np.float32)
    real = rng.normal(size=(n, 9, 512)).astype(np.float32)
    split = np.full(n, SPLIT_TRAIN, np.int8)
    split[n_train:n_train + 100] = SPLIT_VAL
    split[n_train + 100:] = SPLIT_TEST
    return FeatureSet(features=np.concatenate([spikes, real], axis=2), labels=rng.integers(0, 100, n),
                      split=split, group=np.arange(n, dtype=np.int32), env=np.zeros(n, np.int8), num_classes=100,
                      input_spiking=512)


def main() -> dict:
    quick = os.environ.get("HSTNN_BENCH_QUICK") == "1"
    load_before = os.getloadavg()[0]
    n_train = 1_000 if quick else 10_000
    cfg: TrainConfig = config_from_dict({
        "network": {"hidden": [500, 500]},
        "optim": {"batch_size": 64},
        # full mode: the default Selection budget of the training config; quick: a tenth of the data and budget
        "selection": {"min_batches": 2, "max_batches": 4} if quick else {},
        "sweep": {"ratios": [0.0, 0.25, 0.5, 0.75, 0.95, 1.0], "seeds": [0]},
    })
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Sweep(cfg, _features(n_train), tmp, name="bench features")
        model = net.build_model(cfg, sweep.data, sweep.adapt_sizes(), seed=0)
        t0 = time.perf_counter()
        fit(model, sweep.data.train, sweep.data.val, cfg.optim, epochs=1, patience=1, seed=0, desc="adapt epoch")
        t_epoch = time.perf_counter() - t0
        t0 = time.perf_counter()
        imp = sweep.importance(model, seed=0)
        for r in cfg.sweep.ratios:
            net.shrink_model(model, sweep.select(model, imp, r))
        t_sel = time.perf_counter() - t0
    ratio = t_sel / t_epoch
    out = {"quick": quick, "train_windows": n_train, "adaptation_epoch_s": t_epoch, "selection_stage_s": t_sel,
           "selection_over_epoch": ratio, "selection_batches": imp.batches, "selection_samples":
           imp.batches * cfg.selection.batch_size, "converged": imp.converged, "rel_stderr": imp.rel_stderr,
           "target_max_ratio": 3.0, "loadavg_1min": [load_before, os.getloadavg()[0]],
           "note": "timings on a shared machine: compare the ratio only when the load average stayed low"}
    print(f"[1024-500-500-100] T=9, {n_train} windows{' (quick)' if quick else ''}: one Adaptation epoch "
          f"{t_epoch:.2f} s, Selection stage {t_sel:.2f} s ({imp.batches} batches x {cfg.selection.batch_size}, "
          f"converged={imp.converged}) -> ratio {ratio:.2f} (target <= 3)")
    return out


if __name__ == "__main__":
    main()
