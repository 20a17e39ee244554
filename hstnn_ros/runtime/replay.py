"""Replay: a time-ordered stream of recorded inputs through the online engine, exactly as the node would see it.

``run_replay`` is the loop (engine feeding, ground-truth matching, timing, progress bar); the sources that turn a
rosbag2 recording into ``ReplayItem``s live in ``bag_source`` so that tests and the demo can feed the same loop.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from hstnn_ros.datasets.sidecar import has_sidecar, read_sidecar
from hstnn_ros.errors import HstnnError
from hstnn_ros.perception.enums import DropPolicy
from hstnn_ros.runtime.engine import EngineConfig, EngineCounters, PlaceRecognitionEngine, PlaceResult
from hstnn_ros.runtime.enums import ItemKind
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.report import DecisionRecord

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayItem:
    """One recorded input at its stamp (ns)."""

    kind: ItemKind
    stamp_ns: int
    payload: Any = None
    environment: str = ""


@dataclass
class GroundTruth:
    """Place labels (piecewise constant from each stamp on) and environment names over time."""

    stamps_ns: list[int] = field(default_factory=list)
    places: list[int] = field(default_factory=list)
    env_stamps_ns: list[int] = field(default_factory=list)
    envs: list[str] = field(default_factory=list)

    def add_label(self, stamp_ns: int, place: int) -> None:
        """Append a label (stamps must be non-decreasing, as in a time-ordered replay)."""
        self.stamps_ns.append(stamp_ns)
        self.places.append(place)

    def add_environment(self, stamp_ns: int, env: str) -> None:
        """Record the environment in force from ``stamp_ns`` on (only changes are stored)."""
        if not self.envs or self.envs[-1] != env:
            self.env_stamps_ns.append(stamp_ns)
            self.envs.append(env)

    def place_at(self, stamp_ns: int) -> int:
        """The label in force at ``stamp_ns`` (-1 before the first label)."""
        i = bisect_right(self.stamps_ns, stamp_ns) - 1
        return self.places[i] if i >= 0 else -1

    def environment_at(self, stamp_ns: int) -> str:
        """The environment in force at ``stamp_ns`` ("" when unknown)."""
        i = bisect_right(self.env_stamps_ns, stamp_ns) - 1
        return self.envs[i] if i >= 0 else ""


@dataclass
class ReplayOutcome:
    """Everything a replay produced: decisions, the engine's counters, wall time and the stream's span."""

    records: list[DecisionRecord]
    results: list[PlaceResult]
    counters: EngineCounters
    wall_s: float
    stream_s: float
    items: int
    malformed: int = 0  #: messages that could not be decoded (never reached the engine)

    @property
    def realtime_factor(self) -> float:
        """Recorded seconds processed per wall-clock second (>1: faster than real time)."""
        return self.stream_s / self.wall_s if self.wall_s > 0 else float("inf")


def replay_engine_config(**overrides: Any) -> EngineConfig:
    """Engine settings for replaying a recording: nothing may be lost to queue bounds (a bag is read as fast as the
    engine goes, so the reorder queue holds many frames and a full one refuses new input rather than dropping what
    it holds), and 100 ms of reordering covers the bags' receive-time jitter. ``overrides``: other fields."""
    return EngineConfig(**{"drop_policy": DropPolicy.DROP_NEWEST, "max_pending_frames": 256,
                           "reorder_delay_ns": 100_000_000, **overrides})


def run_replay(
    items: Iterable[ReplayItem],
    engine: PlaceRecognitionEngine,
    truth: GroundTruth | None = None,
    *,
    total: int | None = None,
    progress: bool = True,
    on_results: Callable[[list[PlaceResult]], None] | None = None,
) -> ReplayOutcome:
    """Feed ``items`` (time-ordered) to ``engine``, poll after every item, flush at the end.

    Labels and environments found in the stream are collected into ``truth`` as they pass, so each decision is
    matched with the label in force at its stamp. ``on_results`` sees every batch of new results (output bags)."""
    truth = truth or GroundTruth()
    results: list[PlaceResult] = []
    t_first: int | None = None
    t_last = 0
    n = malformed = 0
    start = time.perf_counter()
    it: Iterator[ReplayItem] = iter(items)
    bar = tqdm(it, total=total, unit="msg", desc="replay", disable=not progress, leave=False)
    for item in bar:
        n += 1
        if item.kind is not ItemKind.MALFORMED:
            t_first = item.stamp_ns if t_first is None else min(t_first, item.stamp_ns)
            t_last = max(t_last, item.stamp_ns)
        if item.environment:
            truth.add_environment(item.stamp_ns, item.environment)
        if item.kind is ItemKind.EVENTS:
            engine.push_events(item.payload)
        elif item.kind is ItemKind.IMAGE:
            rgb, depth = item.payload
            engine.push_frame(item.stamp_ns, rgb, depth)
        elif item.kind is ItemKind.LABEL:
            truth.add_label(item.stamp_ns, int(item.payload))
            continue
        else:
            malformed += 1
            LOG.debug("malformed message at %d: %s", item.stamp_ns, item.payload)
            continue
        new = engine.poll()
        if new:
            results += new
            if on_results:
                on_results(new)
    new = engine.flush()
    results += new
    if new and on_results:
        on_results(new)
    wall = time.perf_counter() - start
    records = [
        DecisionRecord.from_result(r, truth.place_at(r.stamp_ns), truth.environment_at(r.stamp_ns)) for r in results
    ]
    span = (t_last - t_first) / 1e9 if t_first is not None else 0.0
    return ReplayOutcome(records, results, engine.counters, wall, span, n, malformed)


def replay_ground_truth(bag_dir: Path, *, label_topic: str | None = None, environment: str | None = None
                        ) -> GroundTruth | None:
    """Ground truth for replaying ``bag_dir``: labels from the label topic when one is read (they arrive as items,
    ``run_replay`` collects them; the route sidecar then only gives the environment), else from the route sidecar;
    the environment from ``environment`` (the user knows it) or the sidecar, so the summary has per-environment rows
    whenever the environment is known. ``None`` when nothing is known."""
    route = ground_truth_from_route(bag_dir)
    if label_topic:
        truth = GroundTruth()
        if route is not None:
            truth.env_stamps_ns, truth.envs = list(route.env_stamps_ns), list(route.envs)
    else:
        truth = route or GroundTruth()
    if environment:
        truth.env_stamps_ns, truth.envs = [-(2**62)], [str(environment)]
    return truth if (truth.envs or truth.stamps_ns or label_topic) else None


def label_range_warning(records: list[DecisionRecord], num_places: int) -> str | None:
    """A warning when the ground-truth labels reach beyond the model's places (ids ``0 .. num_places - 1``): such
    decisions can never be right, so the model was fitted on another route or place count."""
    labels = [r.true_place for r in records if r.true_place >= 0]
    if not labels or max(labels) < num_places:
        return None
    beyond = sum(lab >= num_places for lab in labels)
    return (f"the model knows {num_places} places (0-{num_places - 1}) but the labels range {min(labels)}-"
            f"{max(labels)}: {beyond} of {len(labels)} labelled decisions can never be right; replay with the model "
            "fitted on this route (hstnn-fit-route --places N) or check the label topic")


def ground_truth_from_route(bag_dir: Path) -> GroundTruth | None:
    """Labels from the route sidecar of a synthetic route bag (``place_enter_ns``: when the robot enters each place,
    from odometry distance binned into equal segments) and its environment; ``None`` when there is no sidecar."""
    if not has_sidecar(bag_dir):
        return None
    try:
        route = read_sidecar(bag_dir)
    except HstnnError as exc:
        raise RuntimeEngineError(str(exc)) from exc
    enters = sorted((t, k) for k, t in enumerate(route.place_enter_ns) if t is not None)
    truth = GroundTruth()
    for t, k in enters:
        truth.add_label(t, k)
    if route.env:
        t0 = route.t_start_ns if route.t_start_ns is not None else (enters[0][0] if enters else 0)
        truth.add_environment(t0, route.env)
    return truth
