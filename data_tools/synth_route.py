"""hstnn-synth-route: write a synthetic multi-lighting route (environments x traversals rosbag2 bags + index)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from hstnn_ros.datasets.synth import (
    EventMessageKind,
    Preset,
    Storage,
    SynthError,
    format_stats_table,
    generate_route_set,
    preset_config,
)
from hstnn_ros.datasets.synth.realism import real_bag_stats, synthetic_env_stats
from hstnn_ros.datasets.synth.stats import EventStats
from hstnn_ros.enums import Environment
from hstnn_ros.errors import HstnnError
from hstnn_ros.perception.events.enums import Encoding


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hstnn-synth-route", description=__doc__)
    p.add_argument("--out", required=True, help="output folder (one bag per environment and traversal)")
    p.add_argument("--preset", default="demo", choices=[x.value for x in Preset],
                   help="size: demo (seconds per traversal), default, bench (minutes)")
    p.add_argument("--envs", default="env1,env2,env3", help="comma-separated lighting environments")
    p.add_argument("--traversals", type=int, default=6, help="traversals per environment")
    p.add_argument("--first-traversal", type=int, default=0,
                   help="index of the first traversal (later indices: new traversals of the same world)")
    p.add_argument("--storage", default="mcap", choices=[s.value for s in Storage])
    p.add_argument("--encoding", default=Encoding.EVT3.value, choices=[e.value for e in Encoding],
                   help="EventPacket encoding")
    p.add_argument("--dvs-msgs", action="store_true", help="write dvs_msgs/msg/EventArray instead of EventPacket")
    p.add_argument("--places", type=int, default=None, help="override the preset's number of places")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace existing traversal bags in --out")
    p.add_argument("--workers", type=int, default=1, help="traversals written in parallel processes")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--compare-real", type=Path, metavar="DIR",
                   help="also print per-environment totals beside every real rosbag2 in DIR (e.g. ../shared/data/bags)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        envs = [Environment(e.strip()) for e in args.envs.split(",") if e.strip()]
    except ValueError:
        print(f"--envs {args.envs!r}: use names from {[e.value for e in Environment]}", file=sys.stderr)
        return 2
    try:
        cfg = preset_config(args.preset)
        kw: dict = {"storage": Storage(args.storage), "encoding": Encoding(args.encoding),
                    "event_message": (EventMessageKind.DVS_EVENT_ARRAY if args.dvs_msgs
                                      else EventMessageKind.EVENT_PACKET)}
        if args.places is not None:
            kw["world"] = dataclasses.replace(cfg.world, num_places=args.places)
        cfg = cfg.with_overrides(**kw)
        index = generate_route_set(args.out, cfg, envs=envs, traversals=args.traversals, seed=args.seed,
                                   preset=args.preset, progress=not args.quiet, overwrite=args.overwrite,
                                   workers=args.workers, first_traversal=args.first_traversal)
    except SynthError as e:
        print(f"hstnn-synth-route: {e}", file=sys.stderr)
        return 1
    data = json.loads(index.read_text())
    rows = [EventStats(b["bag"], cfg.camera.dvs_width, cfg.camera.dvs_height, b["event_stats"]["duration_s"],
                       b["event_stats"]["events"], b["event_stats"]["on_events"])
            for b in data["bags"]]
    print(format_stats_table(rows))
    print(f"wrote {len(rows)} bags and {index}")
    if args.compare_real:
        try:
            real = [real_bag_stats(b) for b in sorted(args.compare_real.iterdir()) if (b / "metadata.yaml").is_file()]
        except (OSError, HstnnError) as e:
            print(f"hstnn-synth-route: --compare-real {args.compare_real}: {e}", file=sys.stderr)
            return 1
        if not real:
            print(f"hstnn-synth-route: --compare-real {args.compare_real}: no rosbag2 folders (with metadata.yaml)",
                  file=sys.stderr)
            return 1
        print("\nsynthetic environments beside real recordings (realism check: ev/px/s and ON ratio):")
        print(format_stats_table([*synthetic_env_stats(index), *real]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
