"""Decision cost by model size: the online engine with small, medium and paper-size front-ends (issue 14 item 3).

Sizes: ``small`` = the shipped front-ends' shape (``perception.frontends.SMALL``: widths 16-32-64-64 at 90 x 120,
256 features), ``medium`` (32-64-128-128 at 135 x 180, 384 features), ``paper`` (64-128-256-256 at 180 x 240, 512
features); each with an HSTNN [2F-(F/2+F/2)-(F/2+F/2)-100]. Weights are random (trained paper-size front-ends
are not shipped): timings and op counts are real, accuracy is not measured here. The stream is bench_runtime's
synthetic DAVIS346 one (1 Mev/s, 30 Hz RGB), through ``PlaceRecognitionEngine`` at 1 and 2 torch threads.
Prints per size: per-decision latency p50 / p99, decisions/s (1 / mean decision time), MACs and ACs per decision,
the event front-end's spike rate. Target (issue 14): paper size at >= 20 decisions/s with p99 <= 50 ms on 2 cores.
``HSTNN_BENCH_QUICK=1``: fewer frames.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from bench.bench_runtime import _stream
from hstnn_ros.model import HSTNN, HSTNNConfig, LayerSpec
from hstnn_ros.perception.frontends import RGBCNN, SCNN, SMALL, FrontendConfig
from hstnn_ros.perception.window import WindowSpec
from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine
from hstnn_ros.runtime.loading import FrontendAdapter, HstnnClassifier
from hstnn_ros.runtime.pipeline import Pipeline

QUICK = os.environ.get("HSTNN_BENCH_QUICK", "") not in ("", "0")
SIZES: dict[str, dict[str, Any]] = {
    "small": dict(SMALL),
    "medium": {"widths": (32, 64, 128, 128), "pooled_hw": (3, 4), "hidden": 384, "features": 384,
               "input_hw": (135, 180)},
    "paper": {"widths": (64, 128, 256, 256), "hidden": 512, "features": 512, "input_hw": (180, 240)},
}


def _pipeline(shape: dict[str, Any], seed: int = 0) -> Pipeline:
    torch.manual_seed(seed)
    ev = SCNN(FrontendConfig(in_channels=2, **shape)).eval()
    rgb = RGBCNN(FrontendConfig(in_channels=3, **shape)).eval()
    f = ev.feature_size + rgb.feature_size
    half = ev.feature_size // 2
    hstnn = HSTNN(HSTNNConfig(input_size=f, hidden=(LayerSpec(half, half), LayerSpec(half, half)), num_classes=100,
                              input_spiking=ev.feature_size)).eval()
    return Pipeline(FrontendAdapter(ev), FrontendAdapter(rgb), HstnnClassifier(hstnn),
                    window=WindowSpec(input_hw=ev.config.input_hw), rgb_feature_size=rgb.feature_size)


def _run(pipe: Pipeline, stream: list, threads: int) -> dict[str, float]:
    engine = PlaceRecognitionEngine(pipe, EngineConfig(threads=threads, max_pending_frames=len(stream) + 1))
    results = []
    for batch, stamp, img in stream:
        engine.push_events(batch)
        engine.push_frame(stamp, img)
        results += engine.poll()
    results += engine.flush()
    lat = np.asarray([r.latency_s for r in results[3:]]) * 1e3  # the first windows fill the buffers
    return {
        "decisions": len(results), "latency_p50_ms": float(np.percentile(lat, 50)),
        "latency_p99_ms": float(np.percentile(lat, 99)), "decisions_per_s": float(1e3 / lat.mean()),
        "macs_per_decision": float(np.mean([r.ops.total_macs for r in results])),
        "acs_per_decision": float(np.mean([r.ops.total_acs for r in results])),
        "event_spike_rate": float(np.mean([r.ops.event_frontend_spike_rate for r in results])),
    }


def main() -> dict:
    threads_before = torch.get_num_threads()
    n = 40 if QUICK else 150
    stream = _stream(n, np.random.default_rng(0))
    load = os.getloadavg()[0]
    out: dict[str, Any] = {"frames": n, "load_before": load}
    try:
        for name, shape in SIZES.items():
            pipe = _pipeline(shape)
            for threads in (1, 2):
                r = _run(pipe, stream, threads)
                out[f"{name}_t{threads}"] = r
                print(f"{name:6s} {threads} thread(s): p50 {r['latency_p50_ms']:.1f} ms, p99 "
                      f"{r['latency_p99_ms']:.1f} ms, {r['decisions_per_s']:.1f} decisions/s, "
                      f"{r['macs_per_decision'] / 1e6:.1f} M MACs + {r['acs_per_decision'] / 1e6:.1f} M ACs per "
                      f"decision, event spike rate {r['event_spike_rate']:.3f}", flush=True)
    finally:
        torch.set_num_threads(threads_before)
    out["load_after"] = os.getloadavg()[0]
    print(f"load average {load:.1f} -> {out['load_after']:.1f}; random weights: cost, not accuracy")
    return out
