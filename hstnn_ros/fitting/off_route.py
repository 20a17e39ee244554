"""The "unknown place" rules of shipped bundles measured at their shipped thresholds (issue 17).

A fit calibrates its unknown-place rules (``route_calibration``: raw softmax threshold, route-filtered threshold,
kNN-novelty detector) for a true-accept target on the validation traversals, because it has no traversal of another
route. Given recordings of places that are *not* on the route (another route, off-map driving), this module measures
what the calibration cannot: the false-accept rate (share of off-route decisions a rule calls a known place), and,
beside it, the true-accept rate on the route's own held-out test traversals.

Off-route recordings carry no place that means anything for the route: they are windowed with the fit's window and
``time`` labels of one place (which need no ground truth), run through the fit's frozen front-ends
(``off_route_windows``), then through each bundle's HSTNN, route filter (from a reset belief per traversal, as the
engine after a reset) and detector (``accept_rates``), decision by decision as the engine decides: a decision is
*known* when its score is >= the rule's threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hstnn_ros.datasets.features import SPLIT_TEST, FeatureSet
from hstnn_ros.datasets.frontend_training import frozen_frontends, traversal_windows
from hstnn_ros.datasets.labels import Labelling
from hstnn_ros.datasets.recordings import open_recording, recording_kind, window_for
from hstnn_ros.datasets.topics import Topics
from hstnn_ros.datasets.windows import load_traversal
from hstnn_ros.errors import HstnnError
from hstnn_ros.fitting.errors import FitError
from hstnn_ros.fitting.route_calibration import filtered_probs, window_outputs
from hstnn_ros.model import load_bundle
from hstnn_ros.model.route_filter import MotionModel
from hstnn_ros.model.unknown_place import KnnNovelty
from hstnn_ros.perception.window import WindowSpec

log = logging.getLogger(__name__)

#: The three unknown-place rules a bundle ships, by the name the report uses.
RULES = ("raw", "filtered", "detector")


def check_off_route(recordings: Sequence[tuple[Path, str]], window: WindowSpec, topics: Topics) -> None:
    """Refuse, before a fit starts, an off-route recording that is missing, unreadable (its first frame cannot be
    cut), or fixes another window than the fit's (frame folders): the message names the path."""
    for path, _ in recordings:
        where = f"--off-route {path}"
        try:
            recording_kind(path)
            if window_for([path], window) != window:
                raise FitError(f"{where}: its frames fix another window than the route's recordings "
                               f"({window_for([path], window).to_dict()} vs {window.to_dict()}); record it like the "
                               "route")
            frames = iter(open_recording(path, window=window, topics=topics, label=Labelling.TIME, progress=False))
            try:
                first = next(frames, None)
            finally:
                close = getattr(frames, "close", None)
                if close is not None:
                    close()
        except FitError:
            raise
        except HstnnError as exc:
            raise FitError(f"{where}: {exc}") from exc
        except Exception as exc:  # a reader's own error (corrupt bag, truncated file): refused, naming the path
            raise FitError(f"{where}: unreadable ({type(exc).__name__}: {exc}); give a recording hstnn-replay can "
                           "read") from exc
        if first is None:
            raise FitError(f"{where}: no frame could be cut from it (no events or images on the topics read)")


def off_route_windows(recordings: Sequence[tuple[Path, str]], frontends: Path, window: WindowSpec, *,
                      topics: Topics = Topics(), num_places: int = 1, progress: bool = True) -> FeatureSet:
    """The windows ``[N, T, F]`` of every off-route recording through the frozen front-ends of bundle ``frontends``
    (one decision per window, as in the fit's feature sets): ``group`` = recording index, ``env`` = its environment,
    split test. Labels are 0 and mean nothing (``meta["labels"]`` says so); ``num_places`` only makes the set
    loadable beside the fit's. One traversal is in memory at a time."""
    scnn, cnn = frozen_frontends(frontends)
    env_names = tuple(dict.fromkeys(env for _, env in recordings))
    feats, group, env = [], [], []
    for g, (path, name) in enumerate(tqdm(recordings, desc="off-route windows", disable=not progress)):
        src = open_recording(path, window=window, topics=topics, label=Labelling.TIME, progress=False)
        t = load_traversal(src, env=name, window=window, labelling=Labelling.TIME, places=1)
        if cnn is not None and t.rgb is None:
            raise FitError(f"--off-route {path}: no colour frames, and the route's models read colour; give a "
                           "recording with the route's colour camera")
        x = traversal_windows(t, window, scnn, cnn)
        feats.append(x)
        group.append(np.full(len(x), g, np.int32))
        env.append(np.full(len(x), env_names.index(name), np.int8))
    n = sum(len(x) for x in feats)
    return FeatureSet(features=np.concatenate(feats), labels=np.zeros(n, np.int64),
                      split=np.full(n, SPLIT_TEST, np.int8), group=np.concatenate(group), env=np.concatenate(env),
                      num_classes=num_places, input_spiking=int(scnn.feature_size), env_names=env_names,
                      meta={"off_route": True, "labels": "none: off-route windows carry no place of the route",
                            "recordings": [[str(p), e] for p, e in recordings], "window": window.to_dict()})


def accept_rates(bundle_dir: Path, traversals: Sequence[np.ndarray]) -> dict[str, Any]:
    """Share of the decisions (one per window; ``traversals``: each one traversal's windows ``[N_i, T, F]`` in time
    order) that each unknown-place rule of the bundle at ``bundle_dir`` accepts as a known place, at its shipped
    threshold: ``raw`` (softmax top-1 >= ``unknown_threshold``), ``filtered`` (route-filtered top-1, the filter run
    from a reset belief over each traversal, >= ``unknown_threshold_filtered``) and ``detector`` (smoothed
    ``KnnNovelty`` score >= its threshold; ``None`` when the bundle has no detector). On the own route these are
    true-accept rates, off the route false-accept rates. Also ``windows`` and ``traversals``."""
    bundle = load_bundle(bundle_dir)
    meta = bundle.metadata
    missing = [k for k in ("route_filter", "unknown_threshold", "unknown_threshold_filtered") if k not in meta]
    if missing:
        raise FitError(f"{bundle_dir}: no {', '.join(missing)} in its metadata; ship it with hstnn-fit-route")
    model = bundle.hstnn().float().eval()
    detector = KnnNovelty.from_bundle(meta, bundle.components, str(bundle_dir))
    seqs = [np.asarray(x) for x in traversals if len(x)]
    if not seqs:
        raise FitError(f"{bundle_dir}: no windows to measure the unknown-place rules on")
    outs = [window_outputs(model, x) for x in seqs]
    probs = [p for p, _ in outs]
    raw = np.concatenate(probs).max(axis=1)
    motion = MotionModel.from_dict(meta["route_filter"])
    filt = np.concatenate(filtered_probs(probs, model.config.num_classes, motion))
    rates: dict[str, Any] = {
        "windows": len(raw), "traversals": len(seqs),
        "raw": float(np.mean(raw >= float(meta["unknown_threshold"]))),
        "filtered": float(np.mean(filt.max(axis=1) >= float(meta["unknown_threshold_filtered"]))),
        "detector": None}
    if detector is not None:
        score = detector.smoothed([detector.similarity(f) for _, f in outs])
        rates["detector"] = float(np.mean(score >= detector.threshold))
    return rates


def by_traversal(fs: FeatureSet, mask: np.ndarray | None = None) -> list[np.ndarray]:
    """The windows of ``fs`` (those in ``mask``) as one array per traversal (``group``), in stored (time) order."""
    idx = np.flatnonzero(mask) if mask is not None else np.arange(len(fs.group))
    return [fs.features[idx[fs.group[idx] == g]] for g in np.unique(fs.group[idx])]


def false_accept_rates(bundle_dir: Path, off_route: FeatureSet, *, events_only: bool) -> dict[str, Any]:
    """``accept_rates`` of the bundle on the off-route windows: over all of them (``all``) and per environment
    (``per_environment``). ``events_only``: the bundle is an events-only model (its RGB input zeroed)."""
    fs = off_route.without_rgb() if events_only else off_route
    out: dict[str, Any] = {"all": accept_rates(bundle_dir, by_traversal(fs)), "per_environment": {}}
    if len(fs.env_names) > 1:
        for k, name in enumerate(fs.env_names):
            out["per_environment"][name] = accept_rates(bundle_dir, by_traversal(fs, fs.env == k))
    else:
        out["per_environment"][fs.env_names[0]] = out["all"]
    log.info("%s off the route: false accepts raw %.3f, filtered %.3f, detector %s (%d windows)", bundle_dir.name,
             out["all"]["raw"], out["all"]["filtered"],
             "-" if out["all"]["detector"] is None else f"{out['all']['detector']:.3f}", out["all"]["windows"])
    return out
