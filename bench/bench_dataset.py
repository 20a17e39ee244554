"""Dataset building speed (windows/s), feature caching speed (frames/s) and peak memory of building a long route.

A synthetic `demo`-preset traversal (2 m/s, DVS 346x260, RGB 160x120 at 30 Hz, evt3 events) is written as MCAP, then
streamed into a window dataset (`write_traversal`: decode, window, resize, chunked safetensors) in a fresh process;
memory is its peak RSS (`VmHWM`: `bench_memory.peak_rss_mb`), split into the process after imports and the growth
while building (tracemalloc is not used: it slows every allocation and so the windows/s). Memory must not grow with
route length:
two lengths are measured in one run and their ratio printed. On the shorter route the NeuroGPR path is timed too
(export, then building from the export). Feature caching runs the shipped front-ends
(`models/frontends`) over the built traversal. Front-end pretraining's data path (`FrameInputs` over the loaded
dataset, every frame read once in shuffled batches of 128, event bins and RGB frames, as an epoch does) runs in a
fresh process per length; its memory is the process's own (anonymous) memory, sampled while it reads: the dataset's
frames are memory-mapped, so the pages it reads are page cache (``RssFile``, reclaimable), reported beside it.
Training's data path (``load_feature_set`` + ``prepare_data`` on a feature set of the default route's size, 37,444
windows of [9, 512] float32, random values) runs in a fresh process too: its allocation peak (tracemalloc: numpy and
Python buffers) and own memory after splitting, as multiples of the features' bytes (1: the splits only).

Quick mode (``HSTNN_BENCH_QUICK=1``): 20 s and 60 s of route, 4,000 feature windows; full mode: 60 s and 600 s (a
10-minute route; writing it takes about 15 minutes on 2 cores); ``HSTNN_BENCH_DATASET_SECONDS=30,120`` picks other
lengths.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

from bench.bench_memory import peak_rss_mb
from hstnn_ros import defaults
from hstnn_ros.datasets import FeatureSet, load_feature_set, save_feature_set
from hstnn_ros.datasets.frontend_training import FrameInputs, cache_features, frozen_frontends
from hstnn_ros.datasets.neurogpr import NeuroGPRFrames, export_neurogpr
from hstnn_ros.datasets.synth import preset_config
from hstnn_ros.datasets.synth import write_traversal as write_route_bag
from hstnn_ros.datasets.windows import (
    BagFrames,
    Labelling,
    WindowSpec,
    load_dataset,
    write_manifest,
    write_traversal,
)
from hstnn_ros.enums import Environment
from hstnn_ros.learning.data import prepare_data
from hstnn_ros.model import load_bundle
from hstnn_ros.perception.window import window_from_metadata


def _write_route(path: Path, seconds: float) -> float:
    cfg = preset_config("demo")
    length = cfg.motion.speed_mps * seconds
    cfg = dataclasses.replace(cfg, world=dataclasses.replace(cfg.world, path_length_m=length,
                                                             num_places=max(1, int(length / 2))))
    res = write_route_bag(path, cfg, Environment.ENV1, 0, seed=0)
    return float(res.meta["duration_s"])


def _generate(path: str, seconds: float) -> tuple[float, float]:
    """In a fresh process: write the route bag; its duration and the writer's peak RSS (MB)."""
    return _write_route(Path(path), seconds), peak_rss_mb()


def _build(bag: str, out: str, input_hw: tuple[int, int]) -> dict:
    """Runs in a fresh process: the peak RSS is this build's alone. No tracemalloc (it slows every allocation):
    memory is the growth of the peak RSS (``VmHWM``) over the process after its imports."""
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    window = WindowSpec(input_hw=input_hw)
    entry, n = write_traversal(Path(out), "t", BagFrames(Path(bag), window=window, progress=False),
                               window=window, labelling=Labelling.TIME, places=100)
    wall = time.perf_counter() - t0
    rss1 = peak_rss_mb()
    write_manifest(Path(out), [{**entry, "env": "env1", "split": "test"}], window=window, labelling=Labelling.TIME,
                   num_places=n)
    frames = entry["frames"]
    return {"frames": frames, "windows": frames - defaults.RGB_FRAMES_PER_WINDOW + 1, "wall_s": wall,
            "rss_peak_mb": rss1, "rss_at_start_mb": rss0, "rss_growth_mb": rss1 - rss0}


def _memory_mb() -> dict[str, float]:
    """``RssAnon`` (the process's own memory) and ``RssFile`` (mapped file pages) of ``/proc/self/status``, MB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024
    return out


def _pretrain_data(ds_dir: str) -> dict[str, float]:
    """Runs in a fresh process: load the dataset and read every frame once in shuffled batches of 128 through
    ``FrameInputs`` (event bins, then RGB frames): the peak of the process's own memory (sampled every 10 batches),
    its mapped file pages at the end, and the frames read per second."""
    t0 = time.perf_counter()
    ds = load_dataset(ds_dir, verify=False)
    mem = _memory_mb()
    peak, loaded = mem["RssAnon"], mem["RssAnon"]
    frames = 0
    rng = np.random.default_rng(0)
    for kind in ("scnn", "cnn"):
        x = FrameInputs(ds.traversals, kind)
        order = rng.permutation(len(x))
        for k, s in enumerate(range(0, len(order), 128)):
            frames += len(x[np.sort(order[s:s + 128])])
            if k % 10 == 0:
                peak = max(peak, _memory_mb()["RssAnon"])
    wall = time.perf_counter() - t0
    mem = _memory_mb()
    return {"anon_after_load_mb": loaded, "anon_peak_mb": max(peak, mem["RssAnon"]), "file_mapped_mb": mem["RssFile"],
            "frames_read": frames, "frames_per_s": frames / wall, "wall_s": wall}


def _write_feature_set(path: Path, windows: int) -> int:
    """A random feature set of ``windows`` windows of [9, 512] (6 traversals: 4 train, 1 val, 1 test); its bytes."""
    rng = np.random.default_rng(0)
    group = np.arange(windows, dtype=np.int32) * 6 // windows
    save_feature_set(path, FeatureSet(features=rng.random((windows, 9, 512), dtype=np.float32),
                                      labels=rng.integers(0, 100, windows), split=np.array([0, 0, 0, 0, 1, 2],
                                                                                           np.int8)[group],
                                      group=group, env=np.zeros(windows, np.int8), num_classes=100,
                                      input_spiking=256, env_names=("env1",)))
    return windows * 9 * 512 * 4


def _training_data(path: str) -> dict[str, float]:
    """Runs in a fresh process: ``load_feature_set`` + ``prepare_data`` (what ``hstnn-train`` does before its first
    step): the allocation peak (tracemalloc) and the process's own memory growth with both alive, MB."""
    anon0 = _memory_mb()["RssAnon"]
    tracemalloc.start()
    t0 = time.perf_counter()
    fs = load_feature_set(path)  # kept, as `hstnn-train` keeps it while its sweep runs
    data = prepare_data(fs)
    wall = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    mem = _memory_mb()
    del fs
    return {"alloc_peak_mb": peak, "anon_growth_mb": mem["RssAnon"] - anon0, "file_mapped_mb": mem["RssFile"],
            "windows": len(data.train) + len(data.val) + len(data.test), "wall_s": wall}


def _neurogpr(bag: Path, work: Path, input_hw: tuple[int, int]) -> dict[str, float]:
    """The NeuroGPR path on the same bag: export (frames/s, disk per frame) and dataset building from the export
    (windows/s: PNG + tensor reads and the sensor-resolution -> grid downscale)."""
    window = WindowSpec(input_hw=input_hw)
    folder = work / "ngpr" / "env1_v1"
    t0 = time.perf_counter()
    export_neurogpr(bag, folder, window=window, progress=False)
    export_s = time.perf_counter() - t0
    frames = len(list((folder / "dvs_frames").iterdir()))
    disk = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    (work / "ngpr_ds").mkdir()
    t0 = time.perf_counter()
    write_traversal(work / "ngpr_ds", "t", NeuroGPRFrames(folder, window=window, progress=False),
                    window=window, labelling=Labelling.TIME, places=100)
    build_s = time.perf_counter() - t0
    shutil.rmtree(work / "ngpr")
    shutil.rmtree(work / "ngpr_ds")
    return {"frames": frames, "export_s": export_s, "export_frames_per_s": frames / export_s,
            "export_mb_per_frame": disk / frames / 1e6, "build_s": build_s,
            "build_windows_per_s": (frames - defaults.RGB_FRAMES_PER_WINDOW + 1) / build_s}


FRONTENDS = defaults.shipped_models_dir() / "frontends"


def _cache(ds_dir: Path) -> dict[str, float] | str:
    if not (FRONTENDS / "bundle.json").is_file():
        return "no shipped front-ends in models/frontends"
    b = load_bundle(FRONTENDS)
    ds = load_dataset(ds_dir)
    t0 = time.perf_counter()
    scnn, cnn = frozen_frontends(b)
    fs = cache_features(ds, scnn, cnn, progress=False)
    wall = time.perf_counter() - t0
    n = len(ds.traversals[0])
    return {"rgb_frames": n, "event_frames": n * defaults.EVENT_BINS_PER_RGB, "windows": int(fs.features.shape[0]),
            "wall_s": wall, "rgb_frames_per_s": n / wall,
            "event_frames_per_s": n * defaults.EVENT_BINS_PER_RGB / wall, "threads": torch.get_num_threads()}


def main() -> dict:
    quick = os.environ.get("HSTNN_BENCH_QUICK") == "1"
    lengths = (20.0, 60.0) if quick else (60.0, 600.0)
    if os.environ.get("HSTNN_BENCH_DATASET_SECONDS"):  # e.g. "30,120" where a 10-minute route takes too long
        lengths = tuple(float(x) for x in os.environ["HSTNN_BENCH_DATASET_SECONDS"].split(","))
    out: dict = {"quick": quick}
    ctx = mp.get_context("spawn")
    # the shipped front-ends' grid (90x120), else the default one
    hw = window_from_metadata(load_bundle(FRONTENDS).metadata, source=str(FRONTENDS)).input_hw \
        if (FRONTENDS / "bundle.json").is_file() \
        else WindowSpec().input_hw
    out["input_hw"] = list(hw)
    with tempfile.TemporaryDirectory() as d:
        fs_bytes = _write_feature_set(Path(d) / "features.safetensors", 4_000 if quick else 37_444)
        with ctx.Pool(1) as pool:
            td = pool.apply(_training_data, (str(Path(d) / "features.safetensors"),))
        (Path(d) / "features.safetensors").unlink()
        mb = fs_bytes / 2**20
        out["training_data"] = {**td, "features_mb": mb, "alloc_peak_over_features": td["alloc_peak_mb"] / mb,
                                "anon_growth_over_features": td["anon_growth_mb"] / mb}
        print(f"training data: {td['windows']} windows ({mb:.0f} MB of features) loaded and split in "
              f"{td['wall_s']:.1f} s; allocation peak {td['alloc_peak_mb']:.0f} MB "
              f"({td['alloc_peak_mb'] / mb:.2f}x the features), own memory +{td['anon_growth_mb']:.0f} MB "
              f"({td['anon_growth_mb'] / mb:.2f}x; 1 = the splits only)", flush=True)
        for seconds in lengths:
            bag, ds_dir = Path(d) / f"bag_{seconds:.0f}", Path(d) / f"ds_{seconds:.0f}"
            ds_dir.mkdir()
            t0 = time.perf_counter()
            with ctx.Pool(1) as pool:
                dur, gen_rss = pool.apply(_generate, (str(bag), seconds))
            gen = time.perf_counter() - t0
            with ctx.Pool(1) as pool:
                r = pool.apply(_build, (str(bag), str(ds_dir), hw))
            r.update({"route_s": dur, "generate_wall_s": gen, "generate_rss_peak_mb": gen_rss,
                      "windows_per_s": r["windows"] / r["wall_s"],
                      "bag_mb": sum(p.stat().st_size for p in bag.rglob("*") if p.is_file()) / 1e6})
            key = f"build_{seconds:.0f}s"
            out[key] = r
            print(f"{key:12s} route {dur:6.1f} s ({r['bag_mb']:.0f} MB bag, generated in {gen:.0f} s): "
                  f"{r['windows']} windows in {r['wall_s']:.1f} s -> {r['windows_per_s']:.1f} windows/s "
                  f"({dur / r['wall_s']:.1f}x real time); peak RSS {r['rss_peak_mb']:.0f} MB = "
                  f"{r['rss_at_start_mb']:.0f} MB after imports + {r['rss_growth_mb']:.0f} MB building (writing the "
                  f"route: peak RSS {gen_rss:.0f} MB)", flush=True)
            with ctx.Pool(1) as pool:
                r["pretrain_data"] = pt = pool.apply(_pretrain_data, (str(ds_dir),))
            print(f"{'':12s} pretraining data: {pt['frames_read']} frames read in {pt['wall_s']:.1f} s "
                  f"({pt['frames_per_s']:.0f} frames/s); own memory {pt['anon_after_load_mb']:.0f} MB after loading, "
                  f"peak {pt['anon_peak_mb']:.0f} MB; mapped dataset pages {pt['file_mapped_mb']:.0f} MB (page cache)",
                  flush=True)
            if seconds == lengths[0]:
                g = _neurogpr(bag, Path(d), hw)
                out["neurogpr"] = g
                print(f"NeuroGPR    export {g['export_frames_per_s']:.1f} frames/s ({g['export_mb_per_frame']:.2f} MB "
                      f"per frame on disk); dataset from the export {g['build_windows_per_s']:.1f} windows/s",
                      flush=True)
            shutil.rmtree(bag)
        a, b = (out[f"build_{s:.0f}s"] for s in lengths)
        out["rss_peak_ratio"] = b["rss_peak_mb"] / a["rss_peak_mb"]
        out["rss_growth_ratio"] = b["rss_growth_mb"] / max(a["rss_growth_mb"], 1e-3)
        out["route_length_ratio"] = b["route_s"] / a["route_s"]
        out["generate_rss_peak_ratio"] = b["generate_rss_peak_mb"] / a["generate_rss_peak_mb"]
        out["pretrain_anon_peak_ratio"] = b["pretrain_data"]["anon_peak_mb"] / a["pretrain_data"]["anon_peak_mb"]
        print(f"for a {out['route_length_ratio']:.1f}x longer route: peak RSS ratio {out['rss_peak_ratio']:.2f}, "
              f"build growth ratio {out['rss_growth_ratio']:.2f} (bounded memory: ~1); writing the route: peak RSS "
              f"ratio {out['generate_rss_peak_ratio']:.2f}; pretraining data: own-memory peak ratio "
              f"{out['pretrain_anon_peak_ratio']:.2f}")
        c = _cache(ds_dir)
        out["feature_cache"] = c
        if isinstance(c, dict):
            print(f"feature cache (shipped SCNN + CNN, {c['threads']} threads): {c['rgb_frames']} RGB frames + "
                  f"{c['event_frames']} event frames in {c['wall_s']:.1f} s -> {c['rgb_frames_per_s']:.1f} RGB "
                  f"frames/s, {c['event_frames_per_s']:.1f} event frames/s")
        else:
            print(c)
    return out


if __name__ == "__main__":
    main()
