"""Unknown-place detector cost per decision (``model.unknown_place``): ``NoveltyTracker.update`` (cosine similarity
to every reference + the running mean) timed against a no-op in interleaved pairs (bench/timing.py), for the sizes a
route fit ships (<= 512 references of the readout input: 118 features in the route20 bundles) and larger, with one
torch thread as the engine runs it (``EngineConfig.threads``). The readout input itself comes with the HSTNN pass
(``FastHstnn.run_readout``), so this is the whole added cost.
``HSTNN_BENCH_QUICK=1``: fewer pairs.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from bench.timing import compare
from hstnn_ros.model.unknown_place import KnnNovelty, NoveltyTracker

QUICK = os.environ.get("HSTNN_BENCH_QUICK", "") not in ("", "0")


def _update_cost(refs: int, features: int, pairs: int) -> dict:
    rng = np.random.default_rng(refs)
    tracker = NoveltyTracker(KnnNovelty(rng.random((refs, features)), 0.9))
    queries = rng.random((64, features)).astype(np.float32)
    k = [0]

    def update() -> None:
        tracker.update(queries[k[0] % 64])
        k[0] += 1

    c = compare(update, lambda: None, pairs=pairs, name_a=f"NoveltyTracker.update ({refs} x {features})",
                name_b="no-op", warmup=20, number=50)
    print(c.report())
    return {"references": refs, "features": features, "update_ms": {k: v * 1e3 for k, v in vars(c.a).items()}}


def main() -> dict:
    """Measure and print; returns the numbers for ``python -m bench``."""
    torch.set_num_threads(1)
    pairs = 10 if QUICK else 30
    return {"update": [_update_cost(r, f, pairs) for r, f in ((512, 118), (512, 1000), (4096, 118))]}


if __name__ == "__main__":
    main()
