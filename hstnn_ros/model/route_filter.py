"""Route-aware decisions: a forward filter (an HMM over the places of a route) on the HSTNN's place posteriors, and a
calibrated "unknown place" threshold.

Places along a route are ordered and a robot moves through them in order, so the place at decision ``t`` is most
likely the one at ``t - 1`` or a few ahead. The filter keeps a belief ``b_t`` over places:

    b_t(j) ∝ p_t(j)^(1/T) * sum_i b_{t-1}(i) A(i, j),    A(i, j) = (1 - eps) K(j - i) + eps / N

with ``p_t`` the classifier's softmax, ``T`` a likelihood temperature (the posteriors of a discriminative classifier
are overconfident as likelihoods), ``K`` the motion kernel (probability of moving ``d`` places between decisions,
estimated from training traversals) and ``eps`` the probability of a jump anywhere (relocalisation after a kidnap or
a wrong start). One update is a banded convolution plus a uniform term: O(N * kernel width), no N x N matrix.

An "unknown place" is declared when the decision's confidence is below a threshold chosen on held-out data: for a
target false-accept rate on traversals of another route (``calibrate_unknown_threshold``) when such data exist, else
for a target true-accept rate on the route's own held-out traversals (``threshold_for_true_accept``, what a route fit
ships; its false-accept rate must then be measured on another route).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hstnn_ros.model.errors import ModelError


@dataclass(frozen=True)
class MotionModel:
    """How far the robot moves along the route between two decisions.

    Attributes:
        offsets: place steps ``d`` (e.g. -1..4) with ``probs[k]`` = P(move ``offsets[k]`` places).
        probs: the kernel, summing to 1.
        jump: ``eps``, the probability of a jump to any place.
        temperature: likelihood temperature ``T`` (>= 1 flattens overconfident posteriors).
    """

    offsets: tuple[int, ...] = (-1, 0, 1, 2)
    probs: tuple[float, ...] = (0.05, 0.6, 0.3, 0.05)
    jump: float = 1e-3
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if len(self.offsets) != len(self.probs) or not self.offsets:
            raise ModelError(f"MotionModel: {len(self.offsets)} offsets but {len(self.probs)} probabilities")
        if min(self.probs) < 0 or not np.isclose(sum(self.probs), 1.0, atol=1e-6):
            raise ModelError(f"MotionModel: kernel probabilities must be >= 0 and sum to 1, got {self.probs}")
        if not 0 <= self.jump < 1 or self.temperature <= 0:
            raise ModelError(f"MotionModel: jump in [0, 1) and temperature > 0 needed, got {self.jump}, "
                             f"{self.temperature}")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (bundle metadata ``route_filter``)."""
        return {"offsets": list(self.offsets), "probs": list(self.probs), "jump": self.jump,
                "temperature": self.temperature}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MotionModel:
        """Inverse of ``to_dict`` (``d`` as read from JSON)."""
        return cls(tuple(int(x) for x in d["offsets"]), tuple(float(x) for x in d["probs"]),
                   float(d.get("jump", 1e-3)), float(d.get("temperature", 1.0)))


def estimate_motion(label_sequences: Sequence[np.ndarray], *, max_back: int = 1, max_ahead: int = 4,
                    smoothing: float = 1.0, jump: float = 1e-3, temperature: float = 1.0) -> MotionModel:
    """The motion kernel of consecutive decisions estimated from training traversals (their place label sequences,
    one label per decision): the histogram of label steps in ``[-max_back, max_ahead]``, Laplace-smoothed."""
    offsets = np.arange(-max_back, max_ahead + 1)
    counts = np.full(len(offsets), float(smoothing))
    for seq in label_sequences:
        d = np.diff(np.asarray(seq, np.int64))
        d = d[(d >= -max_back) & (d <= max_ahead)]
        counts += np.bincount(d + max_back, minlength=len(offsets))
    probs = counts / counts.sum()
    return MotionModel(tuple(int(o) for o in offsets), tuple(float(p) for p in probs), jump, temperature)


class RouteFilter:
    """The forward filter over ``num_places`` places (see the module docstring). ``update`` takes one decision's
    softmax ``[N]`` and returns the filtered posterior ``[N]``; ``reset`` forgets the belief (a gap, a time jump,
    another model)."""

    def __init__(self, num_places: int, motion: MotionModel | None = None) -> None:
        if num_places < 1:
            raise ModelError(f"RouteFilter: num_places must be >= 1, got {num_places}")
        self.n = int(num_places)
        self.motion = motion or MotionModel()
        self._belief: np.ndarray | None = None

    def reset(self) -> None:
        """Forget the belief: the next update starts from a uniform prior."""
        self._belief = None

    def predict(self, belief: np.ndarray) -> np.ndarray:
        """The prior of the next decision: the belief moved by the motion kernel, plus the uniform jump term."""
        m = self.motion
        prior = np.zeros(self.n)
        for d, p in zip(m.offsets, m.probs, strict=True):
            if d >= 0:
                prior[d:] += p * belief[: self.n - d] if d else p * belief
                if d:  # moving past the last place keeps the robot there (a route has an end)
                    prior[-1] += p * belief[self.n - d:].sum()
            else:
                prior[:d] += p * belief[-d:]
                prior[0] += p * belief[:-d].sum()
        return (1.0 - m.jump) * prior + m.jump / self.n

    def update(self, probs: np.ndarray) -> np.ndarray:
        """Filtered posterior after one decision's softmax ``probs``."""
        p = np.asarray(probs, np.float64).reshape(-1)
        if len(p) != self.n:
            raise ModelError(f"RouteFilter: {len(p)} posteriors for a route of {self.n} places")
        like = np.clip(p, 1e-12, None) ** (1.0 / self.motion.temperature)
        prior = np.full(self.n, 1.0 / self.n) if self._belief is None else self.predict(self._belief)
        post = like * prior
        total = post.sum()
        self._belief = post / total if total > 0 and np.isfinite(total) else np.full(self.n, 1.0 / self.n)
        return self._belief.copy()

    def run(self, probs: np.ndarray) -> np.ndarray:
        """Filtered posteriors ``[T, N]`` of a sequence ``[T, N]`` (from a reset belief)."""
        self.reset()
        return np.stack([self.update(p) for p in np.asarray(probs)])


def calibrate_unknown_threshold(own_scores: np.ndarray, other_scores: np.ndarray,
                                max_false_accept: float = 0.05) -> dict[str, float]:
    """The confidence threshold whose false-accept rate on ``other_scores`` (decisions on a route the model does not
    know) is at most ``max_false_accept``, and the rates it gives: ``threshold``, ``false_accept`` (other-route
    decisions accepted), ``true_accept`` (own-route decisions accepted)."""
    own = np.asarray(own_scores, np.float64)
    other = np.sort(np.asarray(other_scores, np.float64))
    if not len(own) or not len(other):
        raise ModelError("calibrate_unknown_threshold: needs scores on the own route and on another route")
    # the smallest threshold that accepts at most max_false_accept of the other route
    k = int(np.floor(max_false_accept * len(other)))
    thr = float(np.nextafter(other[len(other) - k - 1], np.inf)) if k < len(other) else float(other[0])
    return {"threshold": thr, "false_accept": float(np.mean(other >= thr)), "true_accept": float(np.mean(own >= thr)),
            "max_false_accept": float(max_false_accept)}


def threshold_for_true_accept(own_scores: np.ndarray, true_accept: float = 0.95) -> dict[str, float]:
    """The largest confidence threshold that still accepts at least ``true_accept`` of ``own_scores`` (decisions on
    held-out traversals of the model's own route): ``threshold`` and the ``true_accept`` it gives. Needs no data of
    another route, so it bounds the cost on the own route only; the false-accept rate is whatever it is."""
    own = np.sort(np.asarray(own_scores, np.float64))
    if not len(own):
        raise ModelError("threshold_for_true_accept: needs scores on the own route")
    if not 0 < true_accept <= 1:
        raise ModelError(f"threshold_for_true_accept: true_accept must lie in (0, 1], got {true_accept}")
    k = int(np.floor((1.0 - true_accept) * len(own) + 1e-9))  # decisions that may be rejected
    thr = float(own[min(k, len(own) - 1)])
    return {"threshold": thr, "true_accept": float(np.mean(own >= thr)), "target_true_accept": float(true_accept)}


def sequence_match(similarity: np.ndarray, length: int = 9) -> np.ndarray:
    """Untrained sequence-matching baseline (in the spirit of SeqSLAM): ``similarity[q, r]`` between query frame
    ``q`` and reference frame ``r``; the score of reference ``r`` for query ``q`` is the sum of similarities along
    the diagonal over the last ``length`` frames (``q - k`` vs ``r - k``). Returns ``[Q, R]`` scores (frames before
    a full sequence use the frames they have)."""
    s = np.asarray(similarity, np.float64)
    out = s.copy()
    for k in range(1, length):
        out[k:, k:] += s[:-k, :-k]
    return out
