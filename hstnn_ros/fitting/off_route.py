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
from hstnn_ros.fitting.route_calibration import filtered_probs, traversal_indices, window_outputs
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
            own = window_for([path], window)
            if own != window:
                raise FitError(f"{where}: its frames fix another window than the route's recordings "
                               f"({own.to_dict()} vs {window.to_dict()}); record it like the route")
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
    scnn, cnn = frozen_frontends(load_bundle(frontends))
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


def accepted(bundle_dir: Path, traversals: Sequence[np.ndarray]) -> dict[str, list[np.ndarray] | None]:
    """Per decision (one per window; ``traversals``: each one traversal's windows ``[N_i, T, F]`` in time order),
    whether each unknown-place rule of the bundle at ``bundle_dir`` accepts it as a known place at its shipped
    threshold: ``raw`` (softmax top-1 >= ``unknown_threshold``), ``filtered`` (route-filtered top-1, the filter run
    from a reset belief over each traversal, >= ``unknown_threshold_filtered``) and ``detector`` (smoothed
    ``KnnNovelty`` score >= its threshold; ``None`` when the bundle has no detector). One boolean array per
    traversal and rule."""
    bundle = load_bundle(bundle_dir)
    meta = bundle.metadata
    missing = [k for k in ("route_filter", "unknown_threshold", "unknown_threshold_filtered") if k not in meta]
    if missing:
        raise FitError(f"{bundle_dir}: no {', '.join(missing)} in its metadata; ship it with hstnn-fit-route")
    seqs = [np.asarray(x) for x in traversals]
    if not seqs or not all(len(x) for x in seqs):
        raise FitError(f"{bundle_dir}: no windows to measure the unknown-place rules on")
    model = bundle.hstnn().float().eval()
    detector = KnnNovelty.from_bundle(meta, bundle.components, str(bundle_dir))
    outs = [window_outputs(model, x) for x in seqs]
    probs = [p for p, _ in outs]
    filt = filtered_probs(probs, model.config.num_classes, MotionModel.from_dict(meta["route_filter"]))
    return {
        "raw": [p.max(axis=1) >= float(meta["unknown_threshold"]) for p in probs],
        "filtered": [f.max(axis=1) >= float(meta["unknown_threshold_filtered"]) for f in filt],
        "detector": None if detector is None else [
            detector.smoothed([detector.similarity(f)]) >= detector.threshold for _, f in outs]}


def _rates(acc: dict[str, list[np.ndarray] | None], which: Sequence[int]) -> dict[str, Any]:
    """``windows``, ``traversals`` and each rule's accepted share over the traversals ``which`` of ``acc``."""
    raw = acc["raw"]
    assert raw is not None  # raw and filtered are always measured
    out: dict[str, Any] = {"windows": int(sum(len(raw[i]) for i in which)), "traversals": len(which)}
    for rule in RULES:
        flags = acc[rule]
        out[rule] = None if flags is None else float(np.mean(np.concatenate([flags[i] for i in which])))
    return out


def accept_rates(bundle_dir: Path, traversals: Sequence[np.ndarray]) -> dict[str, Any]:
    """Share of the decisions of ``traversals`` that each unknown-place rule of the bundle accepts as a known place
    (see ``accepted``): on the own route true-accept rates, off the route false-accept rates; also ``windows`` and
    ``traversals``."""
    seqs = [x for x in traversals if len(x)]
    return _rates(accepted(bundle_dir, seqs), range(len(seqs)))


def by_traversal(fs: FeatureSet, mask: np.ndarray | None = None) -> list[np.ndarray]:
    """The windows of ``fs`` (those in ``mask``) as one array per traversal (``group``), in stored (time) order."""
    return [fs.features[i] for i in traversal_indices(fs, mask)]


def false_accept_rates(bundle_dir: Path, off_route: FeatureSet, *, events_only: bool) -> dict[str, Any]:
    """``accept_rates`` of the bundle on the off-route windows: over all of them (``all``) and per environment
    (``per_environment``), from one pass of the bundle over every traversal. ``events_only``: the bundle is an
    events-only model (its RGB input zeroed)."""
    fs = off_route.without_rgb() if events_only else off_route
    idx = [i for i in traversal_indices(fs) if len(i)]
    acc = accepted(bundle_dir, [fs.features[i] for i in idx])
    env_of = [int(fs.env[i[0]]) for i in idx]
    out: dict[str, Any] = {"all": _rates(acc, range(len(idx))), "per_environment": {}}
    for k, name in enumerate(fs.env_names):
        which = [t for t, e in enumerate(env_of) if e == k]
        if which:
            out["per_environment"][name] = _rates(acc, which)
    log.info("%s off the route: false accepts raw %.3f, filtered %.3f, detector %s (%d windows)", bundle_dir.name,
             out["all"]["raw"], out["all"]["filtered"],
             "-" if out["all"]["detector"] is None else f"{out['all']['detector']:.3f}", out["all"]["windows"])
    return out
