"""Wall time of a training sweep: sequential (`hstnn-train`) versus Ray with 2 local workers (`hstnn-train --ray`).

The same sweep both ways (HSTNN units at 2 SNN ratios x 4 seeds on the 8x8 digits, sklearn's ``load_digits``, as the
Ray tests use; adaptation, selection, restoration and a directly hybrid baseline per seed), each unit with one torch
thread, into a fresh output directory per run. The Ray side includes starting and stopping Ray (what a user waits
for). Runs alternate over interleaved pairs (bench/timing.py); ratio = sequential / Ray wall time (> 1: Ray faster).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from sklearn import datasets as sklearn_datasets

from bench.timing import compare
from hstnn_ros.datasets.features import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, FeatureSet, save_feature_set
from hstnn_ros.learning import config_from_dict, run_sweep


def _digits() -> FeatureSet:
    d = sklearn_datasets.load_digits()
    x = (d.images / 16.0).astype(np.float32)  # [N, 8 time steps, 8 features]
    n = len(x)
    split = np.full(n, SPLIT_TRAIN, np.int8)
    perm = np.random.default_rng(0).permutation(n)
    split[perm[: n // 5]] = SPLIT_VAL
    split[perm[n // 5: 2 * n // 5]] = SPLIT_TEST
    return FeatureSet(features=x, labels=d.target.astype(np.int64), split=split, group=np.arange(n, dtype=np.int32),
                      env=np.zeros(n, np.int8), num_classes=10, meta={"source": "sklearn.load_digits"})


def _config(epochs: int, seeds: int) -> dict:
    return {
        "network": {"hidden": [64, 64]},
        "optim": {"lr": 5e-3, "batch_size": 64},
        "epochs": {"adaptation": epochs, "restoration": epochs // 2, "direct": epochs, "patience": epochs},
        "selection": {"probes": 8, "batch_size": 256, "min_batches": 3, "max_batches": 8, "tolerance": 0.15},
        "sweep": {"ratios": [0.5, 1.0], "seeds": list(range(seeds))},
        "eval": {"recall_tolerance": 1, "ops_samples": 32},
    }


def main() -> dict:
    from hstnn_ros.learning.distributed import run_sweep_ray  # noqa: PLC0415 - Ray is an optional extra

    quick = os.environ.get("HSTNN_BENCH_QUICK") == "1"
    epochs, seeds, pairs = (6, 2, 1) if quick else (20, 4, 2)
    cfg = config_from_dict(_config(epochs, seeds))
    feats = _digits()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = save_feature_set(root / "digits.safetensors", feats)
        runs = {"seq": 0, "ray": 0}

        def sequential() -> None:
            runs["seq"] += 1
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # as each Ray unit runs
            try:
                run_sweep(cfg, feats, root / f"seq{runs['seq']}", name=str(path.resolve()), plots=False)
            finally:
                torch.set_num_threads(threads)

        def on_ray() -> None:
            runs["ray"] += 1
            run_sweep_ray(cfg, path, root / f"ray{runs['ray']}", workers=2, plots=False)

        cmp = compare(sequential, on_ray, pairs=pairs, warmup=0, name_a="sequential", name_b="ray x2")
    load_after = os.getloadavg()[0]
    units = seeds * (1 + 2 + 2)
    print(f"sweep of {units} units ({seeds} seeds x [adaptation, hstnn at 2 ratios, direct at 2 ratios]), "
          f"{epochs} epochs, load {load_before:.1f} -> {load_after:.1f}")
    print(cmp.report())
    print(f"Ray speed-up (sequential / Ray wall time, min / median / max): {cmp.ratio.fmt('x')}")
    return {"units": units, "epochs": epochs, "load": [load_before, load_after], **cmp.to_dict()}
