"""hstnn-tianjicx-sim: run exported TianjicX-style programs on a feature set and report fidelity and cost.

Usage: ``hstnn-tianjicx-sim DIR [DIR ...] --data FEATURESET [--split test] [--plot fig.png] [--json out.json]``.
Several program directories (e.g. the same network exported at several SNN ratios) give one point each on the
latency/energy-versus-SNN-ratio plot.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from hstnn_ros.datasets.features import SPLIT_NAMES, load_feature_set
from hstnn_ros.errors import HstnnError
from hstnn_ros.tianjicx import plot_vs_snn_ratio, simulate_program


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hstnn-tianjicx-sim", description=__doc__.split("\n\n")[0])
    p.add_argument("programs", nargs="+", type=Path, help="program directories written by hstnn-export-tianjicx")
    p.add_argument("--data", required=True, type=Path, help="feature set file (hstnn_ros.feature_set)")
    p.add_argument("--split", default="test", choices=[*SPLIT_NAMES.values(), "all"], help="windows to run")
    p.add_argument("--max-windows", type=int, default=0, help="use at most this many windows (0 = all)")
    p.add_argument("--plot", type=Path, help="write latency/energy vs SNN ratio PNG here")
    p.add_argument("--json", type=Path, help="write the full report (per-core workload) as JSON here")
    p.add_argument("--min-agreement", type=float, default=0.0, help="exit 1 when top-1 agreement is below this")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        fs = load_feature_set(args.data)
        if args.split != "all":
            code = {v: k for k, v in SPLIT_NAMES.items()}[args.split]
            fs = fs.split_set(code)
        x, labels = fs.features, fs.labels
        if args.max_windows:
            x, labels = x[: args.max_windows], labels[: args.max_windows]
        if x.shape[0] == 0:
            print(f"error: {args.data} has no {args.split} windows", file=sys.stderr)
            return 2
        reports, summaries = [], {}
        for d in args.programs:
            rep = simulate_program(d, x, labels)
            reports.append(rep)
            s = rep.summary()
            summaries[str(d)] = s
            _print(d, s)
        if args.plot:
            print(f"plot: {plot_vs_snn_ratio(reports, args.plot)}")
        if args.json:
            args.json.write_text(json.dumps(summaries, indent=1, default=float))
            print(f"report: {args.json}")
    except HstnnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    worst = min((r.agreement for r in reports if r.agreement is not None), default=None)
    if worst is not None and worst < args.min_agreement:
        print(f"top-1 agreement {worst:.4f} is below --min-agreement {args.min_agreement}", file=sys.stderr)
        return 1
    return 0


def _fmt(v: float | None, pct: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:.2f} %" if pct else f"{v:.4g}"


def _print(d: Path, s: dict) -> None:
    print(f"== {d}  ({s['samples']} windows, SNN ratio {s['snn_ratio']:.3f})")
    print(f"top-1 agreement with float: {_fmt(s['agreement_top1'], True)}")
    print(
        f"accuracy int {_fmt(s['accuracy_int'], True)}  float {_fmt(s['accuracy_float'], True)}  "
        f"change {_fmt(s['accuracy_change'], True)}"
    )
    print(
        f"latency per sample {s['latency_us_per_sample']:.3f} us   energy per sample {s['energy_uj_per_sample']:.4f} uJ"
    )
    print(f"cycles per step by core group: {[round(c, 1) for c in s['group_cycles_per_step']]}")
    print(f"{'core':>4} {'grp':>3} {'population':<12} {'MACs':>10} {'ACs':>10} {'mem B':>8} {'cyc/step':>8}")
    for c in s["cores"]:
        print(
            f"{c['core_id']:>4} {c['group']:>3} {c['population']:<12} {c['macs']:>10.0f} {c['acs']:>10.0f} "
            f"{c['memory_bytes']:>8} {c['cycles_per_step']:>8.1f}"
        )
    total = np.sum([[c["macs"], c["acs"]] for c in s["cores"]], axis=0)
    print(f"total per sample: {total[0]:.0f} MACs, {total[1]:.0f} ACs")


if __name__ == "__main__":
    raise SystemExit(main())
