"""hstnn-dataset: build a window dataset (9 event frames + 3 RGB(-D) frames + place label per sample) from
recorded routes, one bag per traversal.

  hstnn-dataset --route SYNTH_ROUTE_DIR --out DIR              (a set written by hstnn-synth-route)
  hstnn-dataset --bags ENV=BAG [ENV=BAG ...] --out DIR --label distance --places 100
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hstnn_ros.datasets.errors import DatasetError
from hstnn_ros.datasets.windows import FramingConfig, Labelling, Topics, build_dataset, route_bags
from hstnn_ros.errors import HstnnError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hstnn-dataset", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--route", type=Path, help="synthetic route set (folder with index.json)")
    src.add_argument("--bags", nargs="+", metavar="ENV=BAG", help="recorded bags, one per traversal, with their env")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--label", choices=[m.value for m in Labelling], default=None,
                   help="labelling mode (default: route for --route, distance for --bags)")
    p.add_argument("--places", type=int, help="place count (distance/time labelling)")
    p.add_argument("--input-hw", type=int, nargs=2, default=(90, 120), metavar=("H", "W"),
                   help="front-end resolution (default 90 120: the shipped small front-ends; paper 180 240)")
    p.add_argument("--depth", action="store_true", help="add the aligned depth as a 4th channel")
    p.add_argument("--events-topic", default=Topics.events)
    p.add_argument("--rgb-topic", default=Topics.rgb)
    p.add_argument("--depth-topic", default=Topics.depth)
    p.add_argument("--odom-topic", default=Topics.odom)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        if args.route:
            bags = route_bags(args.route)
        else:
            bags = []
            for item in args.bags:
                env, sep, bag = item.partition("=")
                if not sep:
                    raise DatasetError(f"--bags item {item!r}: expected ENV=BAG (e.g. env1=rosbag2_2024_01_01)")
                bags.append((Path(bag), env))
        label = Labelling(args.label or ("route" if args.route else "distance"))
        topics = Topics(args.events_topic, args.rgb_topic, args.depth_topic, args.odom_topic)
        framing = FramingConfig(input_hw=tuple(args.input_hw), depth=args.depth)
        ds = build_dataset(bags, args.out, topics=topics, framing=framing, labelling=label, places=args.places,
                           progress=not args.quiet)
    except HstnnError as exc:
        print(f"hstnn-dataset: {exc}", file=sys.stderr)
        return 2
    for t in ds.traversals:
        print(f"{t.name:>12} {t.env:>6} {t.split:>5} {len(t):5d} frames")
    print(f"dataset in {args.out}: {len(ds.traversals)} traversals, {ds.num_places} places, "
          f"fingerprint {ds.manifest['fingerprint'][:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
