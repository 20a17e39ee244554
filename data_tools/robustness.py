"""hstnn-robustness: accuracy of trained model bundles under input noise and frame loss (paper Fig. 3).

Usage: ``hstnn-robustness BUNDLE [BUNDLE ...] --features route.safetensors [--kinds gaussian frame_loss]
[--levels 0 0.1 0.2] [--split test] [--plot robustness.png] [--json robustness.json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hstnn_ros.datasets.features import SPLIT_NAMES, load_feature_set
from hstnn_ros.errors import HstnnError
from hstnn_ros.learning import Perturbation, evaluate_robustness, plot_robustness, prepare_data
from hstnn_ros.learning.network import load_model
from hstnn_ros.learning.robustness import DEFAULT_LEVELS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hstnn-robustness", description=__doc__.split("\n\n")[0])
    p.add_argument("bundles", nargs="+", type=Path, help="model bundle directories (e.g. units/*/bundle)")
    p.add_argument("--features", required=True, type=Path, help="feature set file (hstnn_ros.feature_set)")
    p.add_argument("--kinds", nargs="+", choices=[k.value for k in Perturbation],
                   default=[k.value for k in Perturbation], help="perturbations to apply")
    p.add_argument("--levels", type=float, nargs="+", help="levels for every kind (default: per-kind defaults)")
    p.add_argument("--split", default="test", choices=["val", "test"], help="windows to evaluate on")
    p.add_argument("--repeats", type=int, default=1, help="perturbation draws averaged per level")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", type=Path, help="write accuracy-vs-level PNG here")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        fs = load_feature_set(args.features)
        models = {}
        tol = 0
        for b in args.bundles:
            model, meta = load_model(b)
            name = f"{meta.get('kind', 'model')} r={meta.get('snn_ratio')} s={meta.get('seed')}"
            models[name if name not in models else str(b)] = model
            tol = int(meta.get("train_config", {}).get("eval", {}).get("recall_tolerance", tol))
        data = prepare_data(fs, name=str(args.features), input_size=model.config.input_size,
                            num_classes=model.config.num_classes)
        kinds = [Perturbation(k) for k in args.kinds]
        levels = {k: tuple(args.levels) if args.levels else DEFAULT_LEVELS[k] for k in kinds}
        split = data.test if args.split == "test" else data.val
        res = evaluate_robustness(models, split, kinds=kinds, levels=levels, seed=args.seed, tolerance=tol,
                                  repeats=args.repeats)
    except HstnnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, per in res.items():
        for kind, rows in per.items():
            accs = " ".join(f"{r['level']:g}:{r['top1']:.3f}" for r in rows)
            print(f"{name:28} {kind:12} {accs}")
    if args.plot:
        print(f"plot: {plot_robustness(res, args.plot)}")
    if args.json:
        args.json.write_text(json.dumps({"split": SPLIT_NAMES.get(2 if args.split == 'test' else 1),
                                         "results": res}, indent=1))
        print(f"report: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
