"""Online runtime benchmark: per-decision latency, replay throughput vs real time, front-end FLOP/s vs GEMM peak.

Drives the real engine with the shipped default model (``models/default``; ``HSTNN_BENCH_MODEL`` overrides) on a
synthetic DAVIS346-sized stream: 30 Hz RGB frames and ~1 M events/s. Targets (issue 6): p99 <= 33 ms per decision
(30 decisions/s) and replay >= 3x real time. The GEMM peak is measured in the same run (fp32 ``torch.mm``), timed
in pairs interleaved with the front-ends (bench/timing.py) so the front-end share is comparable across machines and
its min / median / max shows the machine's noise: at the engine's threads (``EngineConfig.threads``, 1 by default)
and at torch's default (one per core), the machine's peak the headline share is taken of.
Replay is measured twice: the engine alone on that in-memory stream (``realtime_factor``), and ``make demo``'s
replays (the demo route in env1-3 through each environment's shipped bundle, bag reading, CDR and evt3 decoding and
image conversion included; start-up excluded as for a node), with the split of their wall time per stage
(``demo_replay``; target, issue 14: >= 5x real time on a quiet machine).
``HSTNN_BENCH_QUICK=1``: fewer frames.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from bench.timing import compare
from hstnn_ros import defaults
from hstnn_ros.datasets.frontend_training import gemm_peak_flops
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine
from hstnn_ros.runtime.loading import load_pipeline

QUICK = os.environ.get("HSTNN_BENCH_QUICK", "") not in ("", "0")
PERIOD_NS = 33_333_333
EVENTS_PER_S = 1_000_000


def _stream(n_frames: int, rng: np.random.Generator) -> list[tuple[EventBatch, int, np.ndarray]]:
    w, h = defaults.DAVIS346_WH
    per = EVENTS_PER_S * PERIOD_NS // 1_000_000_000
    out = []
    for k in range(1, n_frames + 1):
        t = np.sort(rng.integers((k - 1) * PERIOD_NS, k * PERIOD_NS, per)).astype(np.int64)
        b = EventBatch(t, rng.integers(0, w, per).astype(np.uint16), rng.integers(0, h, per).astype(np.uint16),
                   rng.integers(0, 2, per).astype(np.uint8), w, h)
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        out.append((b, k * PERIOD_NS, img))
    return out


def _frontend_vs_gemm(engine: PlaceRecognitionEngine, pairs: int, gemm_threads: int, n: int = 1024) -> dict:
    """The front-ends' FLOP/s as a share of the fp32 GEMM's, timed in interleaved pairs (bench/timing.py): one call
    of the front-ends as the engine makes it (event: ``bins`` frames at once, RGB: one frame; FLOPs = 2 x MACs +
    ACs, as they measure them on their inputs) at the engine's threads, against one ``n x n`` ``torch.mm`` at
    ``gemm_threads``."""
    pipe = engine.pipeline
    H, W = pipe.input_hw
    rng = np.random.default_rng(1)
    ev_in = torch.from_numpy(rng.poisson(0.3, (pipe.window.bins_per_rgb, 2, H, W)).astype(np.float32))
    rgb_in = torch.rand(1, pipe.rgb_channels, H, W)

    def frontends() -> float:
        with torch.inference_mode():
            r = pipe.event_frontend(ev_in)
            flops = 2 * r.macs + r.acs
            if pipe.rgb_frontend is not None:
                r = pipe.rgb_frontend(rgb_in)
                flops += 2 * r.macs + r.acs
        return float(flops)

    a, b = torch.randn(n, n), torch.randn(n, n)
    threads = torch.get_num_threads()

    def gemm() -> None:
        torch.set_num_threads(gemm_threads)
        try:
            torch.mm(a, b)
        finally:
            torch.set_num_threads(threads)

    fe_flops, gemm_flops = frontends(), 2.0 * n**3
    cmp = compare(gemm, frontends, pairs=pairs, name_a=f"fp32 GEMM {n}^3 ({gemm_threads} threads)",
                  name_b=f"front-ends, one frame ({threads} threads)")
    share = cmp.ratio.scaled(fe_flops / gemm_flops)  # (fe_flops / t_fe) / (gemm_flops / t_gemm), pair by pair
    print(cmp.report())
    print(f"  -> front-end FLOP/s as a share of this GEMM's: {share.fmt()}")
    return {"timing": cmp.to_dict(), "gemm_peak_flops_per_s": gemm_flops / cmp.a.min,
            "frontend_flops_per_s_median": fe_flops / cmp.b.median, "frontend_ms_per_frame_median": cmp.b.median * 1e3,
            "share": {"min": share.min, "median": share.median, "max": share.max}}


STAGES = ("read", "events", "images", "framing", "event_frontend", "rgb_frontend", "hstnn")


def _demo_replays() -> dict:
    """What ``make demo`` replays (the demo route's traversal 100 in env1-3, each through its environment's shipped
    model, as ``hstnn-demo``), each bag once: recorded seconds per replay second and where the replay's wall time
    went: bag reading, event decoding (CDR + decoder), images (deserialize + decode), then per decision framing
    (cut + frames), the event front-end, the RGB front-end (preprocessing included) and the HSTNN (the engine's
    ``stage_seconds``, the source's ``seconds``); ``other`` is the rest (replay loop, buffers, pairing, queues)."""
    import tempfile  # noqa: PLC0415

    from hstnn_ros.datasets.sidecar import route_bags  # noqa: PLC0415
    from hstnn_ros.datasets.synth import generate_route_set, preset_config  # noqa: PLC0415
    from hstnn_ros.enums import Environment  # noqa: PLC0415
    from hstnn_ros.runtime.bag_source import open_bag  # noqa: PLC0415
    from hstnn_ros.runtime.replay import ground_truth_from_route, replay_engine_config, run_replay  # noqa: PLC0415
    from hstnn_ros.runtime.session import open_session  # noqa: PLC0415

    out: dict = {"bags": {}}
    total = dict.fromkeys((*STAGES, "other", "wall", "recorded"), 0.0)
    with tempfile.TemporaryDirectory(prefix="hstnn_bench_replay_") as tmp:
        index = generate_route_set(Path(tmp), preset_config("demo"), envs=list(Environment), traversals=1, seed=0,
                                   preset="demo", progress=False, first_traversal=100)
        for bag, env in route_bags(index.parent):
            source = open_bag(bag)
            session = open_session(preset=env, config=replay_engine_config())
            res = run_replay(source.items(), session.engine, ground_truth_from_route(bag), progress=False)
            eng = session.engine.stage_seconds
            split = {"read": source.seconds.read, "events": source.seconds.events, "images": source.seconds.images,
                     "framing": eng.framing, "event_frontend": eng.event_frontend, "rgb_frontend": eng.rgb_frontend,
                     "hstnn": eng.hstnn}
            split["other"] = res.wall_s - sum(split.values())
            row = {"recorded_s": res.stream_s, "wall_s": res.wall_s, "realtime_factor": res.realtime_factor,
                   "decisions": len(res.results), "split_s": split}
            out["bags"][bag.name] = row
            for k, v in split.items():
                total[k] += v
            total["wall"] += res.wall_s
            total["recorded"] += res.stream_s
            print(f"  {bag.name}: {res.stream_s:.2f} s recorded in {res.wall_s:.2f} s = {res.realtime_factor:.2f}x "
                  f"real time ({len(res.results)} decisions); " + ", ".join(
                      f"{k} {100 * v / res.wall_s:.0f}%" for k, v in split.items()))
    out["realtime_factor"] = total["recorded"] / total["wall"]
    out["split_share"] = {k: total[k] / total["wall"] for k in (*STAGES, "other")}
    print(f"  all: {out['realtime_factor']:.2f}x real time; wall time: " + ", ".join(
        f"{k} {100 * v:.1f}%" for k, v in out["split_share"].items()))
    return out


def _ms(v: list[float]) -> tuple[float, float]:
    """(p50, p99) in ms of durations in seconds."""
    a = np.asarray(v) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def _stage_bench(n: int) -> dict:
    """Without a model bundle (front-ends not built yet): time the engine's real stages that exist on their own:
    event window at 1 Mev/s on a DAVIS346 stream, RGB preprocessing, and the paper-size HSTNN
    [1024-500-500-100] (random weights, LIF/RNN halves) with its Eq. 23-25 op count on one window."""
    from hstnn_ros.model import HSTNN, HSTNNConfig, LayerSpec  # noqa: PLC0415
    from hstnn_ros.perception.events.batch import EventBatch  # noqa: PLC0415
    from hstnn_ros.perception.events.framing import events_to_frames, split_interval  # noqa: PLC0415
    from hstnn_ros.perception.images import preprocess_rgbd  # noqa: PLC0415
    from hstnn_ros.runtime.loading import HstnnClassifier  # noqa: PLC0415

    rng = np.random.default_rng(0)
    stream = _stream(n, rng)
    t_frame = []
    for batch, stamp, _ in stream:
        b = EventBatch(batch.t_ns, batch.x, batch.y, batch.p, batch.width, batch.height)
        t0 = time.perf_counter()
        events_to_frames(b, split_interval(stamp - PERIOD_NS, stamp, 3), defaults.FRONTEND_INPUT_WH)
        t_frame.append(time.perf_counter() - t0)
    t_rgb = []
    for _, _, img in stream:
        t0 = time.perf_counter()
        preprocess_rgbd(img, None, defaults.FRONTEND_INPUT_WH)
        t_rgb.append(time.perf_counter() - t0)
    f = 2 * defaults.FRONTEND_FEATURES
    clf = HstnnClassifier(HSTNN(HSTNNConfig(input_size=f, hidden=(LayerSpec(250, 250), LayerSpec(250, 250)),
                                            num_classes=defaults.NUM_PLACES, input_spiking=f // 2))).eval()
    x = torch.zeros(1, defaults.EVENT_FRAMES_PER_WINDOW, f)
    x[..., : f // 2] = (torch.rand(1, defaults.EVENT_FRAMES_PER_WINDOW, f // 2) < 0.1).float()
    x[..., f // 2 :][:, list(defaults.RGB_STEPS)] = torch.rand(1, 3, f // 2)
    t_h, ops = [], None
    with torch.inference_mode():
        for _ in range(n):
            t0 = time.perf_counter()
            ops = clf(x)
            t_h.append(time.perf_counter() - t0)
    return {
        "model": "none (no shipped bundle: front-ends not built); stage timings only",
        "framing_ms_p50_p99": _ms(t_frame), "rgb_preprocess_ms_p50_p99": _ms(t_rgb),
        "hstnn_window_ms_p50_p99": _ms(t_h), "hstnn_macs_per_window": ops.macs, "hstnn_acs_per_window": ops.acs,
        "events_per_frame": len(stream[0][0].t_ns), "gemm_peak_flops_per_s": gemm_peak_flops(),
        "threads": torch.get_num_threads(), "quick": QUICK,
    }


def main() -> dict:
    """Measure and print; returns the numbers for ``python -m bench``."""
    model = Path(os.environ.get("HSTNN_BENCH_MODEL", defaults.shipped_models_dir() / "default"))
    if not (model / "bundle.json").is_file():
        res = _stage_bench(20 if QUICK else 100)
        for k, v in res.items():
            print(f"{k:>30}: {v}")
        return res
    cores = torch.get_num_threads()  # torch's default before the engine sets its own
    pipe = load_pipeline(model)
    n_frames = 40 if QUICK else 300
    engine = PlaceRecognitionEngine(pipe, EngineConfig(reorder_delay_ns=0, max_pending_frames=4))
    stream = _stream(n_frames, np.random.default_rng(0))
    lat = []
    t0 = time.perf_counter()
    for batch, stamp, img in stream:
        engine.push_events(batch)
        engine.push_frame(stamp, img)
        lat += [r.latency_s for r in engine.poll()]
    lat += [r.latency_s for r in engine.flush()]
    wall = time.perf_counter() - t0
    lat_ms = np.asarray(lat) * 1e3
    threads = torch.get_num_threads()
    pairs = 10 if QUICK else 40
    print("front-ends vs the GEMM at the engine's threads:")
    fe_engine = _frontend_vs_gemm(engine, pairs, threads)
    print(f"front-ends vs the GEMM at torch's default threads ({cores}: the machine's peak):")
    fe_peak = _frontend_vs_gemm(engine, pairs, cores)
    bag = {}
    if (defaults.shipped_models_dir() / "env2" / "bundle.json").is_file():
        print("make demo's replays (bag reading and decoding included), and where their time goes:")
        demo = _demo_replays()
        bag = {"demo_replay_realtime_factor": demo["realtime_factor"], "demo_replay": demo}
    res = {
        "model": str(model),
        "mode": engine.mode.value,
        "decisions": len(lat),
        "latency_p50_ms": float(np.percentile(lat_ms, 50)),
        "latency_p99_ms": float(np.percentile(lat_ms, 99)),
        "latency_target_p99_ms": 33.0,
        "realtime_factor": n_frames * PERIOD_NS / 1e9 / wall,
        "realtime_target": 3.0,
        **bag,
        "gemm_peak_flops_per_s": fe_peak["gemm_peak_flops_per_s"],
        "gemm_peak_threads": cores,
        "engine_gemm_peak_flops_per_s": fe_engine["gemm_peak_flops_per_s"],
        "frontend_flops_per_s": fe_engine["frontend_flops_per_s_median"],
        "frontend_ms_per_frame": fe_engine["frontend_ms_per_frame_median"],
        "frontend_share_of_gemm_peak": fe_peak["share"],
        "frontend_share_of_engine_peak": fe_engine["share"],
        "frontend_vs_gemm_timing": {"engine_threads": fe_engine["timing"], "default_threads": fe_peak["timing"]},
        "threads": threads,
        "quick": QUICK,
    }
    for k, v in res.items():
        print(f"{k:>30}: {v:.4g}" if isinstance(v, float) else f"{k:>30}: {v}")
    return res


if __name__ == "__main__":
    main()
