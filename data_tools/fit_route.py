"""hstnn-fit-route: recordings of a route in, a deployable bundle set out, in one resumable command.

  hstnn-fit-route --bags env1=BAG... env2=BAG... --label distance|time|topic:/place_label|csv[:PATTERN]|route
                  --places N --out DIR [--config YAML] [--ratios ...] [--quick] [--off-route [ENV=]REC ...]
  hstnn-fit-route --route SYNTH_ROUTE_DIR --out models --quick       (a route written by hstnn-synth-route)

Builds the window dataset, pretrains and caches the front-ends, runs the three-stage training per environment, for
all environments (`default`) and events-only, picks each SNN ratio on validation and writes OUT/<env>/,
OUT/default/, OUT/events_only/, OUT/frontends/, OUT/presets.json (for --preset auto), OUT/MODEL_CARD.md,
OUT/build_report.json and OUT/plots/. The bundles run as they are: `hstnn-replay BAG --model OUT/env1`,
`ros2 launch hstnn_ros place_recognition.launch.py model_bundle:=OUT/env1`, `hstnn-export-tianjicx OUT/env1`; OUT
can also serve as the models directory of the presets. A recording is a rosbag2 folder or file, a NeuroGPR or frame
folder, an .aedat4 or a raw EVT3 .raw file. Interrupted? Run the same command again: finished stages are skipped.
--off-route takes recordings of places NOT on the route (another route, off-map driving) and measures how often each
shipped unknown-place rule accepts them (false-accept rate, in the model card and report); added to a finished fit,
only that measurement runs.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from hstnn_ros.datasets.frontend_training import PretrainConfig
from hstnn_ros.datasets.labels import Labelling, LabelSpec
from hstnn_ros.datasets.recordings import parse_recording_args
from hstnn_ros.datasets.sidecar import route_bags
from hstnn_ros.datasets.topics import Topics
from hstnn_ros.errors import HstnnError
from hstnn_ros.fitting import FitRouteConfig, fit_route, format_summary_table, train_recipe
from hstnn_ros.fitting.config import FIT_INPUT_HW, OFF_ROUTE_ENV
from hstnn_ros.perception.window import WindowSpec


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hstnn-fit-route", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--bags", nargs="+", metavar="ENV=REC",
                     help="recordings, one per traversal, each after its environment (env1=a b c env2=d ...)")
    src.add_argument("--route", type=Path, help="synthetic route set (folder with index.json)")
    p.add_argument("--out", type=Path, required=True, help="output directory of the bundle set")
    p.add_argument("--work", type=Path, help="intermediate files and resume state (default OUT/.work)")
    p.add_argument("--label", default=None, metavar="MODE",
                   help="route | distance | time | topic:/TOPIC | csv[:PATTERN] (default: route for --route, "
                        "distance for --bags)")
    p.add_argument("--places", type=int, help="place count (distance/time; optional for topic/csv/route)")
    p.add_argument("--config", type=Path, help="HSTNN training YAML (default: the package recipe, one seed)")
    p.add_argument("--ratios", type=float, nargs="+", help="SNN ratios to sweep")
    p.add_argument("--hidden", type=int, nargs="+", help="HSTNN hidden sizes (quick default 128 128)")
    p.add_argument("--quick", action="store_true",
                   help="short recipes (front-end epochs 5, HSTNN 128+128 and 15/10 epochs, ratios 0.5 0.95)")
    p.add_argument("--frontend-epochs", type=int, help="front-end pretraining epochs (default 12, quick 5)")
    p.add_argument("--full-size", action="store_true", help="paper-size front-ends instead of the small ones")
    p.add_argument("--input-hw", type=int, nargs=2, default=FIT_INPUT_HW, metavar=("H", "W"),
                   help="front-end grid (default 90 120)")
    p.add_argument("--depth", action="store_true", help="add the aligned depth as a 4th channel")
    p.add_argument("--embed-frontends", action="store_true",
                   help="put the front-ends into every bundle instead of a shared OUT/frontends/")
    p.add_argument("--no-events-only", action="store_true", help="do not train the events_only model")
    p.add_argument("--fp32", action="store_true", help="store weights in float32 (default float16, run in float32)")
    p.add_argument("--unknown-true-accept", type=float, default=0.95, metavar="SHARE",
                   help="unknown-place thresholds accept this share of validation decisions (default 0.95)")
    p.add_argument("--off-route", nargs="+", metavar="[ENV=]REC",
                   help="recordings of places not on the route: measure the unknown-place false-accept rates on "
                        "them (ENV= optional, for per-environment rates; default environment 'unnamed')")
    p.add_argument("--events-topic", help="event topic (default: found by type)")
    p.add_argument("--rgb-topic", help="colour topic (default: found by type)")
    p.add_argument("--depth-topic", help="depth topic (default: found by type)")
    p.add_argument("--odom-topic", help="odometry topic (default: found by type)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[fit-route] %(message)s")
    for noisy in ("hstnn_ros.learning", "hstnn_ros.datasets", "hstnn_ros.model"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        recordings = route_bags(args.route) if args.route else parse_recording_args(args.bags)
        label = LabelSpec.of(args.label or (Labelling.ROUTE if args.route else Labelling.DISTANCE))
        cfg = FitRouteConfig(
            recordings=tuple(recordings), out=args.out, work=args.work, label=label, places=args.places,
            window=WindowSpec(input_hw=tuple(args.input_hw), depth=args.depth),
            topics=Topics(args.events_topic, args.rgb_topic, args.depth_topic, args.odom_topic),
            train=train_recipe(args.config, quick=args.quick, hidden=tuple(args.hidden) if args.hidden else None,
                               ratios=tuple(args.ratios) if args.ratios else None),
            pretrain=PretrainConfig(epochs=args.frontend_epochs or (5 if args.quick else 12)),
            full_size=args.full_size, quick=args.quick, embed_frontends=args.embed_frontends,
            events_only_model=not args.no_events_only, store_fp16=not args.fp32,
            unknown_true_accept=args.unknown_true_accept,
            off_route=tuple(parse_recording_args(args.off_route, default_env=OFF_ROUTE_ENV, option="--off-route")
                            if args.off_route else ()),
            command="hstnn-fit-route " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)),
        )
        res = fit_route(cfg, progress=not args.quiet)
    except HstnnError as exc:
        print(f"hstnn-fit-route: {exc}", file=sys.stderr)
        return 2
    print()
    print(format_summary_table(res.summary))
    print()
    print("stage wall times: " + ", ".join(f"{k} {v:.0f} s" for k, v in res.stage_seconds.items())
          + (f" (skipped, done before: {', '.join(res.skipped)})" if res.skipped else ""))
    print(f"bundles in {res.out}: {', '.join(res.bundles)}; model card {res.card}; report {res.report}")
    print(f"replay one: hstnn-replay BAG --model {res.out / next(iter(res.bundles))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
