"""Selection-stage cost versus one Adaptation epoch on the paper's place-recognition network.

[1024-500-500-100] HSTNN (Adaptation: 500 SNN + 500 RNN per layer), T = 9, 10 000 training windows (quick mode:
``HSTNN_BENCH_QUICK=1``, 1 000 windows and a tenth of the default Selection budget). Target: the whole Selection
stage (Hutchinson importance to convergence + ranking + shrink at every sweep ratio) <= 3x one Adaptation epoch.
The two alternate over three pairs (bench/timing.py); each epoch trains the same model further, and each Selection
stage estimates the importance of the weights it finds (no cache).
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from bench.timing import compare
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
    pairs = 3
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Sweep(cfg, _features(n_train), tmp, name="bench features")
        model = net.build_model(cfg, sweep.data, sweep.adapt_sizes(), seed=0)
        imps = []

        def epoch() -> None:
            fit(model, sweep.data.train, sweep.data.val, cfg.optim, epochs=1, patience=1, seed=0, desc="adapt epoch")

        def selection() -> None:
            for f in sweep.cache_dir.glob("importance_*"):  # measure the estimation, not a cache hit
                f.unlink()
            imp = sweep.importance(model, seed=0)
            for r in cfg.sweep.ratios:
                net.shrink_model(model, sweep.select(model, imp, r))
            imps.append(imp)

        cmp = compare(selection, epoch, pairs=pairs, warmup=0, name_a="Selection stage", name_b="Adaptation epoch")
    imp = imps[-1]
    out = {"quick": quick, "train_windows": n_train, "timing": cmp.to_dict(),
           "adaptation_epoch_s_median": cmp.b.median, "selection_stage_s_median": cmp.a.median,
           "selection_over_epoch": {"min": cmp.ratio.min, "median": cmp.ratio.median, "max": cmp.ratio.max},
           "selection_batches": [i.batches for i in imps], "selection_samples": imp.batches * cfg.selection.batch_size,
           "converged": [i.converged for i in imps], "rel_stderr": imp.rel_stderr,
           "target_max_ratio": 3.0, "loadavg_1min": [load_before, os.getloadavg()[0]]}
    print(f"[1024-500-500-100] T=9, {n_train} windows{' (quick)' if quick else ''}, Selection stage "
          f"({', '.join(str(i.batches) for i in imps)} batches x {cfg.selection.batch_size}, converged "
          f"{[i.converged for i in imps]}) vs one Adaptation epoch:")
    print(cmp.report())
    print(f"  -> Selection / epoch {cmp.ratio.fmt('x')} (target <= 3)")
    return out


if __name__ == "__main__":
    main()
