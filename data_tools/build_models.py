"""Build the shipped model bundles in ``models/`` with one reproducible command (``make models``).

    python -m hstnn_ros.data_tools.build_models [--quick] [--work DIR] [--models models]

Steps (each one of the package's own tools, so what ships is what users can rebuild):
 1. ``hstnn-synth-route``: the synthetic route in env1/env2/env3, N traversals each (seed 0).
 2. ``hstnn-dataset``: window datasets (9 event + 3 RGB frames per window, odometry-distance labels, splits by
    traversal).
 3. ``hstnn-frontends``: pretrain the SCNN (events) and CNN (RGB) on the training split of all environments, freeze,
    and cache ``[N, 9, F]`` features per environment and for all environments together.
 4. ``hstnn-train`` per environment (and on all of them for ``default``): the three-stage sweep over SNN ratios.
 5. An events-only HSTNN on all environments with the RGB block zeroed (for event-only bags and cameras).
 6. Per environment the HSTNN with the best *validation* top-1 (test numbers are only reported) is copied into
    ``models/<env>/`` stored as fp16 (loaded back as fp32), pointing at the shared ``models/frontends/`` bundle;
    ``models/presets.json`` gets each environment's measured brightness and event rate for ``auto``;
    ``models/build_report.json`` records every metric for MODEL_CARD.md.
``--quick`` shrinks everything (demo route, fewer traversals and epochs, ratios 0.5/0.95) so that a first model exists
within minutes on 2 cores; the model card says which mode built the shipped bundles.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from hstnn_ros import defaults
from hstnn_ros.errors import HstnnError

ENVS = ("env1", "env2", "env3")


def _run(name: str, main: Any, argv: list[str]) -> None:
    print(f"[build_models] {name} {' '.join(argv)}", flush=True)
    t0 = time.perf_counter()
    rc = main(argv)
    if rc not in (0, None):
        raise SystemExit(f"build_models: step {name} failed with exit code {rc}")
    print(f"[build_models] {name} done in {time.perf_counter() - t0:.0f} s", flush=True)


def _train_config(work: Path, quick: bool, hidden: list[int] | None = None, ratios: list[float] | None = None
                  ) -> Path:
    base = yaml.safe_load((defaults.share_dir() / "config" / "train_place_recognition.yaml").read_text())
    if quick:
        base["network"]["hidden"] = [128, 128]
        base["epochs"] = {"adaptation": 15, "restoration": 10, "direct": None, "patience": 5}
        base["sweep"] = {"ratios": [0.5, 0.95], "seeds": [0], "direct_baselines": False, "random_control": False}
        base["selection"]["max_batches"] = 5
    else:
        base["sweep"] = {**base["sweep"], "seeds": [0], "direct_baselines": False, "random_control": False}
    if hidden:
        base["network"]["hidden"] = hidden
    if ratios:
        base["sweep"]["ratios"] = ratios
    path = work / "train.yaml"
    path.write_text(yaml.safe_dump(base))
    return path


def _best_unit(train_out: Path) -> dict[str, Any]:
    """The HSTNN unit with the best validation top-1 (ties: the higher SNN ratio, cheaper on chip)."""
    report = json.loads((train_out / "report.json").read_text())
    units = [u for u in report["units"] if u["kind"] == "hstnn" and u.get("val")]
    if not units:
        raise SystemExit(f"build_models: {train_out}/report.json has no trained HSTNN unit")
    return max(units, key=lambda u: (u["val"]["top1"], u["ratio"]))


def _ship(unit: dict[str, Any], train_out: Path, dest: Path, extra: dict[str, Any]) -> None:
    """Copy a unit's bundle to ``dest`` as fp16 with runtime metadata (shared front-end bundle path)."""
    from hstnn_ros.model import Component, load_bundle, save_bundle  # noqa: PLC0415

    src = load_bundle(train_out / "units" / unit["unit"] / "bundle")
    comp = src.components["hstnn"]
    half = Component(comp.kind, comp.config, {k: v.half() if v.is_floating_point() else v
                                              for k, v in comp.state.items()})
    meta = {**src.metadata, "frontend_bundle": "../frontends", "snn_ratio": unit["ratio"], "val": unit["val"],
            "test": unit["test"], "mac_per_decision_hstnn": unit.get("mac"), "ac_per_decision_hstnn": unit.get("ac"),
            "spike_rates": unit.get("spike_rates"), "storage_dtype": "float16", **extra}
    if dest.exists():
        shutil.rmtree(dest)
    save_bundle(dest, {"hstnn": half}, meta)


def _events_only_features(src: Path, dest: Path) -> Path:
    """The all-environment feature set with the RGB block of every step zeroed: what an events-only model sees at run
    time (the engine feeds zeros where RGB features would be), so it is trained on exactly that."""
    import dataclasses  # noqa: PLC0415

    from hstnn_ros.datasets.features import load_feature_set, save_feature_set  # noqa: PLC0415

    fs = load_feature_set(src)
    feats = fs.features.copy()
    feats[..., fs.input_spiking :] = 0.0  # leading spike features are the SCNN block
    meta = {**fs.meta, "events_only": True}
    return save_feature_set(dest, dataclasses.replace(fs, features=feats, meta=meta))


CARD_HEAD = """# Shipped models (hstnn_ros)

Generated by `python -m hstnn_ros.data_tools.build_models{quick}` on {date} in {minutes:.0f} min; every number below
was measured by that run (`models/build_report.json` has all of them). Rebuild with `make models`.

## What was trained
- Data: the synthetic corridor route (`hstnn-synth-route --preset {preset}`, seed 0), environments env1 (bright
  indoor), env2 (outdoor, drifting light), env3 (dim indoor, noisy), {traversals} traversals each, split by traversal
  (train / validation / test). Labels: distance along the route from odometry, binned into equal places.
- Front-ends (`models/frontends/`, shared by every bundle): SCNN on 3 event frames per RGB frame and CNN on RGB,
  pretrained with a linear place head on the training split of all environments, then frozen (`hstnn-frontends`).
- HSTNN per environment (`hstnn-train`, three-stage hybrid learning: Adaptation, Hessian-aware Selection,
  Restoration) over SNN ratios {ratios}; the ratio with the best **validation** top-1 is shipped (test set only
  reported). `default` is trained on all environments; `events_only` on all environments with the RGB block of
  every step zeroed (used for event-only cameras and bags). Weights are stored fp16 and run in fp32.
- Windows: 9 event frames + 3 RGB frames; RGB features enter at steps 2, 5, 8.

## Measured metrics (test traversals, offline windows)
| bundle | SNN ratio | sizes | val top-1 | test top-1 | test recall@1 | HSTNN MACs/window | HSTNN ACs/window |
|---|---|---|---|---|---|---|---|
"""

CARD_TAIL = """
## `auto` preset
`auto` measures mean RGB brightness and event rate (events/s/pixel) over the first seconds and picks the environment
with the nearest reference in normalised log space. References measured on the training route:
{refs}
On scenes drawn around these references with 30 % log-normal measurement noise, `test/test_runtime_presets.py`
measures the choice accuracy (printed by the test; > 0.85 required).

## Limits
Trained on a synthetic world only: expect to retrain (`make models` on recorded routes via `hstnn-dataset`) before
trusting the numbers on a real robot. The events-only model sees no colour and is weaker in env1/env2.
"""


def write_model_card(models: Path, report: dict[str, Any]) -> Path:
    """``models/MODEL_CARD.md`` from the measured ``build_report``."""
    cfg = report["train_config"]
    head = CARD_HEAD.format(quick=report.get("args", " --quick" if report["mode"] == "quick" else ""),
                            date=time.strftime("%Y-%m-%d"), minutes=report["seconds"] / 60, preset=report["preset"],
                            traversals=report["traversals"], ratios=cfg["sweep"]["ratios"])
    rows = []
    for name, b in report["bundles"].items():
        def fmt(d: dict | None, key: str) -> str:
            return f"{d[key]:.3f}" if d and key in d else "-"

        rec = next((k for k in (b.get("test") or {}) if k.startswith("recall")), None)
        rows.append(f"| {name} | {b['snn_ratio']} | {b.get('sizes')} | {fmt(b['val'], 'top1')} | "
                    f"{fmt(b['test'], 'top1')} | {fmt(b['test'], rec) if rec else '-'} | "
                    f"{b.get('mac') or 0:.0f} | {b.get('ac') or 0:.0f} |")
    refs = "\n".join(f"- {e}: brightness {r['brightness']:.3f}, {r['event_rate_hz_px']:.3f} ev/s/px"
                     for e, r in report.get("presets", {}).items())
    path = models / "MODEL_CARD.md"
    path.write_text(head + "\n".join(rows) + "\n" + CARD_TAIL.format(refs=refs))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="build_models", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small route and short training (minutes)")
    p.add_argument("--work", type=Path, default=Path("build_models_work"), help="intermediate files")
    p.add_argument("--models", type=Path, default=defaults.REPO_ROOT / "models", help="where bundles go")
    p.add_argument("--traversals", type=int, help="traversals per environment (default 6, quick 3)")
    p.add_argument("--hidden", type=int, nargs="+",
                   help="HSTNN hidden sizes (default: the recipe's 500 500; quick 128 128)")
    p.add_argument("--ratios", type=float, nargs="+", help="SNN ratios to sweep (default: the recipe's)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:  # installed: data_tools is hstnn_ros.data_tools; source checkout: the sibling package
        from hstnn_ros.data_tools import dataset, frontends, synth_route, train  # noqa: PLC0415
    except ImportError:
        try:
            from data_tools import dataset, frontends, synth_route, train  # noqa: PLC0415
        except ImportError as exc:
            print(f"build_models: a pipeline tool is missing ({exc}); it needs hstnn-synth-route, hstnn-dataset, "
                  "hstnn-frontends and hstnn-train from this package", file=sys.stderr)
            return 2

    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    trav = args.traversals or (3 if args.quick else 6)
    preset = "demo" if args.quick else "default"
    t_start = time.perf_counter()
    routes = work / "route"
    if not (routes / "index.json").is_file():
        _run("synth-route", synth_route.main, ["--out", str(routes), "--preset", preset, "--envs", ",".join(ENVS),
                                               "--traversals", str(trav), "--seed", "0", "--quiet"])
    data = work / "dataset"
    _run("dataset", dataset.main, ["--route", str(routes), "--out", str(data)])
    fe_dir = work / "frontends"
    feats = work / "features"
    _run("frontends", frontends.main, ["--dataset", str(data), "--out", str(fe_dir), "--features", str(feats)]
         + (["--quick"] if args.quick else []))
    cfg = _train_config(work, args.quick, args.hidden, args.ratios)
    models = args.models
    models.mkdir(parents=True, exist_ok=True)
    if (models / "frontends").exists():
        shutil.rmtree(models / "frontends")
    shutil.copytree(fe_dir, models / "frontends")
    index = json.loads((routes / "index.json").read_text())
    cli = sys.argv[1:] if argv is None else argv
    shown = [a for a in cli if a not in {str(args.work), str(args.models)} and a not in {"--work", "--models"}]
    report: dict[str, Any] = {"args": "".join(f" {a}" for a in shown),
                              "mode": "quick" if args.quick else "full", "preset": preset, "traversals": trav,
                              "train_config": yaml.safe_load(cfg.read_text()), "bundles": {}}
    refs = {}
    try:
        _events_only_features(feats / "all.safetensors", feats / "events_only.safetensors")
        for env in (*ENVS, "default", "events_only"):
            fs = feats / f"{'all' if env == 'default' else env}.safetensors"
            out = work / f"train_{env}"
            _run(f"train {env}", train.main, ["--config", str(cfg), "--features", str(fs), "--out", str(out),
                                              "--no-plots"])
            best = _best_unit(out)
            _ship(best, out, models / env, {"environment": env, "build_mode": report["mode"],
                                            "events_only": env == "events_only"})
            report["bundles"][env] = {"unit": best["unit"], "snn_ratio": best["ratio"], "val": best["val"],
                                      "test": best["test"], "mac": best.get("mac"), "ac": best.get("ac"),
                                      "sizes": best.get("sizes")}
            if env in ENVS:
                bags = [b for b in index["bags"] if b["env"] == env]
                ev = sum(b["event_stats"]["events"] for b in bags)
                dur = sum(b["event_stats"]["duration_s"] for b in bags)
                w, h = index["config"]["camera"]["dvs_width"], index["config"]["camera"]["dvs_height"]
                from hstnn_ros.runtime.bag_source import open_bag  # noqa: PLC0415

                bright = open_bag(routes / bags[0]["bag"]).scene_stats(2.0).brightness
                refs[env] = {"brightness": bright, "event_rate_hz_px": ev / dur / (w * h)}
    except HstnnError as e:
        print(f"build_models: {e}", file=sys.stderr)
        return 2
    (models / "presets.json").write_text(json.dumps({"references": refs}, indent=1))
    report["presets"] = refs
    report["seconds"] = time.perf_counter() - t_start
    (models / "build_report.json").write_text(json.dumps(report, indent=1))
    write_model_card(models, report)
    print(json.dumps(report["bundles"], indent=1))
    print(f"[build_models] bundles in {models} ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
