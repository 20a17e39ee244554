"""Place labels of a traversal's frames: how they are asked for (``LabelSpec``) and where they come from.

Traversals of one route share place ids, so every labelling gives each frame the id of the route segment it was
taken in: from the synthetic route's sidecar (``route``), odometry path length binned into equal places
(``distance``), equal time bins (``time``, NeuroGPR's rule), a label topic recorded in the bag (``topic:/name``) or
a CSV of ``stamp,place`` rows (``csv`` or ``csv:PATTERN``). Topic and CSV labels hold from their stamp until the
next one (as ``hstnn-replay`` reads a label topic).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hstnn_ros.datasets.errors import DatasetError
from hstnn_ros.datasets.sidecar import SIDE_CAR, has_sidecar, read_sidecar
from hstnn_ros.datasets.stamps import parse_stamp

log = logging.getLogger(__name__)

#: The CSV beside a recording when ``csv`` names no pattern: ``<folder>/labels.csv`` for a folder recording (a bag,
#: a frame folder), ``<file>.labels.csv`` beside a file recording (``run1.aedat4.labels.csv``).
CSV_IN_FOLDER = "labels.csv"
CSV_SUFFIX = ".labels.csv"


class Labelling(enum.StrEnum):
    """How place ids are assigned to frames."""

    ROUTE = "route"  #: ``route.json`` sidecar (synthetic routes): odometry distance binned into equal places
    DISTANCE = "distance"  #: cumulative odometry path length of the traversal, binned into equal places
    TIME = "time"  #: equal-time bins over the traversal, as NeuroGPR: ``int((t - t0) / (t1 - t0) * places)``
    TOPIC = "topic"  #: an integer label topic in the bag (``topic:/place_label``)
    CSV = "csv"  #: a ``stamp,place`` CSV per traversal (``csv`` or ``csv:PATTERN``)

    @property
    def gives_ids(self) -> bool:
        """True when the recording carries the place ids themselves (the place count may be inferred)."""
        return self in (Labelling.ROUTE, Labelling.TOPIC, Labelling.CSV)


@dataclass(frozen=True)
class LabelSpec:
    """A labelling with its argument: the topic of ``topic``, the file pattern of ``csv`` (``{name}``: the
    recording's name without extension, ``{path}``: its full path; relative patterns are taken beside the
    recording)."""

    mode: Labelling
    arg: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Labelling(self.mode))
        if self.mode is Labelling.TOPIC and not self.arg:
            raise DatasetError("label 'topic' needs the topic name: --label topic:/place_label")
        if self.mode not in (Labelling.TOPIC, Labelling.CSV) and self.arg:
            raise DatasetError(f"label {self.mode.value!r} takes no argument (got {self.arg!r})")

    @classmethod
    def of(cls, value: LabelSpec | Labelling | str) -> LabelSpec:
        """``"time"``, ``"topic:/place_label"``, ``"csv"``, ``"csv:labels/{name}.csv"``, a ``Labelling`` or a spec."""
        if isinstance(value, LabelSpec):
            return value
        if isinstance(value, Labelling):
            return cls(value)
        text = str(value).strip()
        mode, sep, arg = text.partition(":")
        try:
            m = Labelling(mode.strip().lower())
        except ValueError:
            raise DatasetError(f"unknown labelling {text!r}: use route, distance, time, topic:/TOPIC or "
                               "csv[:PATTERN]") from None
        return cls(m, arg.strip() or None if sep else None)

    def __str__(self) -> str:
        return f"{self.mode.value}:{self.arg}" if self.arg else self.mode.value

    def csv_path(self, recording: Path) -> Path:
        """The label CSV of ``recording`` (see the class docstring)."""
        recording = Path(recording)
        if not self.arg:
            return recording / CSV_IN_FOLDER if recording.is_dir() else recording.with_name(recording.name
                                                                                            + CSV_SUFFIX)
        stem = recording.name.split(".")[0] if recording.is_file() else recording.name
        p = Path(self.arg.format(name=stem, path=str(recording)))
        return p if p.is_absolute() else recording.parent / p


def read_label_csv(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """``(stamps_ns, places)`` of a ``stamp,place`` CSV. Stamps are decimal seconds or integer nanoseconds (exact,
    ``parse_stamp``); places are non-negative integers. An optional header row, blank lines and ``#`` comments are
    skipped; stamps must not go back. Anything else is refused naming ``file:line``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such label CSV; write one `stamp,place` row per label change (or pass "
                           "--label csv:PATTERN)")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable label CSV ({exc})") from exc
    stamps: list[int] = []
    places: list[int] = []
    first = True
    for i, line in enumerate(text.splitlines(), start=1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        where = f"{path}:{i}"
        parts = [p.strip() for p in body.split(",")]
        if len(parts) != 2:
            raise DatasetError(f"{where}: {line!r} is not `stamp,place` (two comma-separated values)")
        header, first = first and not parts[0][:1].isdigit(), False
        if header:
            continue  # a header row such as `stamp,place`
        t = parse_stamp(parts[0], where)
        if not parts[1].isdigit():
            raise DatasetError(f"{where}: place {parts[1]!r} is not a non-negative integer")
        if stamps and t < stamps[-1]:
            raise DatasetError(f"{where}: stamp goes back in time; sort the file by stamp")
        stamps.append(t)
        places.append(int(parts[1]))
    if not stamps:
        raise DatasetError(f"{path}: no `stamp,place` rows")
    return np.asarray(stamps, np.int64), np.asarray(places, np.int64)


def labels_in_force(label_stamps: np.ndarray, label_places: np.ndarray, stamps: np.ndarray, *,
                    source: Path | str) -> np.ndarray:
    """The label in force at each of ``stamps`` (each label holds from its stamp until the next). Frames before the
    first label take the first label (logged with their count): a label topic often starts a little after the
    cameras."""
    label_stamps, label_places = np.asarray(label_stamps, np.int64), np.asarray(label_places, np.int64)
    if len(label_stamps) == 0:
        raise DatasetError(f"{source}: no place labels recorded; check the label topic or CSV")
    if (label_places < 0).any():
        raise DatasetError(f"{source}: negative place label {int(label_places.min())}; places are 0, 1, ...")
    order = np.argsort(label_stamps, kind="stable")
    label_stamps, label_places = label_stamps[order], label_places[order]
    idx = np.searchsorted(label_stamps, np.asarray(stamps, np.int64), side="right") - 1
    early = int((idx < 0).sum())
    if early:
        log.warning("%s: %d of %d frames come before the first place label; they take the first label (%d)",
                    source, early, len(idx), int(label_places[0]))
    if early == len(idx):
        raise DatasetError(f"{source}: every frame comes before the first place label; the labels and the frames "
                           "do not overlap in time (check the clocks)")
    return label_places[np.maximum(idx, 0)]


def _distance_labels(odom: np.ndarray, stamps: np.ndarray, places: int, source: Path) -> np.ndarray:
    if len(odom) < 2:
        raise DatasetError(f"{source}: labelling 'distance' needs odometry/positions, found {len(odom)}; "
                           "use --label time")
    odom = odom[np.argsort(odom[:, 0], kind="stable")]  # np.interp needs increasing times
    if stamps.max() < odom[0, 0] or stamps.min() > odom[-1, 0]:
        raise DatasetError(f"{source}: the odometry/positions ({odom[0, 0]:.0f}..{odom[-1, 0]:.0f} ns) and the "
                           f"frames ({stamps.min()}..{stamps.max()} ns) do not overlap in time; check the clocks or "
                           "use --label time")
    d = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(odom[:, 1]), np.diff(odom[:, 2])))])
    at = np.interp(stamps.astype(np.float64), odom[:, 0], d)
    return np.clip((at / max(d[-1], 1e-9) * places).astype(np.int64), 0, places - 1)


def _time_labels(stamps: np.ndarray, places: int) -> np.ndarray:
    t0, t1 = stamps[0], stamps[-1]
    frac = (stamps - t0) / max(t1 - t0, 1)
    return np.clip((frac * places).astype(np.int64), 0, places - 1)


def _given_ids(labels: np.ndarray, places: int | None, source: Path, what: str) -> tuple[np.ndarray, int]:
    n = int(labels.max()) + 1
    if places is not None:
        if places < 1:
            raise DatasetError(f"--places {places}: use a positive place count")
        if n > places:
            raise DatasetError(f"{source}: {what} has place {n - 1}, beyond --places {places} (ids 0..{places - 1}); "
                               "raise --places or drop it to count the places from the labels")
        n = places
    return labels, n


def place_labels(source: Path, mode: LabelSpec | Labelling | str, stamps: np.ndarray, odom: np.ndarray,
                 places: int | None, *, topic_labels: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, int]:
    """Place ids of the frames stamped ``stamps`` of one traversal and the place count. ``odom`` is ``[n, >=3]``
    (t_ns, x, y, ...) for distance labels; ``route`` labels read the synthetic route's sidecar beside ``source``;
    ``topic_labels`` are the ``(stamps_ns, places)`` the source recorded on the label topic. For labellings that
    carry ids (route, topic, csv) the count is ``places`` or, without it, the largest id + 1."""
    spec = LabelSpec.of(mode)
    source = Path(source)
    stamps = np.asarray(stamps, np.int64)
    if spec.mode is Labelling.ROUTE:
        if not has_sidecar(source):
            raise DatasetError(f"{source}: labelling 'route' needs {SIDE_CAR} beside the bag; use --label distance, "
                               "time, topic:/TOPIC or csv for recorded data")
        route = read_sidecar(source)
        if places is not None and places != route.num_places:
            raise DatasetError(f"{source}: route has {route.num_places} places but --places {places} was asked; "
                               "drop --places or use --label distance")
        return route.labels(stamps), route.num_places
    if spec.mode is Labelling.TOPIC:
        if topic_labels is None:
            raise DatasetError(f"{source}: labelling {spec} needs a bag with that topic (this recording has no "
                               "topics); use --label csv or time")
        lab = labels_in_force(*topic_labels, stamps, source=f"{source} ({spec.arg})")
        return _given_ids(lab, places, source, f"label topic {spec.arg}")
    if spec.mode is Labelling.CSV:
        csv = spec.csv_path(source)
        lab = labels_in_force(*read_label_csv(csv), stamps, source=csv)
        return _given_ids(lab, places, csv, "the label CSV")
    if places is None or places < 1:
        raise DatasetError(f"labelling {spec.mode.value!r} needs a positive place count (--places)")
    if spec.mode is Labelling.DISTANCE:
        return _distance_labels(odom, stamps, places, source), places
    return _time_labels(stamps, places), places
