"""hstnn-frontends: pretrain the SCNN (events) and CNN (RGB(-D)) front-ends with a linear place head on a window
dataset's training split, freeze them into one bundle, and cache their features as FeatureSets for hstnn-train.

  hstnn-frontends --dataset DIR --out FRONTEND_BUNDLE --features FEATURE_DIR [--quick] [--full-size]

Writes FEATURE_DIR/all.safetensors and one FEATURE_DIR/<env>.safetensors per environment, and a report with the
per-environment accuracy of each head and of a nearest-neighbour baseline on raw downsampled frames.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from hstnn_ros.datasets.frontend_training import PretrainConfig, fit_frontends, plot_frontend_report
from hstnn_ros.datasets.windows import load_dataset
from hstnn_ros.errors import HstnnError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="hstnn-frontends", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="front-end bundle directory")
    p.add_argument("--features", type=Path, required=True, help="directory for the feature sets")
    p.add_argument("--epochs", type=int, default=None, help="pretraining epochs (default 12, quick 5)")
    p.add_argument("--batch", type=int, default=PretrainConfig.batch, help="frames per training step")
    p.add_argument("--quick", action="store_true", help="few epochs (minutes)")
    p.add_argument("--full-size", action="store_true", help="paper-size front-ends instead of the small ones")
    p.add_argument("--plot", type=Path, help="bar chart of the report (default: OUT/pretrain_report.png)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        ds = load_dataset(args.dataset, progress=not args.quiet)
        recipe = PretrainConfig(epochs=args.epochs or (5 if args.quick else 12), batch=args.batch)
        fit = fit_frontends(ds, args.out, args.features, full_size=args.full_size, recipe=recipe,
                            progress=not args.quiet)
    except HstnnError as exc:
        print(f"hstnn-frontends: {exc}", file=sys.stderr)
        return 2
    report, fs = fit.report, fit.features
    m_ev, m_rgb, baseline = report["scnn_head"], report["cnn_head"], report["nearest_neighbour"]
    png = plot_frontend_report(report, args.plot or args.out / "pretrain_report.png")
    print("per-environment test top-1 (front-end linear heads vs nearest neighbour on raw thumbnails):")
    print(f"{'env':>6} {'SCNN head':>10} {'CNN head':>10} {'NN events':>10} {'NN RGB':>10}")
    for env in fs.env_names:
        row = [m_ev["per_env"][env]["test_top1"], m_rgb["per_env"][env]["test_top1"] if m_rgb else None,
               baseline[env].get("nn_events_top1"), baseline[env].get("nn_rgb_top1")]
        print(f"{env:>6} " + " ".join(f"{v:10.3f}" if v is not None else f"{'-':>10}" for v in row))
    for name, m in (("SCNN", m_ev), ("CNN", m_rgb)):
        if m:
            print(f"{name} pretraining: {m['train_seconds']:.0f} s for {m['train_frames']} frames, "
                  f"{m['train_flops_per_s'] / 1e9:.1f} GFLOP/s on {m['threads']} threads "
                  f"({m['share_of_gemm_peak']:.0%} of the GEMM peak measured beside it)")
    print(f"front-ends in {args.out}; features {fs.features.shape} in {args.features} "
          f"(spike rate of event features {np.mean(fs.features[..., :fs.input_spiking]):.3f}); plot {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
