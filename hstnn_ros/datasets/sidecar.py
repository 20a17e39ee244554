"""The route sidecar (``route.json`` beside a bag) and route set index (``index.json``): their one reader.

The synthetic route tool writes them (``datasets.synth.route``); dataset building, replay and route fitting read
them here: the environment of a traversal, its place count and when each place is entered (ground truth).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hstnn_ros.datasets.errors import DatasetError

ROUTE_FORMAT = "hstnn_ros.synth_route"
ROUTE_FORMAT_VERSION = 1
SIDE_CAR = "route.json"
INDEX = "index.json"


@dataclass(frozen=True)
class RouteSidecar:
    """What a traversal's sidecar says: ``env``, ``num_places``, ``place_enter_ns[k]`` (``None``: place never
    entered), ``t_start_ns`` and the whole JSON (``meta``)."""

    path: Path
    env: str
    num_places: int
    place_enter_ns: tuple[int | None, ...]
    t_start_ns: int | None
    meta: dict[str, Any]

    def labels(self, stamps_ns: np.ndarray) -> np.ndarray:
        """Place id in force at each stamp (the last place entered; place 0 before the first)."""
        never = np.iinfo(np.int64).max
        enters = np.array([never if t is None else t for t in self.place_enter_ns], np.int64)
        lab = np.searchsorted(enters, np.asarray(stamps_ns, np.int64), side="right") - 1
        return np.clip(lab, 0, len(enters) - 1).astype(np.int64)


def has_sidecar(bag_dir: Path | str) -> bool:
    """True when ``bag_dir`` has a route sidecar."""
    return (Path(bag_dir) / SIDE_CAR).is_file()


def load_route_meta(bag_dir: Path | str) -> dict[str, Any]:
    """The raw ``route.json`` of a bag; ``DatasetError`` naming the file if missing, unreadable or of another
    format."""
    p = Path(bag_dir) / SIDE_CAR
    try:
        meta = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DatasetError(f"{p}: cannot read the route sidecar ({e}); regenerate it with hstnn-synth-route") from e
    if not isinstance(meta, dict) or meta.get("format") != ROUTE_FORMAT:
        raise DatasetError(f"{p}: format {meta.get('format') if isinstance(meta, dict) else None!r} is not "
                           f"{ROUTE_FORMAT!r}; regenerate it with hstnn-synth-route")
    return meta


def read_sidecar(bag_dir: Path | str) -> RouteSidecar:
    """The sidecar of a bag as a ``RouteSidecar`` (``DatasetError`` naming the file when malformed)."""
    meta = load_route_meta(bag_dir)
    p = Path(bag_dir) / SIDE_CAR
    try:
        enters = tuple(None if t is None else int(t) for t in meta["place_enter_ns"])
        n = int(meta.get("num_places", len(enters)))
        t0 = meta.get("t_start_ns")
        return RouteSidecar(p, str(meta.get("env", "")), n, enters, None if t0 is None else int(t0), meta)
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"{p}: malformed route sidecar ({e}); regenerate it with hstnn-synth-route") from e


def read_index(route_dir: Path | str) -> dict[str, Any]:
    """The ``index.json`` of a route set; ``DatasetError`` naming the file when missing or unreadable."""
    p = Path(route_dir) / INDEX
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DatasetError(f"{p}: cannot read the route index ({e}); generate the route with hstnn-synth-route") from e


def route_bags(route_dir: Path | str) -> list[tuple[Path, str]]:
    """``(bag, env)`` pairs of a route set (its ``index.json``)."""
    data = read_index(route_dir)
    return [(Path(route_dir) / b["bag"], str(b["env"])) for b in data["bags"]]
