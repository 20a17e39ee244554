"""hstnn-replay: a rosbag2 recording (sqlite3 or MCAP) through the online engine, without ROS 2.

Writes ``decisions.csv`` / ``decisions.json`` (one row per decision) into --out and, when the bag has ground truth
(a synthetic route's ``route.json`` sidecar, or --label-topic), prints accuracy, recall@1 within --tolerance places
and ops per decision per environment and saves ``places.png`` (predicted vs true place over time).
Event-only bags (no colour topic) run in events-only mode with an events-only bundle and are refused, with the
fix named, for a model that needs RGB.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from hstnn_ros import defaults
from hstnn_ros.errors import HstnnError
from hstnn_ros.runtime.bag_source import BagTopics, check_model_fits, open_bag, output_bag_writer
from hstnn_ros.runtime.enums import Preset
from hstnn_ros.runtime.presets import load_references, parse_preset
from hstnn_ros.runtime.replay import label_range_warning, replay_engine_config, replay_ground_truth, run_replay
from hstnn_ros.runtime.report import format_summary, plot_predictions, summarise, write_records
from hstnn_ros.runtime.session import open_session


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hstnn-replay", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bag", type=Path, help="rosbag2 directory (sqlite3 or MCAP)")
    p.add_argument("--model", type=Path, help="model bundle directory (overrides --preset)")
    p.add_argument("--models-dir", type=Path,
                   help="where presets are found (a bundle set from hstnn-fit-route; default: the shipped models)")
    p.add_argument("--frontends", type=Path,
                   help="front-end bundle for a --model that names none (bundles from hstnn-fit-route and "
                        "hstnn-train name theirs)")
    p.add_argument("--environment", help="the lighting environment of the bag, for per-environment rows (default: "
                                         "from a synthetic route's route.json)")
    p.add_argument("--preset", default=Preset.DEFAULT.value,
                   help=f"shipped model to run: {' | '.join(x.value for x in Preset)} (auto: chosen from the bag's "
                        "first second)")
    p.add_argument("--out", type=Path, help="output directory (default: replay_<bag name>)")
    p.add_argument("--events-topic", help="event topic (default: the only event topic in the bag)")
    p.add_argument("--image-topic", help="colour topic (default: the only sensor_msgs/Image colour topic)")
    p.add_argument("--depth-topic", help="aligned depth topic (default: a 16UC1/32FC1 image topic, if any)")
    p.add_argument("--label-topic", help="place-label topic (std_msgs integer types)")
    p.add_argument("--tolerance", type=int, default=defaults.RECALL_TOLERANCE, help="recall@1 tolerance in places")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--route-filter", action="store_true",
                   help="filter place posteriors along the route (reports raw and filtered accuracy)")
    p.add_argument("--unknown-threshold", type=float, default=None,
                   help="softmax confidence below which a place is unknown (default: the bundle's calibrated "
                        "unknown-place detector, or its softmax threshold in bundles without one)")
    p.add_argument("--output-bag", action="store_true", help="also write the node's topics to <out>/bag")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    out = args.out or Path(f"replay_{args.bag.resolve().name}")
    topics = BagTopics(events=args.events_topic, image=args.image_topic, depth=args.depth_topic,
                       label=args.label_topic)
    try:
        source = open_bag(args.bag, topics)
        scene = source.scene_stats(seconds=load_references(args.models_dir).seconds) \
            if parse_preset(args.preset) is Preset.AUTO and not args.model else None
        session = open_session(args.model, args.preset, config=replay_engine_config(
            device=args.device, route_filter=args.route_filter, unknown_threshold=args.unknown_threshold),
            scene=scene, frontends=args.frontends, models_dir=args.models_dir)
        engine, pipeline, model = session.engine, session.pipeline, session.bundle
        if scene is not None:
            feats = ", ".join(f"{k} {v:.4g}" for k, v in scene.features().items())
            print(f"auto preset: {feats} -> "
                  f"{session.environment.value if session.environment else 'unsure: default model'}")
        check_model_fits(source, pipeline)
        truth = replay_ground_truth(args.bag, label_topic=source.topics.label, environment=args.environment)
        writer = output_bag_writer(out / "bag") if args.output_bag else None
        try:
            outcome = run_replay(source.items(), engine, truth, total=source.message_count,
                                 progress=not args.no_progress, on_results=writer.write if writer else None)
        finally:
            if writer:
                writer.close()
    except HstnnError as e:
        print(f"hstnn-replay: {e}", file=sys.stderr)
        return 2
    summary = summarise(outcome.records, tolerance=args.tolerance)
    extra = {"bag": str(args.bag), "model": str(model), "mode": engine.mode.value,
             "model_places": pipeline.num_classes, "label_range_warning": label_range_warning(
                 outcome.records, pipeline.num_classes),
             "counters": outcome.counters.as_dict(), "malformed_messages": outcome.malformed,
             "wall_s": outcome.wall_s, "stream_s": outcome.stream_s,
             "realtime_factor": outcome.realtime_factor}
    write_records(outcome.records, out, {"per_environment": summary, **extra})
    print(f"model {model} ({engine.mode.value}); {len(outcome.records)} decisions from {outcome.items} messages")
    print(format_summary(summary))
    warning = label_range_warning(outcome.records, pipeline.num_classes)
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    print(f"throughput: {outcome.realtime_factor:.2f}x real time ({outcome.stream_s:.2f} s of data in "
          f"{outcome.wall_s:.2f} s)")
    print("counters: " + json.dumps({k: v for k, v in outcome.counters.as_dict().items() if v}))
    if any(r.true_place >= 0 for r in outcome.records):
        print(f"plot: {plot_predictions(outcome.records, out / 'places.png')}")
    print(f"decisions: {out / 'decisions.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
