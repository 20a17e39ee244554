"""hstnn-demo: the main job in one command (``make demo``).

Generates a small synthetic route in the three lighting environments (demo preset: one unseen traversal each, a seed
the shipped models were not trained on), replays every traversal through the shipped model of its environment (or the
one ``--preset`` names, ``auto`` included) with the same engine the ROS node uses, and prints per-environment
accuracy, recall@1, operations per decision and throughput.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from hstnn_ros import defaults
from hstnn_ros.datasets.sidecar import route_bags
from hstnn_ros.datasets.synth import generate_route_set, preset_config
from hstnn_ros.enums import Environment
from hstnn_ros.errors import HstnnError
from hstnn_ros.runtime.bag_source import open_bag
from hstnn_ros.runtime.enums import Preset
from hstnn_ros.runtime.presets import load_references
from hstnn_ros.runtime.replay import ground_truth_from_route, replay_engine_config, run_replay
from hstnn_ros.runtime.report import format_summary, summarise, write_records
from hstnn_ros.runtime.session import open_session

#: World seed of the shipped models (`make models`) and the first traversal index none of them was trained on: the
#: demo replays new traversals of the same world (a different seed would be a different world, i.e. other places).
WORLD_SEED = 0
DEMO_TRAVERSAL = 100


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hstnn-demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, help="working directory (default: a temporary one)")
    p.add_argument("--preset", default="per-env",
                   help="per-env (each traversal with its environment's model) | default | env1..3 | auto")
    p.add_argument("--envs", default="env1,env2,env3", help="environments to generate")
    p.add_argument("--seed", type=int, default=WORLD_SEED, help="world seed (the shipped models' world is 0)")
    p.add_argument("--traversal", type=int, default=DEMO_TRAVERSAL,
                   help="traversal index to generate (the shipped models were trained on 0..5)")
    p.add_argument("--tolerance", type=int, default=defaults.RECALL_TOLERANCE, help="recall@1 tolerance in places")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    work = args.out or Path(tempfile.mkdtemp(prefix="hstnn_demo_"))
    t0 = time.perf_counter()
    all_records = []
    totals = {"wall_s": 0.0, "stream_s": 0.0}
    try:
        envs = [Environment(e.strip()) for e in args.envs.split(",") if e.strip()]
        index = generate_route_set(work / "route", preset_config("demo"), envs=envs, traversals=1, seed=args.seed,
                                   preset="demo", progress=not args.no_progress, overwrite=True,
                                   first_traversal=args.traversal)
        print(f"route generated in {time.perf_counter() - t0:.1f} s: {index.parent}")
        for bag, env in route_bags(index.parent):
            source = open_bag(bag)
            preset = env if args.preset == "per-env" else args.preset
            scene = source.scene_stats(load_references().seconds) if preset == Preset.AUTO else None
            session = open_session(preset=preset, config=replay_engine_config(), scene=scene)
            if scene is not None:
                print(f"{bag.name}: auto preset chose {session.environment} (true {env})")
            outcome = run_replay(source.items(), session.engine, ground_truth_from_route(bag),
                                 total=source.message_count, progress=not args.no_progress)
            all_records += outcome.records
            totals["wall_s"] += outcome.wall_s
            totals["stream_s"] += outcome.stream_s
            print(f"{bag.name}: model {session.bundle.name}, {len(outcome.records)} decisions, "
                  f"{outcome.realtime_factor:.2f}x real time")
    except ValueError as e:  # an unknown --envs name
        print(f"hstnn-demo: {e}; environments are {[x.value for x in Environment]}", file=sys.stderr)
        return 2
    except HstnnError as e:
        print(f"hstnn-demo: {e}", file=sys.stderr)
        return 2
    summary = summarise(all_records, tolerance=args.tolerance)
    write_records(all_records, work / "results", {"per_environment": summary, **totals})
    print()
    print(format_summary(summary))
    rtf = totals["stream_s"] / totals["wall_s"] if totals["wall_s"] else float("nan")
    print(f"\nthroughput: {rtf:.2f}x real time; results in {work / 'results'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
