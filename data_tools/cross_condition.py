"""hstnn-cross-condition: test the networks of per-condition sweeps on every condition's test split.

Usage: ``hstnn-cross-condition --sweep env1=runs/env1 env2=runs/env2 --features env1=f/env1.safetensors
env2=f/env2.safetensors --out runs/cross``; writes ``cross_condition.json`` and ``cross_condition.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hstnn_ros.errors import HstnnError
from hstnn_ros.learning.transfer import cross_condition, plot_cross_condition


def _pairs(values: list[str], what: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"error: {what} {v!r}: give CONDITION=PATH, e.g. env1=runs/env1")
        out[name] = Path(path)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hstnn-cross-condition", description=__doc__.split("\n\n")[0])
    p.add_argument("--sweep", nargs="+", required=True, metavar="COND=DIR", help="hstnn-train --out per condition")
    p.add_argument("--features", nargs="+", required=True, metavar="COND=FILE",
                   help="feature set per test condition (same front-ends as the sweeps)")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument("--no-plot", action="store_true", help="skip cross_condition.png")
    args = p.parse_args(argv)
    try:
        result = cross_condition(_pairs(args.sweep, "--sweep"), _pairs(args.features, "--features"))
    except HstnnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cross_condition.json").write_text(json.dumps(result, indent=1))
    if not args.no_plot:
        plot_cross_condition(result, args.out / "cross_condition.png")
    print(f"{'train':6} {'test':6} {'model':14} {'ratio':>5} {'top1':>14}")
    for r in sorted(result["summary"], key=lambda r: (r["train"], r["test"], r["model"], r["snn_ratio"] or -1)):
        ratio = "-" if r["snn_ratio"] is None else f"{r['snn_ratio']:.2f}"
        top1 = r["top1"]
        print(f"{r['train']:6} {r['test']:6} {r['model']:14} {ratio:>5} {top1['mean']:.3f}+-{top1['std']:.3f}")
    print(f"report: {args.out / 'cross_condition.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
