"""Route filter cost per decision (issue 17 target: the filter moves the p99 decision latency by <= 1 ms).

Two engines on the same model (``models/default``; ``HSTNN_BENCH_MODEL`` overrides), one with the route filter and
one without, fed the same synthetic DAVIS346-sized stream (30 Hz RGB frames, ~1 M events/s, as bench_runtime) frame
by frame in alternating order, so both see the same load; their decision latencies (``PlaceResult.latency_s``,
what ``hstnn-replay`` reports) give p50 / p99 each and the p99 difference, over 5 rounds (min / median / max: a
p99 of 300 decisions is the 3rd largest, so the spread shows the machine's noise). ``RouteFilter.update`` alone is timed
against a no-op in interleaved pairs (bench/timing.py) for 20, 100 and 1000 places. ``HSTNN_BENCH_QUICK=1``: fewer
frames.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bench.bench_runtime import _stream
from bench.timing import Spread, compare
from hstnn_ros import defaults
from hstnn_ros.model.route_filter import RouteFilter
from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine
from hstnn_ros.runtime.loading import load_pipeline

QUICK = os.environ.get("HSTNN_BENCH_QUICK", "") not in ("", "0")


def _update_cost(places: int, pairs: int) -> dict:
    rng = np.random.default_rng(places)
    probs = rng.dirichlet(np.ones(places), 64)
    filt = RouteFilter(places)
    k = [0]

    def update() -> None:
        filt.update(probs[k[0] % 64])
        k[0] += 1

    c = compare(update, lambda: None, pairs=pairs, name_a=f"RouteFilter.update ({places} places)", name_b="no-op",
                warmup=20, number=50)
    print(c.report())
    return {"places": places, "update_ms": {k: v * 1e3 for k, v in vars(c.a).items()}}


def _round(model: Path, n_frames: int, seed: int) -> dict[bool, np.ndarray]:
    """Decision latencies (ms) of the two engines over one stream, fed frame by frame in alternating order."""
    engines = {on: PlaceRecognitionEngine(load_pipeline(model), EngineConfig(reorder_delay_ns=0, max_pending_frames=4,
                                                                             route_filter=on))
               for on in (False, True)}
    lat: dict[bool, list[float]] = {False: [], True: []}
    for k, (batch, stamp, img) in enumerate(_stream(n_frames, np.random.default_rng(seed))):
        for on in ((False, True) if k % 2 else (True, False)):
            eng = engines[on]
            eng.push_events(batch)
            eng.push_frame(stamp, img)
            lat[on] += [r.latency_s for r in eng.poll()]
    for on, eng in engines.items():
        lat[on] += [r.latency_s for r in eng.flush()]
    return {on: np.asarray(v) * 1e3 for on, v in lat.items()}


def main() -> dict:
    """Measure and print; returns the numbers for ``python -m bench``."""
    model = Path(os.environ.get("HSTNN_BENCH_MODEL", defaults.shipped_models_dir() / "default"))
    n_frames, rounds = (60, 1) if QUICK else (300, 5)
    res: dict = {"model": str(model), "frames_per_round": n_frames, "rounds": []}
    for r in range(rounds):
        ms = _round(model, n_frames, r)
        row = {f"{'filter' if on else 'no_filter'}_{q}_ms": float(np.percentile(ms[on], int(q[1:])))
               for on in (False, True) for q in ("p50", "p99")}
        row["p99_delta_ms"] = row["filter_p99_ms"] - row["no_filter_p99_ms"]
        row["p50_delta_ms"] = row["filter_p50_ms"] - row["no_filter_p50_ms"]
        res["rounds"].append(row)
        print(f"round {r}: p50 {row['no_filter_p50_ms']:.2f} -> {row['filter_p50_ms']:.2f} ms, p99 "
              f"{row['no_filter_p99_ms']:.2f} -> {row['filter_p99_ms']:.2f} ms (no filter -> filter, "
              f"{len(ms[True])} decisions each)")
    for k in ("p50_delta_ms", "p99_delta_ms"):
        res[k] = Spread.of([row[k] for row in res["rounds"]])
        print(f"filter - no filter {k[:3]}: {res[k].fmt(' ms')}")
        res[k] = vars(res[k])
    pairs = 10 if QUICK else 30
    res["update"] = [_update_cost(n, pairs) for n in (20, 100, 1000)]
    return res


if __name__ == "__main__":
    main()
