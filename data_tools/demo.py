"""hstnn-demo: the main job in one command (``make demo``).

Generates a small synthetic route in the three lighting environments (demo preset: one unseen traversal each, a seed
the shipped models were not trained on), replays every traversal through the shipped model of its environment (or the
one ``--preset`` names, ``auto`` included) with the same engine the ROS node uses, and prints per-environment
accuracy, recall@1, operations per decision and throughput.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from hstnn_ros.errors import HstnnError
from hstnn_ros.runtime.bag_source import open_bag
from hstnn_ros.runtime.engine import PlaceRecognitionEngine
from hstnn_ros.runtime.enums import Environment
from hstnn_ros.runtime.loading import load_pipeline
from hstnn_ros.runtime.presets import choose_environment, load_references, parse_environment, resolve_bundle
from hstnn_ros.runtime.replay import ground_truth_from_route, replay_engine_config, run_replay
from hstnn_ros.runtime.report import format_summary, summarise, write_records

#: World seed of the shipped models (build_models) and the first traversal index none of them was trained on: the
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
    p.add_argument("--tolerance", type=int, default=1, help="recall@1 tolerance in places")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    work = args.out or Path(tempfile.mkdtemp(prefix="hstnn_demo_"))
    routes = work / "route"
    try:  # installed: data_tools is hstnn_ros.data_tools; source checkout: the sibling package
        from hstnn_ros.data_tools import synth_route  # noqa: PLC0415
    except ImportError:
        from data_tools import synth_route  # noqa: PLC0415

    t0 = time.perf_counter()
    rc = synth_route.main(["--out", str(routes), "--preset", "demo", "--envs", args.envs, "--traversals", "1",
                           "--first-traversal", str(args.traversal), "--seed", str(args.seed), "--overwrite",
                           *(["--quiet"] if args.no_progress else [])])
    if rc != 0:
        print("hstnn-demo: generating the synthetic route failed", file=sys.stderr)
        return rc
    print(f"route generated in {time.perf_counter() - t0:.1f} s: {routes}")
    index = json.loads((routes / "index.json").read_text())
    all_records = []
    totals = {"wall_s": 0.0, "stream_s": 0.0}
    try:
        for entry in index["bags"]:
            bag = routes / entry["bag"]
            env_name = entry["env"]
            source = open_bag(bag)
            if args.preset == "per-env":
                env = Environment(env_name)
            else:
                env = parse_environment(args.preset)
                if env is Environment.AUTO:
                    env = choose_environment(source.scene_stats(1.0), load_references())
                    print(f"{entry['bag']}: auto preset chose {env.value} (true {env_name})")
            model = resolve_bundle(env)
            engine = PlaceRecognitionEngine(load_pipeline(model), replay_engine_config())
            outcome = run_replay(source.items(), engine, ground_truth_from_route(bag), total=source.message_count,
                                 progress=not args.no_progress)
            all_records += outcome.records
            totals["wall_s"] += outcome.wall_s
            totals["stream_s"] += outcome.stream_s
            print(f"{entry['bag']}: model {model.name}, {len(outcome.records)} decisions, "
                  f"{outcome.realtime_factor:.2f}x real time")
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
