"""Peak memory (RSS) of the node's process per model size, at two route lengths (it must not grow with the route).

The node's logic without rclpy (``OnlineRecognizer``: bounded work queue, decoder, pairing, engine) runs in a fresh
process per case and is fed a synthetic route's recorded messages (demo preset, env1: evt3 event packets as CDR bytes
and colour images), waiting for the worker after each image so that nothing is dropped. Model sizes:

- ``shipped``: the shipped default bundle (``models/default``: the small front-ends, ``FrontendConfig`` ``SMALL``
  at 90 x 120, and its HSTNN);
- ``paper``: paper-size front-ends built randomly (``FrontendConfig`` defaults: widths 64-128-256-256, 512
  features, 180 x 240 input) with a paper-size HSTNN [1024-500-500-100] (random weights: memory, not accuracy).

Memory is the process's peak RSS (``VmHWM``, see ``peak_rss_mb``), beside its RSS once the model is loaded (and the
peak until then: imports and model building) and at the end; the ratio of the peaks at the two route lengths shows
whether it is bounded. Dataset building's peak RSS on long routes is ``bench_dataset``'s. Quick mode
(``HSTNN_BENCH_QUICK=1``): 10 s and 30 s of route; full mode: 30 s and 120 s (``HSTNN_BENCH_MEMORY_SECONDS=a,b``
picks others).
"""

# ruff: noqa: PLC0415 - each case imports the package in its own fresh process (memory is measured there)

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

QUICK = os.environ.get("HSTNN_BENCH_QUICK") == "1"
SIZES = ("shipped", "paper")


def peak_rss_mb() -> float:
    """This process's peak RSS in MB: ``VmHWM`` of ``/proc/self/status`` (Linux; or ``VmRSS`` when above it), else
    ``ru_maxrss``. Not
    ``ru_maxrss`` where ``VmHWM`` exists: Linux carries a parent's high-water mark into a child across fork and exec,
    so a child spawned by a big parent would report the parent's peak."""
    try:
        status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        # the kernel updates VmHWM lazily: the current RSS may be above it
        return max(int(status["VmHWM"].split()[0]), int(status["VmRSS"].split()[0])) / 1e3
    except (OSError, KeyError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # kB on Linux (bytes on macOS: then a bound)


def _paper_session() -> Any:
    """A session over randomly initialised paper-size front-ends and HSTNN."""
    from hstnn_ros.model import HSTNN, HSTNNConfig, LayerSpec
    from hstnn_ros.perception.frontends import RGBCNN, SCNN, FrontendConfig
    from hstnn_ros.perception.window import WindowSpec
    from hstnn_ros.runtime.engine import PlaceRecognitionEngine
    from hstnn_ros.runtime.loading import FrontendAdapter, HstnnClassifier
    from hstnn_ros.runtime.pipeline import Pipeline
    from hstnn_ros.runtime.replay import replay_engine_config
    from hstnn_ros.runtime.session import Session

    ev, rgb = SCNN(FrontendConfig(in_channels=2)).eval(), RGBCNN(FrontendConfig(in_channels=3)).eval()
    f = ev.feature_size + rgb.feature_size
    hstnn = HSTNN(HSTNNConfig(input_size=f, hidden=(LayerSpec(250, 250), LayerSpec(250, 250)), num_classes=100,
                              input_spiking=ev.feature_size)).eval()
    pipe = Pipeline(FrontendAdapter(ev), FrontendAdapter(rgb), HstnnClassifier(hstnn),
                    window=WindowSpec(input_hw=ev.config.input_hw), rgb_feature_size=rgb.feature_size)
    return Session(PlaceRecognitionEngine(pipe, replay_engine_config()), Path("(random paper-size)"), None)


def _run_node(size: str, bag: str) -> dict[str, float]:
    """In a fresh process: load the model, feed the bag's events and colour frames to an ``OnlineRecognizer``."""
    import psutil
    import torch

    from hstnn_ros.bags import BagReader
    from hstnn_ros.runtime.online import OnlineRecognizer
    from hstnn_ros.runtime.params import node_settings
    from hstnn_ros.runtime.session import open_session

    peak = peak_rss_mb
    now = lambda: psutil.Process().memory_info().rss / 1e6  # noqa: E731
    settings = node_settings({})
    session = _paper_session() if size == "paper" else open_session(None, "default", config=settings.engine)
    rss_loaded, peak_loading = now(), peak()
    decisions = 0

    def publish(results: list, _frame_id: str) -> None:  # counted, not kept: kept results would grow with the route
        nonlocal decisions
        decisions += len(results)

    rec = OnlineRecognizer(settings, publish, session=session)
    t0 = time.perf_counter()
    with BagReader(Path(bag)) as r:
        events = next(t for t, info in r.topics.items() if info.msgtype.endswith("EventPacket"))
        image = next(t for t, info in r.topics.items() if info.msgtype == "sensor_msgs/msg/Image"
                     and "depth" not in t)
        for m in r.messages(topics=[events, image]):
            if m.topic == events:
                rec.offer_events(m.data)
            else:
                rec.offer_image(r.deserialize(m))
                rec.drain(60.0)  # nothing dropped: the queue never fills
    rec.close()
    c = rec.counters
    return {"rss_loaded_mb": rss_loaded, "peak_loading_mb": peak_loading, "rss_peak_mb": peak(),
            "rss_end_mb": now(), "wall_s": time.perf_counter() - t0, "decisions": decisions,
            "dropped": c.event_msgs_dropped_queue + c.frames_dropped_queue, "threads": torch.get_num_threads()}


def main() -> dict:
    """Measure and print; returns the numbers."""
    from bench.bench_dataset import _write_route

    lengths = (10.0, 30.0) if QUICK else (30.0, 120.0)
    if os.environ.get("HSTNN_BENCH_MEMORY_SECONDS"):
        lengths = tuple(float(x) for x in os.environ["HSTNN_BENCH_MEMORY_SECONDS"].split(","))
    out: dict[str, Any] = {"quick": QUICK, "route_s": {}}
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as d:
        for seconds in lengths:
            bag = Path(d) / f"route_{seconds:.0f}"
            out["route_s"][f"{seconds:.0f}"] = _write_route(bag, seconds)
            for size in SIZES:
                with ctx.Pool(1) as pool:
                    r = pool.apply(_run_node, (size, str(bag)))
                out[f"{size}_{seconds:.0f}s"] = r
                print(f"node, {size:7s} model, {out['route_s'][f'{seconds:.0f}']:6.1f} s route: peak RSS "
                      f"{r['rss_peak_mb']:.0f} MB (RSS {r['rss_loaded_mb']:.0f} MB once the model is loaded, peak "
                      f"{r['peak_loading_mb']:.0f} MB until then; {r['rss_end_mb']:.0f} MB at the end; "
                      f"{r['decisions']} decisions in {r['wall_s']:.1f} s, {r['dropped']} dropped)", flush=True)
    for size in SIZES:
        a, b = (out[f"{size}_{s:.0f}s"] for s in lengths)
        out[f"{size}_peak_ratio"] = b["rss_peak_mb"] / a["rss_peak_mb"]
        print(f"node, {size} model: {lengths[1] / lengths[0]:.1f}x longer route -> peak RSS ratio "
              f"{out[f'{size}_peak_ratio']:.3f} (bounded: ~1)")
    return out


if __name__ == "__main__":
    main()
