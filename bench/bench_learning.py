"""Selection-stage cost versus one Adaptation epoch on the paper's place-recognition network.

[1024-500-500-100] HSTNN (Adaptation: 500 SNN + 500 RNN per layer), T = 9, 10 000 training windows (quick mode:
``HSTNN_BENCH_QUICK=1``, 1 000 windows, at most 4 batches per round and 2 rounds). Two targets, each timed
against one Adaptation epoch (interleaved pairs, bench/timing.py; each epoch trains the same model further, each
estimate scores the weights it finds, no cache):

* the ranking: the first round's scores (every neuron present) to the configured split-half reliability (or
  ``max_batches``): target <= 3 epochs (issue 16);
* the whole Selection stage: the ``selection.rounds`` rounds of pruning at every hybrid sweep ratio (the first
  round's scores are shared by the ratios), reported against the same epoch (Restoration then trains for
  ``epochs.restoration`` = 100 epochs per ratio).

The features are random (spikes and Gaussian values, random labels): the timings, not the rankings, are the point.
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
        # quick: a quarter of the default batch budget and 2 rounds instead of 16 (the default stage, 16 rounds of
        # up to 16 batches at 4 ratios, takes over an hour on 2 cores even on 1 000 windows)
        "selection": {"min_batches": 2, "max_batches": 4, "rounds": 2} if quick else {},
        "sweep": {"ratios": [0.0, 0.25, 0.5, 0.75, 0.95, 1.0], "seeds": [0]},
    })
    hybrid = [r for r in cfg.sweep.ratios if 0 < r < 1]
    pairs = 3
    with tempfile.TemporaryDirectory() as tmp:
        sweep = Sweep(cfg, _features(n_train), tmp, name="bench features")
        model = net.build_model(cfg, sweep.data, sweep.adapt_sizes(), seed=0)
        firsts, stages = [], []

        def epoch() -> None:
            fit(model, sweep.data.train, sweep.data.val, cfg.optim, epochs=1, patience=1, seed=0, desc="adapt epoch")

        def uncached() -> None:
            for f in sweep.cache_dir.glob("importance_*"):  # measure the estimation, not a cache hit
                f.unlink()

        def ranking() -> None:
            uncached()
            firsts.append(sweep.importance(model, seed=0))

        def selection() -> None:
            uncached()
            stages.append([sweep.select(model, r, seed=0)[1] for r in hybrid])

        rank_cmp = compare(ranking, epoch, pairs=pairs, warmup=0, name_a="ranking (round 1)",
                           name_b="Adaptation epoch")
        stage_cmp = compare(selection, epoch, pairs=1, warmup=0, name_a="Selection stage",
                            name_b="Adaptation epoch")
    batches = [sum(r.batches for r in rounds) for rounds in stages[-1]]
    sel = cfg.selection
    out = {"quick": quick, "train_windows": n_train, "selection": {"criterion": sel.criterion.value,
           "rounds": sel.rounds, "probes": sel.probes, "batch_size": sel.batch_size},
           "ranking": rank_cmp.to_dict(), "stage": stage_cmp.to_dict(),
           "adaptation_epoch_s_median": rank_cmp.b.median, "ranking_s_median": rank_cmp.a.median,
           "ranking_over_epoch": {"min": rank_cmp.ratio.min, "median": rank_cmp.ratio.median,
                                  "max": rank_cmp.ratio.max},
           "stage_over_epoch": {"min": stage_cmp.ratio.min, "median": stage_cmp.ratio.median,
                                "max": stage_cmp.ratio.max},
           "ranking_batches": [i.batches for i in firsts],
           "stage_batches_per_ratio": dict(zip(hybrid, batches, strict=True)),
           "target_ranking_max_ratio": 3.0, "loadavg_1min": [load_before, os.getloadavg()[0]]}
    print(f"[1024-500-500-100] T=9, {n_train} windows{' (quick)' if quick else ''}, criterion {sel.criterion.value}, "
          f"{sel.rounds} rounds, {sel.probes} probe(s) x batches of {sel.batch_size}:")
    print(rank_cmp.report())
    print(f"  -> ranking (round 1, {', '.join(str(i.batches) for i in firsts)} batches) / epoch "
          f"{rank_cmp.ratio.fmt('x')} (target <= 3)")
    print(stage_cmp.report())
    print(f"  -> whole Selection stage at ratios {hybrid} ({batches} batches) / epoch {stage_cmp.ratio.fmt('x')} "
          f"(Restoration: {cfg.epochs.restoration} epochs per ratio)")
    return out


if __name__ == "__main__":
    main()
