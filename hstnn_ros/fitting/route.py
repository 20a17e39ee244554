"""``fit_route``: recordings of a route in, a deployable bundle set out (what ``hstnn-fit-route`` runs).

Stages (each resumable, ``stages.StageLog``): ``dataset`` (window dataset of every traversal), ``frontends``
(pretrain the SCNN and CNN on the training traversals), ``features`` (the frozen front-ends over every frame; one
feature set per environment, all together, and events-only), ``train:<target>`` (the three-stage sweep for each
environment, ``default`` and ``events_only``; units resume on their own), ``references`` (scene statistics of each
environment for ``auto``), with off-route recordings ``off_route_windows`` (their windows through the frozen
front-ends) and, inside shipping, ``off_route`` (each shipped bundle's unknown-place false-accept rates,
``fitting.off_route``), and ``ship`` (the bundles, ``presets.json``, the model card, the report and the plots; it is
cheap and always runs).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hstnn_ros.datasets.enums import RecordingKind
from hstnn_ros.datasets.features import load_feature_set, save_feature_set
from hstnn_ros.datasets.frontend_training import cache_feature_sets, plot_frontend_report, pretrain_frontends
from hstnn_ros.datasets.recordings import build_recordings_dataset, recording_kind, window_for
from hstnn_ros.datasets.windows import WindowDataset, assign_splits, load_dataset
from hstnn_ros.enums import Environment
from hstnn_ros.fitting.config import DEFAULT_TARGET, EVENTS_ONLY_TARGET, FitRouteConfig
from hstnn_ros.fitting.errors import FitError
from hstnn_ros.fitting.off_route import check_off_route, false_accept_rates, off_route_windows
from hstnn_ros.fitting.ship import ship
from hstnn_ros.fitting.stages import StageLog, fresh_dir, replace_dir, stage_key
from hstnn_ros.learning import run_sweep
from hstnn_ros.model import bundle_digest, load_bundle
from hstnn_ros.runtime.bag_source import BagTopics, open_bag
from hstnn_ros.runtime.presets import SceneStats, measure_scene, references_from_windows

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What a fit produced: the output directory, the shipped bundles (name -> metrics), the stage times (seconds,
    measured by the run that did each stage), which stages ran now, the report and the model card."""

    out: Path
    bundles: dict[str, dict[str, Any]]
    stage_seconds: dict[str, float]
    ran: list[str]
    skipped: list[str]
    report: Path
    card: Path
    summary: list[dict[str, Any]] = field(default_factory=list)


def _recording_stamp(path: Path) -> list[Any]:
    """Size and modification time of a recording (a file, or every file in a folder): a changed recording makes the
    dataset stage run again."""
    p = Path(path)
    files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file())
    return [str(p.resolve()), sum(f.stat().st_size for f in files), max((f.stat().st_mtime_ns for f in files),
                                                                          default=0)]


def _targets(cfg: FitRouteConfig, events_only_data: bool) -> list[str]:
    envs = cfg.environments
    targets = list(envs) if len(envs) > 1 else []
    targets.append(DEFAULT_TARGET)
    if cfg.events_only_model and not events_only_data:
        targets.append(EVENTS_ONLY_TARGET)
    return targets


def fit_route(cfg: FitRouteConfig, *, progress: bool = True,
              hooks: dict[str, Callable[[], None]] | None = None) -> FitResult:
    """Fit a route (see the module docstring); rerun with the same ``cfg`` to resume after an interruption.

    ``hooks``: callables run at the start of a stage (by stage name), for tests of resumption."""
    work = cfg.work_dir
    work.mkdir(parents=True, exist_ok=True)
    stages = StageLog(work)
    hooks = hooks or {}

    def run(name: str, key: str, fn: Callable[[], Any]) -> Any:
        def go() -> Any:
            if name in hooks:
                hooks[name]()
            return fn()
        return stages.run(name, key, go)

    # -- dataset --------------------------------------------------------------------------------------------------
    assign_splits(_traversal_names(cfg))  # refuse too few traversals before anything runs
    if cfg.off_route:  # and a missing or unreadable off-route recording
        check_off_route(cfg.off_route, window_for([p for p, _ in cfg.recordings], cfg.window), cfg.topics)
    ds_dir = work / "dataset"
    ds_key = stage_key(recordings=[[*_recording_stamp(p), e] for p, e in cfg.recordings], label=str(cfg.label),
                       places=cfg.places, window=cfg.window.to_dict(), topics=dataclasses.asdict(cfg.topics))

    def build() -> dict[str, Any]:
        tmp = fresh_dir(work / ".tmp-dataset")
        ds = build_recordings_dataset(cfg.recordings, tmp, window=cfg.window, label=cfg.label, places=cfg.places,
                                      topics=cfg.topics, progress=progress)
        replace_dir(tmp, ds_dir)
        return {"fingerprint": ds.manifest["fingerprint"], "num_places": ds.num_places,
                "frames": sum(len(t) for t in ds.traversals), "events_only": ds.events_only}

    ds_info = run("dataset", ds_key, build)
    ds: WindowDataset | None = None

    def dataset() -> WindowDataset:
        nonlocal ds
        if ds is None:
            ds = load_dataset(ds_dir, progress=progress)
        return ds

    # -- front-ends -----------------------------------------------------------------------------------------------
    fe_dir = work / "frontends"
    fe_key = stage_key(dataset=ds_info["fingerprint"], pretrain=dataclasses.asdict(cfg.pretrain),
                       full_size=cfg.full_size)

    def frontends() -> dict[str, Any]:
        tmp = work / ".tmp-frontends"
        fresh_dir(tmp)
        _, _, _, report = pretrain_frontends(dataset(), tmp, full_size=cfg.full_size, recipe=cfg.pretrain,
                                             progress=progress)
        plot_frontend_report(report, tmp / "pretrain_report.png")
        replace_dir(tmp, fe_dir)
        return {"digest": bundle_digest(fe_dir),
                "throughput": {k: {m: report[k][m] for m in ("train_seconds", "val_seconds", "train_frames",
                                                                "train_flops", "train_flops_per_s", "threads",
                                                                "gemm_peak_flops_per_s", "share_of_gemm_peak")}
                               for k in ("scnn_head", "cnn_head") if report.get(k)}}

    fe_info = run("frontends", fe_key, frontends)

    # -- features -------------------------------------------------------------------------------------------------
    feat_dir = work / "features"
    feat_key = stage_key(dataset=ds_info["fingerprint"], frontends=fe_info["digest"])

    def features() -> dict[str, Any]:
        tmp = fresh_dir(work / ".tmp-features")
        fs, _ = cache_feature_sets(dataset(), fe_dir, tmp, progress=progress)
        if cfg.events_only_model and not ds_info["events_only"]:
            save_feature_set(tmp / f"{EVENTS_ONLY_TARGET}.safetensors", fs.without_rgb())
        replace_dir(tmp, feat_dir)
        return {"windows": int(fs.features.shape[0]), "shape": list(fs.features.shape), "envs": list(fs.env_names)}

    run("features", feat_key, features)

    # -- training -------------------------------------------------------------------------------------------------
    trained = _train_targets(cfg, _targets(cfg, bool(ds_info["events_only"])), feat_dir, feat_key, run)

    # -- scene references for auto ------------------------------------------------------------------------------
    ref_file = work / "references.json"
    bag_recs = [(p, e) for p, e in cfg.recordings if recording_kind(p) is RecordingKind.BAG
                and e in {x.value for x in cfg.preset_environments}]
    ref_key = stage_key(recordings=[[*_recording_stamp(p), e] for p, e in bag_recs], seconds=cfg.scene_seconds,
                        topics=dataclasses.asdict(cfg.topics))

    def references() -> dict[str, Any]:
        return _measure_references(cfg, bag_recs, ref_file)

    refs_info = run("references", ref_key, references)

    # -- off-route windows (the off_route stage itself runs inside shipping, on the shipped bundles) --------------
    measure_off_route = _off_route_stages(cfg, fe_dir, fe_info["digest"], int(ds_info["num_places"]),
                                          run=run, progress=progress)

    # -- ship -----------------------------------------------------------------------------------------------------
    result = ship(cfg, dataset_info=ds_info, frontends_dir=fe_dir, features_dir=feat_dir, trained=trained,
                  references=ref_file if refs_info.get("written") else None, stages=stages, progress=progress,
                  off_route=measure_off_route)
    return FitResult(out=cfg.out, bundles=result["bundles"], stage_seconds=stages.seconds, ran=stages.ran,
                     skipped=stages.skipped, report=result["report"], card=result["card"],
                     summary=result["summary"])


def _train_targets(cfg: FitRouteConfig, targets: list[str], feat_dir: Path, feat_key: str,
                   run: Callable[[str, str, Callable[[], Any]], Any]) -> dict[str, Path]:
    """Stage ``train:<target>`` of every target: the three-stage sweep on the target's feature set, in
    ``train/<target>`` of the work folder (returned by target), through the stage runner ``run``."""
    trained: dict[str, Path] = {}
    for target in targets:
        fs_file = feat_dir / f"{'all' if target == DEFAULT_TARGET else target}.safetensors"
        out = cfg.work_dir / "train" / target
        key = stage_key(features=feat_key, target=target, train=cfg.train.to_dict())

        def train(fs_file: Path = fs_file, out: Path = out, target: str = target, key: str = key) -> dict[str, Any]:
            marker = out / "fit_key.txt"
            if out.exists() and (not marker.is_file() or marker.read_text() != key):
                fresh_dir(out)  # units of other data or another recipe: start over
            out.mkdir(parents=True, exist_ok=True)
            marker.write_text(key)
            report = run_sweep(cfg.train, load_feature_set(fs_file), out, name=f"{target} ({fs_file.name})",
                               plots=True)
            if report["failures"]:
                raise FitError(f"training {target}: units refused: {report['failures']}; see {out}/report.json")
            return {"units": len(report["units"])}

        run(f"train:{target}", key, train)
        trained[target] = out
    return trained


def _off_route_stages(cfg: FitRouteConfig, fe_dir: Path, fe_digest: str, num_places: int, *,
                      run: Callable[[str, str, Callable[[], Any]], Any], progress: bool
                      ) -> Callable[[dict[str, tuple[Path, bool]]], dict[str, Any]] | None:
    """Stage ``off_route_windows`` (the off-route recordings' windows through the frozen front-ends) and the
    measurement that shipping calls as stage ``off_route``; ``None`` without off-route recordings."""
    if not cfg.off_route:
        return None
    work = cfg.work_dir
    off_file = work / "off_route.safetensors"
    window = window_for([p for p, _ in cfg.recordings], cfg.window)  # what the dataset stage cut with
    off_key = stage_key(recordings=[[*_recording_stamp(p), e] for p, e in cfg.off_route], window=window.to_dict(),
                        frontends=fe_digest, places=num_places, topics=dataclasses.asdict(cfg.topics))

    def off_windows() -> dict[str, Any]:
        fs = off_route_windows(cfg.off_route, fe_dir, window, topics=cfg.topics, num_places=num_places,
                               progress=progress)
        save_feature_set(work / ".tmp-off_route.safetensors", fs).replace(off_file)
        return {"windows": len(fs.features), "recordings": len(cfg.off_route)}

    run("off_route_windows", off_key, off_windows)

    def measure(shipped: dict[str, tuple[Path, bool]]) -> dict[str, Any]:
        """The false-accept rates of every shipped bundle (by name: directory, events-only), keyed by the windows
        and each bundle's weights and unknown-place rules."""
        rules = {}
        for name, (d, eo) in shipped.items():
            meta = load_bundle(d).metadata
            rules[name] = [bundle_digest(d), eo, *(meta.get(k) for k in (
                "route_filter", "unknown_threshold", "unknown_threshold_filtered", "unknown_detector"))]

        def rates() -> dict[str, Any]:
            fs = load_feature_set(off_file)
            return {name: false_accept_rates(d, fs, events_only=eo) for name, (d, eo) in shipped.items()}

        return run("off_route", stage_key(windows=off_key, bundles=rules), rates)

    return measure


def _traversal_names(cfg: FitRouteConfig) -> dict[str, list[str]]:
    """The recordings' file names by environment (``assign_splits`` splits them into train/val/test)."""
    names: dict[str, list[str]] = {}
    for p, env in cfg.recordings:
        names.setdefault(env, []).append(Path(p).name)
    return names


def _measure_references(cfg: FitRouteConfig, bag_recs: list[tuple[Path, str]], ref_file: Path) -> dict[str, Any]:
    """Scene statistics (``SceneMeter``) of every ``scene_seconds`` window of each environment's training bags,
    reduced to references (``references_from_windows``) in ``ref_file``; nothing when an environment of the route
    has no bag (``auto`` then cannot tell it)."""
    envs = cfg.preset_environments
    splits = assign_splits(_traversal_names(cfg))
    windows: dict[Environment, list[SceneStats]] = {e: [] for e in envs}
    t = cfg.topics
    for p, env in bag_recs:
        if splits[Path(p).name] != "train":
            continue
        src = open_bag(p, BagTopics(events=t.events, image=t.rgb, depth=t.depth))
        windows[Environment(env)] += measure_scene(src.items(), cfg.scene_seconds)
    missing = [e.value for e, w in windows.items() if not w]
    if not envs or missing:
        log.warning("no scene references for %s (no training bags long enough): presets.json is not written and "
                    "auto keeps its built-in references", missing or "any lighting environment")
        if ref_file.exists():
            os.remove(ref_file)
        return {"written": False, "missing": missing}
    refs = references_from_windows(windows, seconds=cfg.scene_seconds)
    doc = {"references": {e.value: s.features() for e, s in refs.items()}, "spread": refs.spread,
           "windows": {e.value: len(w) for e, w in windows.items()}, "seconds": cfg.scene_seconds}
    ref_file.write_text(json.dumps(doc, indent=1))
    return {"written": True, "windows": doc["windows"]}
