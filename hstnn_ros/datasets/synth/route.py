"""Writing synthetic traversals as rosbag2 recordings, and whole route sets (environments x traversals).

Each traversal becomes one bag directory ``<out>/<env>_t<k>/`` holding the bag, a ``route.json`` sidecar (seed,
environment, traversal, preset, full configuration, path length, place count, topics and message counts, the time
each place is entered, event statistics) and the same JSON in the bag's custom metadata. A set adds
``<out>/index.json`` listing every bag. Ground truth: place = distance along the path binned into ``num_places``
equal-length segments (odometry x is that distance).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from hstnn_ros.datasets.sidecar import INDEX, ROUTE_FORMAT, ROUTE_FORMAT_VERSION, SIDE_CAR
from hstnn_ros.datasets.synth import bagio
from hstnn_ros.datasets.synth.config import RouteConfig, validate
from hstnn_ros.datasets.synth.errors import SynthError
from hstnn_ros.datasets.synth.messages import (
    MSG_IMAGE,
    MSG_ODOM,
    TOPIC_DEPTH,
    TOPIC_EVENTS,
    TOPIC_ODOM,
    TOPIC_RGB,
    MessageFactory,
)
from hstnn_ros.datasets.synth.simulate import EventsRecord, OdomRecord, RgbdRecord, TraversalSimulator
from hstnn_ros.datasets.synth.stats import StatsAccumulator
from hstnn_ros.datasets.synth.world import World, build_world
from hstnn_ros.enums import Environment

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class TraversalResult:
    """What was written for one traversal."""

    bag_dir: Path
    meta: dict[str, Any]


def traversal_name(env: Environment, traversal: int) -> str:
    """Folder name of a traversal's bag, e.g. ``env2_t3``."""
    return f"{env.value}_t{traversal}"


def write_traversal(bag_dir: Path | str, cfg: RouteConfig, env: Environment, traversal: int, *, seed: int,
                    preset: str | None = None, world: World | None = None, progress: bool = False,
                    overwrite: bool = False) -> TraversalResult:
    """Simulate one traversal and write it as a rosbag2 at ``bag_dir`` (which must not exist unless
    ``overwrite``). Returns the sidecar metadata."""
    validate(cfg)
    bag_dir = Path(bag_dir)
    if bag_dir.exists():
        if not overwrite:
            raise SynthError(f"{bag_dir} already exists; choose another --out or pass overwrite=True")
        shutil.rmtree(bag_dir)
    world = world if world is not None else build_world(cfg.world, seed)
    sim = TraversalSimulator(world, cfg, env, traversal, seed=seed)
    cam = cfg.camera
    counts = {TOPIC_EVENTS: 0, TOPIC_RGB: 0, TOPIC_DEPTH: 0, TOPIC_ODOM: 0}
    stats = StatsAccumulator(f"synthetic {traversal_name(env, traversal)}", cam.dvs_width, cam.dvs_height)
    place_enter_ns: dict[int, int] = {}
    encoder = bagio.EventEncoder(cfg.event_message, cfg.encoding, cam.dvs_width, cam.dvs_height)
    t_first = t_last = None
    with bagio.open_writer(bag_dir, cfg.storage) as writer:
        mf = MessageFactory(writer.typestore)
        conn = {TOPIC_EVENTS: writer.add_connection(TOPIC_EVENTS, encoder.msgtype),
                TOPIC_RGB: writer.add_connection(TOPIC_RGB, MSG_IMAGE),
                TOPIC_DEPTH: writer.add_connection(TOPIC_DEPTH, MSG_IMAGE),
                TOPIC_ODOM: writer.add_connection(TOPIC_ODOM, MSG_ODOM)}
        for rec in sim.records(progress=progress):
            if isinstance(rec, EventsRecord):
                # logged when the packet is complete (its end), as a driver would publish it
                writer.write(conn[TOPIC_EVENTS], rec.t_end_ns, encoder.encode(rec, mf))
                counts[TOPIC_EVENTS] += 1
                stats.add(rec.events.t_ns, rec.events.p)
            elif isinstance(rec, RgbdRecord):
                writer.write(conn[TOPIC_RGB], rec.t_ns, mf.rgb(rec))
                writer.write(conn[TOPIC_DEPTH], rec.t_ns, mf.depth(rec))
                counts[TOPIC_RGB] += 1
                counts[TOPIC_DEPTH] += 1
                place_enter_ns.setdefault(rec.place, rec.t_ns)
            elif isinstance(rec, OdomRecord):
                writer.write(conn[TOPIC_ODOM], rec.t_ns, mf.odom(rec))
                counts[TOPIC_ODOM] += 1
            t_first = rec.t_ns if t_first is None else min(t_first, rec.t_ns)
            t_last = rec.t_ns if t_last is None else max(t_last, rec.t_ns)
        stats.add_span(sim.t0_ns, sim.t0_ns + round(sim.duration_s * 1e9))
        meta = {
            "format": ROUTE_FORMAT, "format_version": ROUTE_FORMAT_VERSION,
            "seed": seed, "env": env.value, "traversal": traversal, "preset": preset,
            "path_length_m": cfg.world.path_length_m, "num_places": cfg.world.num_places,
            "labelling": "place = floor(odom x / path_length_m * num_places), clipped",
            "t_start_ns": sim.t0_ns, "t_end_ns": t_last, "duration_s": sim.duration_s,
            "dvs_size": [cam.dvs_width, cam.dvs_height], "rgb_size": [cam.rgb_width, cam.rgb_height],
            "topics": {TOPIC_EVENTS: {"type": encoder.msgtype, "encoding": encoder.encoding},
                       TOPIC_RGB: {"type": MSG_IMAGE, "encoding": "rgb8"},
                       TOPIC_DEPTH: {"type": MSG_IMAGE, "encoding": "16UC1"},
                       TOPIC_ODOM: {"type": MSG_ODOM}},
            "message_counts": counts,
            "place_enter_ns": [place_enter_ns.get(k) for k in range(cfg.world.num_places)],
            "event_stats": stats.result().to_dict(),
            "config": cfg.to_dict(),
        }
        writer.set_metadata("hstnn_ros.synth_route", json.dumps(meta, sort_keys=True))
    (bag_dir / SIDE_CAR).write_text(json.dumps(meta, indent=1, sort_keys=True))
    log.info("wrote %s: %.1f s, %d event messages, %d RGB-D frames", bag_dir, sim.duration_s,
             counts[TOPIC_EVENTS], counts[TOPIC_RGB])
    return TraversalResult(bag_dir, meta)


def generate_route_set(out_dir: Path | str, cfg: RouteConfig, *, envs: Sequence[Environment] = tuple(Environment),
                       traversals: int = 6, seed: int = 0, preset: str | None = None, progress: bool = True,
                       overwrite: bool = False, workers: int = 1, first_traversal: int = 0) -> Path:
    """Write ``len(envs) x traversals`` bags of one world into ``out_dir`` plus ``index.json``; returns its path.

    Traversals are numbered from ``first_traversal``: the world depends on ``seed`` only, each traversal's motion
    and noise on (seed, env, index), so later indices are new traversals of the same route (held-out replays).

    ``workers > 1`` writes traversals in parallel processes (each traversal is independent and seeded, so the
    bags are the same as with one worker)."""
    validate(cfg)
    if traversals < 1:
        raise SynthError(f"traversals={traversals}: at least one traversal per environment is needed")
    if not envs:
        raise SynthError("no environments given; use e.g. --envs env1,env2,env3")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if first_traversal < 0:
        raise SynthError(f"first_traversal={first_traversal}: traversal indices start at 0")
    if workers < 1:
        raise SynthError(f"workers={workers}: use 1 (sequential) or more processes")
    jobs = [(env, k) for env in envs for k in range(first_traversal, first_traversal + traversals)]
    if workers == 1:
        world = build_world(cfg.world, seed)
        results = [write_traversal(out / traversal_name(env, k), cfg, env, k, seed=seed, preset=preset, world=world,
                                   progress=progress, overwrite=overwrite)
                   for env, k in tqdm(jobs, desc="traversals", unit="bag", disable=not progress)]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(write_traversal, out / traversal_name(env, k), cfg, env, k, seed=seed,
                                   preset=preset, progress=False, overwrite=overwrite) for env, k in jobs]
            results = [f.result() for f in tqdm(futures, desc="traversals", unit="bag", disable=not progress)]
    entries = []
    for (env, k), res in zip(jobs, results, strict=True):
        m = res.meta
        entries.append({"bag": res.bag_dir.name, "env": env.value, "traversal": k, "duration_s": m["duration_s"],
                        "message_counts": m["message_counts"], "event_stats": m["event_stats"]})
    index = {"format": ROUTE_FORMAT + ".index", "format_version": ROUTE_FORMAT_VERSION, "seed": seed,
             "preset": preset, "path_length_m": cfg.world.path_length_m, "num_places": cfg.world.num_places,
             "envs": [e.value for e in envs], "traversals": traversals, "bags": entries, "config": cfg.to_dict()}
    path = out / INDEX
    path.write_text(json.dumps(index, indent=1, sort_keys=True))
    return path
