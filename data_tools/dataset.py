"""hstnn-dataset: build a window dataset (9 event frames + 3 RGB(-D) frames + place label per sample) from
recorded routes, one recording per traversal.

  hstnn-dataset --route SYNTH_ROUTE_DIR --out DIR              (a set written by hstnn-synth-route)
  hstnn-dataset --bags ENV=REC [REC ...] [ENV=REC ...] --out DIR --label distance --places 100
  hstnn-dataset --neurogpr ROOT_OR_TRAVERSAL [...] --out DIR    (NeuroGPR layout; default --label time --places 100)
  hstnn-dataset --bags ENV=BAG [...] --export-neurogpr DIR      (write the bags in the NeuroGPR layout instead)

A recording (REC) is a rosbag2 folder or .mcap/.db3 file, a NeuroGPR traversal folder, a frame folder (images +
stamps.txt), an .aedat4 file or a raw EVT3 .raw file (see hstnn_ros.datasets.recordings). Topics are found by type
unless named. Labels: route | distance | time | topic:/place_label | csv[:PATTERN] (`stamp,place` rows; default
labels.csv in a folder recording, <file>.labels.csv beside a file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hstnn_ros.datasets.errors import DatasetError
from hstnn_ros.datasets.labels import Labelling, LabelSpec
from hstnn_ros.datasets.neurogpr import build_neurogpr_dataset, export_neurogpr
from hstnn_ros.datasets.recordings import build_recordings_dataset, parse_recording_args
from hstnn_ros.datasets.sidecar import route_bags
from hstnn_ros.datasets.topics import Topics
from hstnn_ros.datasets.windows import WindowDataset
from hstnn_ros.errors import HstnnError
from hstnn_ros.perception.window import WindowSpec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hstnn-dataset", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--route", type=Path, help="synthetic route set (folder with index.json)")
    src.add_argument("--bags", nargs="+", metavar="ENV=REC",
                     help="recordings, one per traversal, each after its environment (env1=a env1=b, or env1=a b)")
    src.add_argument("--neurogpr", nargs="+", type=Path, metavar="DIR",
                     help="NeuroGPR traversal folders <env>_v<k>, or roots holding them")
    dst = p.add_mutually_exclusive_group(required=True)
    dst.add_argument("--out", type=Path, help="dataset directory")
    dst.add_argument("--export-neurogpr", type=Path, metavar="DIR",
                     help="instead of a dataset, write each bag as DIR/<env>_v<k> in the NeuroGPR layout")
    p.add_argument("--tensor-format", choices=["npy", "torch"], default="npy", help="NeuroGPR export event tensors")
    p.add_argument("--label", default=None, metavar="MODE",
                   help="route | distance | time | topic:/TOPIC | csv[:PATTERN] (default: route for --route, "
                        "distance for --bags, time for --neurogpr)")
    p.add_argument("--places", type=int, help="place count (distance/time; optional for topic/csv labels)")
    p.add_argument("--input-hw", type=int, nargs=2, default=(90, 120), metavar=("H", "W"),
                   help="front-end resolution (default 90 120: the shipped small front-ends; paper 180 240)")
    p.add_argument("--depth", action="store_true", help="add the aligned depth as a 4th channel")
    p.add_argument("--events-topic", help="event topic (default: the bag's only event topic)")
    p.add_argument("--rgb-topic", help="colour topic (default: the only image topic without 'depth' in its name)")
    p.add_argument("--depth-topic", help="depth topic (default: the image topic with 'depth' in its name)")
    p.add_argument("--odom-topic", help="odometry topic (default: the only nav_msgs/Odometry topic)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        window = WindowSpec(input_hw=tuple(args.input_hw), depth=args.depth)
        topics = Topics(args.events_topic, args.rgb_topic, args.depth_topic, args.odom_topic)
        if args.neurogpr:
            if args.export_neurogpr:
                raise DatasetError("--export-neurogpr converts bags (--route or --bags), not NeuroGPR folders")
            ds = build_neurogpr_dataset(args.neurogpr, args.out, window=window,
                                        labelling=LabelSpec.of(args.label or "time"),
                                        places=args.places if args.places is not None else 100,
                                        progress=not args.quiet)
            return _summary(ds, args.out)
        recordings = route_bags(args.route) if args.route else parse_recording_args(args.bags)
        if args.export_neurogpr:
            count: dict[str, int] = {}
            for bag, env in recordings:  # k counts each environment's bags in the order given
                count[env] = count.get(env, 0) + 1
                out = export_neurogpr(bag, args.export_neurogpr / f"{env}_v{count[env]}", topics=topics,
                                      window=window, tensor_format=args.tensor_format, progress=not args.quiet)
                print(f"{bag} -> {out}")
            return 0
        label = LabelSpec.of(args.label or (Labelling.ROUTE if args.route else Labelling.DISTANCE))
        ds = build_recordings_dataset(recordings, args.out, window=window, label=label, places=args.places,
                                      topics=topics, progress=not args.quiet)
    except HstnnError as exc:
        print(f"hstnn-dataset: {exc}", file=sys.stderr)
        return 2
    return _summary(ds, args.out)


def _summary(ds: WindowDataset, out: Path) -> int:
    for t in ds.traversals:
        print(f"{t.name:>12} {t.env:>6} {t.split:>5} {len(t):5d} frames{' (events only)' if t.rgb is None else ''}")
    print(f"dataset in {out}: {len(ds.traversals)} traversals, {ds.num_places} places, "
          f"fingerprint {ds.manifest['fingerprint'][:12]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
