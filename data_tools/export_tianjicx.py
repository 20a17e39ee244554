"""hstnn-export-tianjicx: turn a trained HSTNN bundle into a TianjicX-style INT8 core program.

Usage: ``hstnn-export-tianjicx MODEL --out DIR [--calib FEATURESET] [--strategy auto|fixed|variable]``.
Writes ``DIR/program.json`` (manifest), ``DIR/weights.safetensors`` and ``DIR/float_model.onnx``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hstnn_ros.datasets.features import SPLIT_TRAIN, load_feature_set
from hstnn_ros.defaults import EVENT_FRAMES_PER_WINDOW
from hstnn_ros.errors import HstnnError
from hstnn_ros.model import load_bundle
from hstnn_ros.tianjicx import LutWidth, MappingStrategy, export_program


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hstnn-export-tianjicx", description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, help="model bundle directory (bundle.json + weights.safetensors)")
    p.add_argument("--out", required=True, type=Path, help="output program directory")
    p.add_argument("--calib", type=Path, help="feature set whose training windows choose the input scale")
    p.add_argument("--calib-windows", type=int, default=512, help="calibration windows to use")
    p.add_argument("--strategy", default="auto", choices=["auto", *(s.value for s in MappingStrategy)])
    p.add_argument("--lut-bits", type=int, default=12, choices=[8, 12], help="P07 sigmoid table address width")
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX export of the float network")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        model = load_bundle(args.model).hstnn()
        cfg = model.config
        if args.calib:
            fs = load_feature_set(args.calib)
            train = fs.split_set(SPLIT_TRAIN)
            calib = (train if train.features.shape[0] else fs).features[: args.calib_windows]
        else:
            print(
                "warning: no --calib feature set: real-valued inputs are assumed to lie in [-1, 1]; "
                "pass --calib for a scale chosen on data",
                file=sys.stderr,
            )
            calib = np.ones((1, EVENT_FRAMES_PER_WINDOW, cfg.input_size), np.float32)
        strategy = None if args.strategy == "auto" else MappingStrategy(args.strategy)
        res = export_program(
            model,
            calib,
            args.out,
            strategy=strategy,
            lut_width=LutWidth(args.lut_bits),
            with_onnx=not args.no_onnx,
            meta={"bundle": str(args.model), "calibration": str(args.calib) if args.calib else "unit range"},
        )
    except HstnnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"program: {res.manifest_path}")
    for g in res.mapping.groups:
        print(f"  {g.name}: {g.strategy.value}-core mapping on {len(g.cores)} core(s)")
    used, chip = len(res.mapping.cores), res.mapping.limits.cores_per_chip
    print(f"  {used} of {chip} cores, input scale 2**-{res.quant.input_exp}")
    if res.onnx_path:
        print(f"onnx: {res.onnx_path} (max |ONNX - PyTorch| = {res.onnx_max_abs_diff:.2e})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
