"""Unknown-place detection by novelty of the window's representation (docs/reports/route_filter.md, "Unknown place:
detectors").

The top-1 softmax of a place classifier is confident on places it never saw (a route fit's softmax threshold
accepted 62-71 % of another route's decisions at 95 % true accept). What does separate them is how far the window's
representation lies from the training windows: the readout's input (``RunRecord.readout_input``: decoded last-layer
spikes + last RNN state) is compared by cosine similarity with reference vectors (training windows, every k-th
along each traversal, at most ``MAX_REFERENCES``), the nearest one counts, and the similarity is averaged over the
last ``SMOOTHING`` decisions (being off the map lasts; single decisions are noisy). The threshold accepts a target
share of the validation decisions (a fit has no other route); measured on route20: false accept 0.00 / 0.06 / 0.00
on another route (env1-3) at true accept 0.95-0.97 on a held-out traversal.

Stored in a bundle as component ``unknown_reference`` (kind ``knn_reference``, tensor ``reference`` ``[M, n]``
float16, unit rows) and metadata ``unknown_detector`` (``KnnNovelty.to_metadata``); bundles without them keep the
softmax threshold.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hstnn_ros.model.bundle import Component
from hstnn_ros.model.errors import ModelError
from hstnn_ros.model.route_filter import threshold_for_true_accept

#: The detector's name in bundle metadata (``unknown_detector["name"]``).
DETECTOR = "knn_readout_cosine"
#: The bundle component holding the reference vectors, and its kind.
COMPONENT = "unknown_reference"
COMPONENT_KIND = "knn_reference"
#: Reference vectors kept from the training windows (~60 KB per 256 at 118 features, float16).
MAX_REFERENCES = 512
#: Decisions the similarity is averaged over (9 decisions = 0.3 s at 30 Hz).
SMOOTHING = 9


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), np.float32(1e-12))


def reference_vectors(train: Sequence[np.ndarray], max_refs: int = MAX_REFERENCES) -> np.ndarray:
    """Reference vectors ``[M, n]`` from the training traversals' readout inputs (each ``[N_i, n]``, time order):
    every k-th window along them (k chosen so M <= ``max_refs``), unit rows, rounded to float16 as stored."""
    if not train or not sum(len(t) for t in train):
        raise ModelError("reference_vectors: needs the readout inputs of at least one training window")
    allv = np.concatenate([np.asarray(t, np.float32) for t in train])
    stride = max(1, math.ceil(len(allv) / max_refs))
    return _unit(allv[::stride]).astype(np.float16).astype(np.float32)


@dataclass(frozen=True)
class KnnNovelty:
    """The detector: ``reference`` ``[M, n]`` unit rows, ``threshold`` on the smoothed similarity (known when the
    score is >= it), ``window`` decisions of smoothing."""

    reference: np.ndarray
    threshold: float
    window: int = SMOOTHING
    _ref_t: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ref = np.asarray(self.reference)
        if ref.ndim != 2 or not len(ref) or not np.isfinite(ref).all():
            raise ModelError(f"KnnNovelty: reference must be a finite [M >= 1, n] array, got shape {ref.shape}")
        if self.window < 1 or not math.isfinite(self.threshold):
            raise ModelError(f"KnnNovelty: window >= 1 and a finite threshold needed, got {self.window}, "
                             f"{self.threshold}")
        object.__setattr__(self, "reference", _unit(ref))
        # torch, not numpy: torch's thread count is the engine's (EngineConfig.threads, 1 by default), whereas
        # numpy's BLAS may hand a matrix-vector product to a second thread, which on a busy CPU puts ~16 ms into
        # the latency tail (bench_unknown_place)
        object.__setattr__(self, "_ref_t", torch.from_numpy(self.reference))

    @property
    def size(self) -> int:
        """Length of the vectors it compares (the readout's input size)."""
        return int(self.reference.shape[1])

    def similarity(self, x: np.ndarray) -> np.ndarray:
        """Cosine similarity of each readout input ``x`` (``[n]`` or ``[B, n]``) to its nearest reference."""
        q = torch.from_numpy(np.ascontiguousarray(np.atleast_2d(_unit(x))))
        return (q @ self._ref_t.T).amax(dim=1).numpy()

    def smoothed(self, similarities: Sequence[np.ndarray]) -> np.ndarray:
        """Scores of whole traversals (one similarity array each, time order), as ``NoveltyTracker`` gives them
        decision by decision: the mean of the last ``window`` similarities (fewer at a traversal's start)."""
        out = []
        for s in similarities:
            c = np.concatenate([[0.0], np.cumsum(np.asarray(s, np.float64))])
            i = np.arange(1, len(s) + 1)
            out.append((c[i] - c[np.maximum(i - self.window, 0)]) / np.minimum(i, self.window))
        return np.concatenate(out) if out else np.zeros(0)

    def to_metadata(self, **facts: Any) -> dict[str, Any]:
        """Bundle metadata ``unknown_detector`` (``facts``: calibration facts kept for the model card)."""
        return {"name": DETECTOR, "component": COMPONENT, "threshold": float(self.threshold),
                "window": int(self.window), "references": len(self.reference), **facts}

    def to_component(self) -> Component:
        """The reference vectors as a bundle component (float16)."""
        return Component(COMPONENT_KIND, {"metric": "cosine", "k": 1},
                         {"reference": torch.from_numpy(self.reference.astype(np.float16))})

    @classmethod
    def from_bundle(cls, metadata: Mapping[str, Any], components: Mapping[str, Component], source: str = "bundle"
                    ) -> KnnNovelty | None:
        """The detector a bundle names (``None`` when its metadata names none); refuses a broken one naming
        ``source``."""
        meta = metadata.get("unknown_detector")
        if meta is None:
            return None
        if not isinstance(meta, Mapping) or meta.get("name") != DETECTOR:
            raise ModelError(f"{source}: unknown_detector {meta!r} is not one this version runs ({DETECTOR!r}); "
                             "re-ship the bundle with this version's hstnn-fit-route")
        comp = components.get(str(meta.get("component", COMPONENT)))
        if comp is None or comp.kind != COMPONENT_KIND or "reference" not in comp.state:
            raise ModelError(f"{source}: unknown_detector names component {meta.get('component')!r}, which the "
                             f"bundle lacks or holds no {COMPONENT_KIND!r} reference; re-ship the bundle")
        try:
            return cls(comp.state["reference"].float().numpy(), float(meta["threshold"]),
                       int(meta.get("window", SMOOTHING)))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{source}: unknown_detector {meta!r} is malformed ({exc})") from exc


class NoveltyTracker:
    """``KnnNovelty`` decision by decision: ``update(readout_input) -> score`` (the mean similarity of the last
    ``window`` decisions; known when >= ``detector.threshold``), ``reset`` after a gap or a jump in time."""

    def __init__(self, detector: KnnNovelty) -> None:
        self.detector = detector
        self._recent: deque[float] = deque(maxlen=detector.window)

    def reset(self) -> None:
        """Forget the recent decisions."""
        self._recent.clear()

    def update(self, readout_input: np.ndarray) -> float:
        """The score of this decision."""
        self._recent.append(float(self.detector.similarity(readout_input)[0]))
        return sum(self._recent) / len(self._recent)


def calibrate_novelty(train: Sequence[np.ndarray], val: Sequence[np.ndarray], true_accept: float = 0.95,
                      max_refs: int = MAX_REFERENCES, window: int = SMOOTHING) -> tuple[KnnNovelty, dict[str, Any]]:
    """The detector of a fit: references from the training traversals' readout inputs, threshold accepting
    ``true_accept`` of the validation traversals' smoothed scores (each ``[N_i, n]``, time order). Returns it and
    the facts (``true_accept`` reached on validation, scores' median)."""
    probe = KnnNovelty(reference_vectors(train, max_refs), 0.0, window)
    if not val or not sum(len(v) for v in val):
        raise ModelError("calibrate_novelty: needs the readout inputs of validation windows")
    scores = probe.smoothed([probe.similarity(v) for v in val if len(v)])
    thr = threshold_for_true_accept(scores, true_accept)
    return KnnNovelty(probe.reference, thr["threshold"], window), {
        "true_accept_validation": thr["true_accept"], "target_true_accept": float(true_accept),
        "validation_median_score": float(np.median(scores))}
