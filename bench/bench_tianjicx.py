"""Benchmark of the TianjicX integer path: P04 kernel speed-up over the literal loop (timed in interleaved pairs, see
bench/timing.py), simulator throughput, and the estimated latency/energy of the paper-sized network
[1024-500-500-100] across SNN ratios (random weights, so the spike rates are those of random weights: the trend, not
a trained model's numbers; the RNN/SNN energy and latency ratios are cost-model estimates, not timings)."""

from __future__ import annotations

import os
import time

import numpy as np

from bench.timing import compare
from hstnn_ros.tianjicx.manifest import build_program, network_shapes
from hstnn_ros.tianjicx.mapping import map_network
from hstnn_ros.tianjicx.primitives import p04_matvec, p04_reference
from hstnn_ros.tianjicx.quant import FloatLayer, FloatNet, quantise
from hstnn_ros.tianjicx.sim import run_program


def _net(rng: np.random.Generator, f_in: int, hidden: list[tuple[int, int]], classes: int) -> FloatNet:
    layers, fin = [], f_in
    for ns, nr in hidden:
        layers.append(
            FloatLayer(
                rng.normal(0, 2 / np.sqrt(fin), (ns, fin)),
                np.zeros(ns),
                rng.normal(0, 1 / np.sqrt(fin), (nr, fin)),
                rng.normal(0, 1 / np.sqrt(nr + 1), (nr, nr)),
                np.zeros(nr),
                0.5,
                0.5,
            )
        )
        fin = ns + nr
    return FloatNet(f_in, f_in // 2, tuple(layers), rng.normal(0, 0.1, (classes, fin)), np.zeros(classes), True)


def main() -> dict:
    quick = os.environ.get("HSTNN_BENCH_QUICK") == "1"
    rng = np.random.default_rng(0)
    out: dict = {"quick": quick}
    # 1. P04: vectorised exact formulation vs the literal row loop (one vector, 1024 x 512).
    x = rng.integers(-128, 128, 1024).astype(np.int8)
    w = rng.integers(-128, 128, (1024, 512)).astype(np.int8)
    b = rng.integers(-(2**20), 2**20, 512).astype(np.int32)
    assert np.array_equal(p04_reference(x, w, b), p04_matvec(x, w, b))
    p04 = compare(lambda: p04_reference(x, w, b), lambda: p04_matvec(x, w, b), pairs=3 if quick else 10,
                  name_a="P04 literal loop", name_b="P04 fast")
    out["p04_1024x512_literal_ms"] = 1e3 * p04.a.median
    out["p04_1024x512_fast_ms"] = 1e3 * p04.b.median
    out["p04_speedup"] = {"min": p04.ratio.min, "median": p04.ratio.median, "max": p04.ratio.max}
    out["p04_timing"] = p04.to_dict()
    # 2. Simulator on the paper-sized network across SNN ratios.
    total = 512 if not quick else 128
    f_in = 1024 if not quick else 256
    n_win = 64 if not quick else 16
    steps = 9
    xs = rng.random((n_win, steps, f_in)).astype(np.float32)
    xs[..., : f_in // 2] = xs[..., : f_in // 2] > 0.8
    sweep = []
    for ratio in (0.0, 0.25, 0.5, 0.75, 1.0):
        ns = round(ratio * total / 32) * 32
        net = _net(rng, f_in, [(ns, total - ns), (ns, total - ns)], 100)
        q = quantise(net, xs)
        m, t = build_program(q, map_network(network_shapes(q)), steps)
        xi = q.quantise_input(xs)
        t0 = time.perf_counter()
        rep = run_program(m, t, xi, progress=False)
        dt = time.perf_counter() - t0
        sweep.append(
            {
                "snn_ratio": rep.snn_ratio,
                "cores": len(m["cores"]),
                "latency_us": rep.latency_us,
                "energy_uj": rep.energy_uj,
                "sim_windows_per_s": n_win / dt,
            }
        )
    out["network"] = f"[{f_in}-{total}-{total}-100], T={steps}, {n_win} windows"
    out["sweep"] = sweep
    out["energy_ratio_rnn_over_snn"] = sweep[0]["energy_uj"] / sweep[-1]["energy_uj"]
    out["latency_ratio_rnn_over_snn"] = sweep[0]["latency_us"] / sweep[-1]["latency_us"]
    print("P04 1024x512 (one vector):")
    print(p04.report())
    print(out["network"])
    for s in sweep:
        print(
            f"  SNN ratio {s['snn_ratio']:.2f}: {s['cores']:3d} cores, latency {s['latency_us']:.2f} us, "
            f"energy {s['energy_uj']:.3f} uJ, sim {s['sim_windows_per_s']:.0f} windows/s"
        )
    print(
        f"RNN/SNN energy ratio {out['energy_ratio_rnn_over_snn']:.2f}, "
        f"latency ratio {out['latency_ratio_rnn_over_snn']:.2f} (cycle/energy model estimates)"
    )
    return out


if __name__ == "__main__":
    main()
