"""hstnn-train: three-stage hybrid learning (and baselines) over SNN ratios and seeds; resumable.

Usage: ``hstnn-train --config config/train_place_recognition.yaml --features route.safetensors --out runs/route
[--ratios 0 0.5 1] [--seeds 0 1] [--ray [ADDRESS]]``. Rerunning with the same --out skips every finished unit.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hstnn_ros.datasets.features import load_feature_set
from hstnn_ros.errors import HstnnError
from hstnn_ros.learning import load_config, run_sweep
from hstnn_ros.learning.distributed import run_sweep_ray


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hstnn-train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, type=Path, help="training YAML (see config/train_*.yaml)")
    p.add_argument("--features", required=True, type=Path, help="feature set file (hstnn_ros.feature_set)")
    p.add_argument("--out", required=True, type=Path, help="output directory (bundles, report.json, plots)")
    p.add_argument("--ratios", type=float, nargs="+", help="SNN ratios, overriding sweep.ratios")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds, overriding sweep.seeds")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run the sweep's units as Ray tasks: on this machine (no ADDRESS), or on a running cluster "
                        "(auto | ray://HEAD:10001); --out and --features must be on storage every node sees")
    p.add_argument("--ray-workers", type=int, default=2, help="local Ray CPUs (one unit per CPU)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s")
    try:
        cfg = load_config(args.config).with_sweep(
            tuple(args.ratios) if args.ratios else None, tuple(args.seeds) if args.seeds else None)
        if args.ray:
            report = run_sweep_ray(cfg, args.features, args.out, address=None if args.ray == "local" else args.ray,
                                   workers=args.ray_workers, plots=not args.no_plots)
        else:
            fs = load_feature_set(args.features)
            report = run_sweep(cfg, fs, args.out, name=str(args.features), plots=not args.no_plots)
    except HstnnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{'kind':8} {'ratio':>6} {'top1':>14} {'top5':>7} {'recall':>7} {'MAC/sample':>12} {'AC/sample':>12}")
    for row in report["summary"]:
        if "top1" not in row:
            continue
        ratio = "-" if row["snn_ratio"] is None else f"{row['snn_ratio']:.2f}"
        print(f"{row['kind']:8} {ratio:>6} {row['top1']['mean']:.3f}+-{row['top1']['std']:.3f}     "
              f"{row['top5']['mean']:.3f} {row['recall']['mean']:7.3f} {row['mac']['mean']:12.0f} "
              f"{row['ac']['mean']:12.0f}")
    for name, why in report["failures"].items():
        print(f"refused {name}: {why}")
    print(f"report: {args.out / 'report.json'}")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
