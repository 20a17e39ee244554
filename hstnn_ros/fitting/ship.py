"""The last stage of a route fit: the deployable bundle set, as ``runtime.presets.resolve_bundle`` and
``runtime.loading.load_pipeline`` read it, with ``presets.json``, ``MODEL_CARD.md``, ``build_report.json`` and plots.

Per target (each environment, ``default``, ``events_only``) the HSTNN unit with the best *validation* top-1 (ties:
the higher SNN ratio, cheaper on chip) is shipped; test numbers are only reported. Bundles carry the deployment
contract (``runtime.deployment.DeployMeta``): the front-ends by relative path and weights digest, or embedded.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hstnn_ros.datasets.features import SPLIT_TEST, load_feature_set
from hstnn_ros.enums import Environment
from hstnn_ros.fitting.config import DEFAULT_TARGET, EVENTS_ONLY_TARGET, FitRouteConfig
from hstnn_ros.fitting.errors import FitError
from hstnn_ros.fitting.off_route import accept_rates, by_traversal
from hstnn_ros.fitting.route_calibration import calibrate_route
from hstnn_ros.fitting.stages import StageLog, fresh_dir, replace_dir
from hstnn_ros.learning import evaluate, prepare_data
from hstnn_ros.learning.enums import UnitKind
from hstnn_ros.learning.report import unit_kind
from hstnn_ros.model import Component, load_bundle, save_bundle
from hstnn_ros.model.unknown_place import COMPONENT
from hstnn_ros.plotting import pyplot, save_figure
from hstnn_ros.runtime.deployment import DeployMeta
from hstnn_ros.runtime.presets import PRESETS_FILE, SceneReferences, SceneStats, write_references

log = logging.getLogger(__name__)

FRONTENDS = "frontends"
CARD = "MODEL_CARD.md"
REPORT = "build_report.json"
REPORT_FORMAT = "hstnn_ros.fit_report"
PLOTS = "plots"
#: Front-end metadata a bundle with embedded front-ends carries itself (``load_pipeline`` reads the window there).
_FRONTEND_KEYS = ("window", "num_places", "dataset_fingerprint", "pretrain")


def unit_ratio(unit: dict[str, Any]) -> float:
    """A unit result's SNN ratio: ``snn_ratio``, or ``ratio`` in results written before the key was renamed (a fit
    resumed across that change keeps its trained stages)."""
    return float(unit["snn_ratio"] if "snn_ratio" in unit else unit["ratio"])


def best_unit(report: dict[str, Any], source: Path) -> dict[str, Any]:
    """The HSTNN unit with the best validation top-1 (ties: the higher SNN ratio)."""
    units = [u for u in report["units"] if unit_kind(u) is UnitKind.HSTNN and u.get("val")]
    if not units:
        raise FitError(f"{source}: no trained HSTNN unit; see its report.json")
    return max(units, key=lambda u: (u["val"]["top1"], unit_ratio(u)))


def _copy_frontends(src: Path, dst: Path) -> Path:
    tmp = fresh_dir(dst.parent / f".tmp-{dst.name}")
    for f in src.iterdir():
        if f.is_file():
            shutil.copy2(f, tmp / f.name)
    return replace_dir(tmp, dst)


def _per_env_accuracy(bundle_dir: Path, fs_file: Path, tolerance: int) -> dict[str, dict[str, float]]:
    """Test metrics of the shipped weights (as stored, run in float32) on each environment's test traversals."""
    model = load_bundle(bundle_dir).hstnn().float().eval()
    fs = load_feature_set(fs_file)
    out = {}
    for k in np.unique(fs.env).tolist():
        env = fs.env_names[k]
        data = prepare_data(fs.subset(fs.env == k), name=f"{fs_file.name} [{env}]")
        out[env] = evaluate(model, data.test, tolerance=tolerance).to_dict()
    return out


def _ship_bundle(cfg: FitRouteConfig, *, target: str, environment: str, unit: dict[str, Any], train_dir: Path,
                 frontends_dir: Path, dest: Path, events_only: bool, fs_file: Path) -> tuple[Path, dict[str, Any]]:
    """Write one bundle to ``dest``; its route filter and unknown thresholds are calibrated on the weights as
    stored (``route_calibration.calibrate_route`` on ``fs_file``). Returns the path and the calibration."""
    src = load_bundle(train_dir / "units" / unit["unit"] / "bundle")
    comp = src.components["hstnn"]
    state = {k: (v.half() if cfg.store_fp16 and v.is_floating_point() else v) for k, v in comp.state.items()}
    fe = load_bundle(frontends_dir)
    deploy = DeployMeta(
        place_count=int(comp.config["num_classes"]),
        frontend_bundle=None if cfg.embed_frontends else f"../{FRONTENDS}",
        frontend_sha256=None if cfg.embed_frontends else fe.digest,
        events_only=events_only, environment=environment, snn_ratio=unit_ratio(unit), unit=unit["unit"],
        val=unit["val"], test=unit["test"], mac_per_decision_hstnn=unit.get("mac"),
        ac_per_decision_hstnn=unit.get("ac"),
        spike_rates=tuple(r for r in unit.get("spike_rates") or () if r is not None) or None,
        storage_dtype="float16" if cfg.store_fp16 else "float32",
        build={"tool": "hstnn-fit-route", "mode": "quick" if cfg.quick else "full", "target": target,
               "data_fingerprint": src.metadata.get("data_fingerprint"), "date": time.strftime("%Y-%m-%d")},
    )
    keep = {k: v for k, v in src.metadata.items() if k in ("kept", "sizes", "seed", "kind", "train_config",
                                                             "versions", "data_fingerprint")}
    comps: dict[str, Component] = {"hstnn": Component(comp.kind, comp.config, state)}
    meta = {**keep, **deploy.to_metadata()}
    if cfg.embed_frontends:
        comps |= fe.components
        meta |= {k: fe.metadata[k] for k in _FRONTEND_KEYS if k in fe.metadata}
    tmp = dest.parent / f".tmp-{dest.name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    save_bundle(tmp, comps, meta)
    calib = calibrate_route(load_bundle(tmp).hstnn().float().eval(), load_feature_set(fs_file),
                            true_accept=cfg.unknown_true_accept)
    meta |= {k: calib[k] for k in ("route_filter", "unknown_threshold", "unknown_threshold_filtered",
                                   "unknown_detector")}
    comps[COMPONENT] = calib.pop("detector").to_component()
    shutil.rmtree(tmp)
    save_bundle(tmp, comps, meta)
    return replace_dir(tmp, dest), calib


def ship(cfg: FitRouteConfig, *, dataset_info: dict[str, Any], frontends_dir: Path, features_dir: Path,
         trained: dict[str, Path], references: Path | None, stages: StageLog, progress: bool = True,
         off_route: Callable[[dict[str, tuple[Path, bool]]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write the bundle set into ``cfg.out`` (see the module docstring); returns the bundles' facts, the report and
    card paths and the summary table. Every bundle's unknown-place rules are measured on its test traversals
    (true-accept rates at the shipped thresholds); ``off_route`` (the fit's ``off_route`` stage) takes the shipped
    bundles (name -> directory, events-only) and returns their false-accept rates off the route by name."""
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not cfg.embed_frontends:
        _copy_frontends(frontends_dir, out / FRONTENDS)
    elif (out / FRONTENDS).exists():
        shutil.rmtree(out / FRONTENDS)
    tol = cfg.train.eval.recall_tolerance
    events_only_data = bool(dataset_info["events_only"])
    bundles: dict[str, dict[str, Any]] = {}
    shipped: list[tuple[str, str, Path]] = []  # (name, target it comes from, features)
    for target in trained:
        fs_file = features_dir / f"{'all' if target == DEFAULT_TARGET else target}.safetensors"
        shipped.append((target, target, fs_file))
    envs = cfg.environments
    if len(envs) == 1:  # one environment: its model is the default model
        shipped.append((envs[0], DEFAULT_TARGET, features_dir / "all.safetensors"))
    if events_only_data:  # every model is events-only already
        shipped.append((EVENTS_ONLY_TARGET, DEFAULT_TARGET, features_dir / "all.safetensors"))
    for name, target, fs_file in shipped:
        train_dir = trained[target]
        report = json.loads((train_dir / "report.json").read_text())
        unit = best_unit(report, train_dir)
        events_only = events_only_data or target == EVENTS_ONLY_TARGET
        dest, calib = _ship_bundle(cfg, target=target, environment=name, unit=unit, train_dir=train_dir,
                                   frontends_dir=frontends_dir, dest=out / name, events_only=events_only,
                                   fs_file=fs_file)
        per_env = _per_env_accuracy(dest, fs_file, tol)
        fs = load_feature_set(fs_file)
        unknown: dict[str, Any] = {"test": accept_rates(dest, by_traversal(fs, fs.split == SPLIT_TEST)),
                                   "off_route": None}
        bundles[name] = {"from": target, "unit": unit["unit"], "snn_ratio": unit_ratio(unit),
                         "sizes": unit.get("sizes"), "val": unit["val"], "test": unit["test"],
                         "mac": unit.get("mac"), "ac": unit.get("ac"),
                         "spike_rates": unit.get("spike_rates"), "events_only": events_only,
                         "test_per_environment": per_env, "route_filter": calib, "unknown_place": unknown,
                         "sweep": [{k: r.get(k) for k in ("model", "snn_ratio", "top1", "val_top1", "mac", "ac")}
                                   for r in report["summary"]]}
    off_s = 0.0
    if off_route is not None:
        t_off = time.perf_counter()
        far = off_route({name: (out / name, bool(b["events_only"])) for name, b in bundles.items()})
        off_s = time.perf_counter() - t_off  # the off_route stage's own time (stage_seconds), not shipping's
        for name, b in bundles.items():
            b["unknown_place"]["off_route"] = far[name]
    presets = _write_presets(out, references)
    plots = _plots(out, frontends_dir, trained, bundles, stages.seconds)
    fe_report = json.loads((frontends_dir / "pretrain_report.json").read_text())
    ship_s = time.perf_counter() - t0 - off_s
    seconds = {**stages.seconds, "ship": ship_s}
    summary = _summary(bundles, tol)
    doc = {
        "format": REPORT_FORMAT, "format_version": 1, "command": cfg.command, "date": time.strftime("%Y-%m-%d %H:%M"),
        "mode": "quick" if cfg.quick else "full", "config": cfg.describe(), "dataset": dataset_info,
        "stage_seconds": seconds, "total_seconds": sum(seconds.values()),
        "frontends": {k: v for k, v in fe_report.items()}, "bundles": bundles, "summary": summary,
        "presets": presets, "plots": [str(p.relative_to(out)) for p in plots],
        "versions": {"torch": torch.__version__, "threads": torch.get_num_threads()},
    }
    report_path = out / REPORT
    report_path.write_text(json.dumps(doc, indent=1, default=float))
    card = write_model_card(out, doc)
    return {"bundles": bundles, "report": report_path, "card": card, "summary": summary}


def _write_presets(out: Path, references: Path | None) -> dict[str, Any] | None:
    path = out / PRESETS_FILE
    if references is None:
        if path.exists():
            log.warning("%s removed: it belonged to other models and no scene references were measured here", path)
            path.unlink()
        return None

    doc = json.loads(references.read_text())
    refs = SceneReferences({Environment(e): SceneStats.from_features(v) for e, v in doc["references"].items()},
                           doc["spread"], seconds=doc["seconds"])
    write_references(out, refs, extra={"windows": doc["windows"]})
    return {"references": {e: {k: v for k, v in f.items() if not math.isnan(v)}
                           for e, f in doc["references"].items()},
            "spread": doc["spread"], "windows": doc["windows"], "seconds": doc["seconds"]}


def _summary(bundles: dict[str, dict[str, Any]], tol: int) -> list[dict[str, Any]]:
    rows = []
    for name, b in bundles.items():
        for env, m in b["test_per_environment"].items():
            rows.append({"bundle": name, "environment": env, "snn_ratio": b["snn_ratio"], "val_top1": b["val"]["top1"],
                         "test_top1": m["top1"], f"test_recall_tol{tol}": m["recall"], "windows": m["n"],
                         "mac": b.get("mac"), "ac": b.get("ac")})
    return rows


def format_summary_table(summary: list[dict[str, Any]]) -> str:
    """The summary rows as a fixed-width table (what ``hstnn-fit-route`` prints at the end)."""
    if not summary:
        return "(no bundles)"
    rec = next(k for k in summary[0] if k.startswith("test_recall"))
    lines = [f"{'bundle':<12} {'env':<8} {'ratio':>5} {'val top1':>8} {'test top1':>9} {rec:>17} {'windows':>7} "
             f"{'MAC/win':>10} {'AC/win':>10}"]
    for r in summary:
        lines.append(f"{r['bundle']:<12} {r['environment']:<8} {r['snn_ratio']:>5.2f} {r['val_top1']:>8.3f} "
                     f"{r['test_top1']:>9.3f} {r[rec]:>17.3f} {r['windows']:>7d} {r['mac'] or 0:>10.0f} "
                     f"{r['ac'] or 0:>10.0f}")
    return "\n".join(lines)


def _plots(out: Path, frontends_dir: Path, trained: dict[str, Path], bundles: dict[str, dict[str, Any]],
           seconds: dict[str, float]) -> list[Path]:
    plots = fresh_dir(out / PLOTS)
    paths = []
    if (frontends_dir / "pretrain_report.png").is_file():
        paths.append(Path(shutil.copy2(frontends_dir / "pretrain_report.png", plots / "frontends.png")))
    for target, d in trained.items():
        for name in ("accuracy_vs_ratio.png", "accuracy_vs_ops.png"):
            if (d / name).is_file():
                paths.append(Path(shutil.copy2(d / name, plots / f"{target}_{name}")))
    plt = pyplot()
    names = list(bundles)
    envs = sorted({e for b in bundles.values() for e in b["test_per_environment"]})
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / max(len(envs), 1)
    for k, env in enumerate(envs):
        xs = np.arange(len(names)) + (k - (len(envs) - 1) / 2) * width
        vals = [bundles[n]["test_per_environment"].get(env, {}).get("top1", np.nan) for n in names]
        ax.bar(xs, vals, width, label=env)
    ax.set_xticks(np.arange(len(names)), names, fontsize=8)
    ax.set(ylim=(0, 1.05), ylabel="test top-1 (held-out traversal)", title="Shipped bundles per environment")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    st = {k: v for k, v in seconds.items()}
    ax2.barh(list(st), [v / 60 for v in st.values()])
    ax2.set(xlabel="minutes", title="Stage wall time")
    ax2.tick_params(axis="y", labelsize=7)
    ax2.grid(axis="x", alpha=0.3)
    paths.append(save_figure(fig, plots / "fit_summary.png"))
    return paths


CARD_HEAD = """# Model card: {title}

Written by `hstnn-fit-route` on {date}; every number below was measured by that run (`{report}` has all of
them).
{command}
## What was trained
- Data: {n_trav} traversals ({per_env}); {frames} frames; labels `{label}` ({places} places); splits by
  traversal per environment (last = test, the one before = validation, the rest training). Dataset fingerprint
  `{fingerprint}`.
- Window: {event_frames} event frames of {bin_ms:g} ms bins over {rgb_frames} {rgb_kind} frames, front-end grid
  {hw}{polarity}.
- Front-ends ({fe_where}): SCNN on event frames{cnn}, pretrained with a linear place head on the training
  traversals of every environment, then frozen.
- HSTNN per target (three-stage hybrid learning: Adaptation, Hessian-aware Selection, Restoration), hidden
  {hidden}, SNN ratios {ratios}; the ratio with the best **validation** top-1 is shipped (test only reported).
  `default` is trained on all environments{eo}. Weights stored {dtype}, run in float32.
- Mode: {mode}.

## Stage wall times (this machine, {threads} threads)
| stage | seconds |
|---|---|
{stages}

## Front-ends (test top-1 of the linear heads; nearest neighbour on raw thumbnails for comparison)
| env | SCNN head | CNN head | NN events | NN RGB |
|---|---|---|---|---|
{fe_rows}

{fe_speed}

## Shipped bundles (offline windows of the held-out test traversals)
| bundle | env | SNN ratio | val top-1 | test top-1 | recall@1 (tol {tol}) | windows | HSTNN MAC/window | AC/window |
|---|---|---|---|---|---|---|---|---|
{rows}

## Route filter and unknown place (validation traversals)
The route filter (`route_filter: true`) uses the motion kernel estimated from the training traversals' place
sequences (P(step between decisions) over steps {steps}) and the likelihood temperature with the best filtered
top-1 on the validation traversals (ties: lowest NLL). The "unknown place" thresholds accept {tar:.0%} of the
validation decisions (a true-accept target: the fit cannot see places off the route; their false-accept rates are
measured in the next section only when recordings off the route were given). The engine decides unknown places
with the bundle's `unknown_detector` (cosine similarity of the window's representation to its nearest training
reference, averaged over the last decisions; far fewer false accepts than a softmax threshold,
docs/reports/route_filter.md); `unknown_threshold` (raw top-1) and `unknown_threshold_filtered` (filtered top-1) are
used when an unknown threshold is set explicitly, or by engines without the detector.

| bundle | kernel | T | val top-1 raw / filtered | thr. raw (TAR) | thr. filtered (TAR) | detector (TAR, refs) |
|---|---|---|---|---|---|---|
{route_rows}

## Unknown place at the shipped thresholds
Share of decisions each rule calls a known place: true-accept rate (TAR) on the own route's held-out **test**
traversals, false-accept rate (FAR) on recordings of places **not on the route**{off_desc}. Raw: softmax
top-1 >= `unknown_threshold`; filtered: route-filtered top-1 (filter from a reset belief over each traversal) >=
`unknown_threshold_filtered`; detector: `unknown_detector` score >= its threshold (the engine's default rule).

| bundle | test windows | TAR raw | TAR filtered | TAR detector | off route | windows | FAR raw | FAR filt. | FAR det. |
|---|---|---|---|---|---|---|---|---|---|
{unknown_rows}

{far_note}
## `auto` preset
{auto}

## Plots
{plots}

## Limits
Numbers are for the recorded route and its held-out traversals only; a new route, camera or season needs a new fit
(`hstnn-fit-route`). The events-only model sees no colour and is usually weaker where colour helps.
"""


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def _unknown_rows(doc: dict[str, Any]) -> tuple[str, str, str]:
    """The card's unknown-place table rows, the off-route recordings' description and the note under the table
    (how to measure the false-accept rate when it was not)."""
    off = doc["config"].get("off_route") or []
    rows = []
    for name, b in doc["bundles"].items():
        u = b.get("unknown_place") or {}
        t = u.get("test")
        head = f"| {name} | " + (f"{t['windows']} | {_fmt(t['raw'])} | {_fmt(t['filtered'])} | "
                                 f"{_fmt(t['detector'])} |" if t else "- | - | - | - |")
        far = u.get("off_route")
        if not far:
            rows.append(head + " not measured | - | - | - | - |")
            continue
        sets = list(far["per_environment"].items()) + ([("all", far["all"])] if len(far["per_environment"]) > 1
                                                        else [])
        for env, r in sets:
            rows.append(head + f" {env} | {r['windows']} | {_fmt(r['raw'])} | {_fmt(r['filtered'])} | "
                        f"{_fmt(r['detector'])} |")
    if off:
        desc = "\n(`--off-route`: " + ", ".join(f"{e}={Path(p).name}" for p, e in off) + ")"
        note = ("A FAR is the share of off-route decisions the rule would report as a place of this route; it holds "
                "for places like those recorded off the route.\n")
    else:
        desc = ""
        note = ("**False-accept rate: not known.** No recordings of places off the route were given, so how often "
                "these rules call a place that is not on the route a known one was not measured. To measure it, run "
                "the same command again with `--off-route REC [REC ...]` (or `ENV=REC ...`: recordings of another "
                "route or of off-map driving, any kind the fit reads); only the new stages run.\n")
    return "\n".join(rows) or "| (no bundles) | | | | | | | | | |", desc, note


def write_model_card(out: Path, doc: dict[str, Any]) -> Path:
    """``MODEL_CARD.md`` of a fit from its ``build_report.json`` document."""
    c = doc["config"]
    win = c["window"]
    per_env: dict[str, int] = {}
    for _, env in c["recordings"]:
        per_env[env] = per_env.get(env, 0) + 1
    fe = doc["frontends"]
    envs = sorted(fe["scnn_head"]["per_env"])
    fe_rows = "\n".join(
        f"| {e} | {_fmt(fe['scnn_head']['per_env'][e].get('test_top1'))} | "
        f"{_fmt((fe.get('cnn_head') or {}).get('per_env', {}).get(e, {}).get('test_top1'))} | "
        f"{_fmt(fe['nearest_neighbour'].get(e, {}).get('nn_events_top1'))} | "
        f"{_fmt(fe['nearest_neighbour'].get(e, {}).get('nn_rgb_top1'))} |" for e in envs)
    speed = []
    for k, name in (("scnn_head", "SCNN"), ("cnn_head", "CNN")):
        m = fe.get(k)
        if m:
            peak = m.get("gemm_peak_flops_per_s")
            share = f", {m['train_flops_per_s'] / peak:.0%} of the GEMM peak {peak / 1e9:.1f} GFLOP/s measured " \
                    "beside it" if peak else ""
            speed.append(f"{name} pretraining: {m['train_frames']} frames in {m['train_seconds']:.0f} s of training "
                         f"steps ({m['train_flops_per_s'] / 1e9:.1f} GFLOP/s dense-equivalent{share}; "
                         f"{m['threads']} threads), validation {m['val_seconds']:.0f} s.")
    tol = c["train"]["eval"]["recall_tolerance"]
    rec = f"test_recall_tol{tol}"
    rows = "\n".join(f"| {r['bundle']} | {r['environment']} | {r['snn_ratio']:g} | {r['val_top1']:.3f} | "
                     f"{r['test_top1']:.3f} | {r[rec]:.3f} | {r['windows']} | {_fmt(r['mac'], '.0f')} | "
                     f"{_fmt(r['ac'], '.0f')} |" for r in doc["summary"])
    if doc.get("presets"):
        p = doc["presets"]
        feats = sorted({k for v in p["references"].values() for k in v})
        auto = ("`auto` measures " + ", ".join(f"`{f}`" for f in feats) + f" over the first seconds (`SceneMeter`) "
                "and picks the environment nearest in log space, each feature scaled by its measured spread and a "
                "30 % measurement error, or keeps `default` when two environments are too close to call. References "
                f"(medians over {p['seconds']:g} s windows of the training traversals; windows: {p['windows']}):\n\n"
                "| env | " + " | ".join(feats) + " |\n|---|" + "---|" * len(feats) + "\n"
                + "\n".join(f"| {e} | " + " | ".join(_fmt(v.get(f), ".4g") for f in feats) + " |"
                            for e, v in p["references"].items())
                + "\n| log spread | " + " | ".join(_fmt(p["spread"].get(f), ".3f") for f in feats) + " |")
    else:
        auto = "No scene references were measured (no training bags of lighting environments env1..env3): `auto` " \
               "cannot choose among these models; pick a bundle by name."
    route_rows, steps = [], "-"
    for name, b in doc["bundles"].items():
        rc = b.get("route_filter")
        if not rc:
            continue
        rf, v = rc["route_filter"], rc["validation"]
        steps = ", ".join(f"{o:+d}" for o in rf["offsets"])
        route_rows.append(
            f"| {name} | {' '.join(f'{p:.3f}' for p in rf['probs'])} | {rf['temperature']:g} | {v['raw_top1']:.3f} / "
            f"{v['filtered_top1']:.3f} | {rc['unknown_threshold']:.3f} ({v['true_accept_raw']:.3f}) | "
            f"{rc['unknown_threshold_filtered']:.3f} ({v['true_accept_filtered']:.3f}) | "
            + (f"{d['threshold']:.4f} ({d['true_accept_validation']:.3f}, {d['references']}) |"
               if (d := rc.get("unknown_detector")) else "- |"))
    unknown_rows, off_desc, far_note = _unknown_rows(doc)
    envs_all = ", ".join(per_env)
    title = f"{len(doc['bundles'])} bundles for a route in {envs_all} ({doc['dataset']['num_places']} places)"
    stages = "\n".join(f"| {k} | {v:.0f} |" for k, v in doc["stage_seconds"].items())
    stages += f"\n| **total** | **{doc['total_seconds']:.0f}** |"
    return_path = Path(out) / CARD
    return_path.write_text(CARD_HEAD.format(
        title=title, date=doc["date"], report=REPORT,
        command=f"\nCommand: `{doc['command']}`\n" if doc["command"] else "",
        n_trav=len(c["recordings"]), per_env=", ".join(f"{e}: {n}" for e, n in per_env.items()),
        frames=doc["dataset"]["frames"], label=c["label"], places=doc["dataset"]["num_places"],
        fingerprint=doc["dataset"]["fingerprint"][:16], event_frames=win["event_frames"],
        bin_ms=win["bin_ns"] / 1e6, rgb_frames=win["rgb_frames"],
        rgb_kind="virtual (events-only)" if doc["dataset"]["events_only"] else "RGB" + ("-D" if win["depth"] else ""),
        hw=f"{win['input_hw'][0]} x {win['input_hw'][1]}",
        polarity="" if win.get("polarity", True) else ", polarity merged (count images)",
        fe_where="embedded in every bundle" if c["embed_frontends"] else f"`{FRONTENDS}/`, shared by every bundle",
        cnn="" if doc["dataset"]["events_only"] else " and CNN on RGB",
        hidden=c["train"]["network"]["hidden"], ratios=c["train"]["sweep"]["ratios"],
        eo="" if doc["dataset"]["events_only"] else "; `events_only` on all environments with the RGB block of every "
        "step zeroed (event-only cameras and bags)",
        dtype="float16" if c["store_fp16"] else "float32", mode=doc["mode"],
        threads=doc["versions"]["threads"], stages=stages, fe_rows=fe_rows, fe_speed="\n".join(speed), tol=tol,
        rows=rows, auto=auto, steps=steps, tar=c.get("unknown_true_accept", 0.95),
        route_rows="\n".join(route_rows) or "| (not calibrated) | | | | | | |",
        unknown_rows=unknown_rows, off_desc=off_desc, far_note=far_note,
        plots="\n".join(f"- `{p}`" for p in doc["plots"])))
    return return_path
