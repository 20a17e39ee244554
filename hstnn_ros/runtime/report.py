"""Per-decision records of a replay, their CSV/JSON files, accuracy summaries and the predicted-vs-true plot.

Shared by ``hstnn-replay``, ``hstnn-demo`` and the benchmarks so that every tool reports the same numbers.
Recall@1 within a tolerance counts a decision as correct when the predicted place is at most ``tolerance`` places from
the true one (places are consecutive segments of a route, so a neighbour is a near miss, not a confusion).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from hstnn_ros import defaults
from hstnn_ros.plotting import pyplot, save_figure
from hstnn_ros.runtime.engine import PlaceResult

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecisionRecord:
    """One decision as written to ``decisions.csv``: prediction, ground truth (-1 if unknown) and its cost."""

    stamp_ns: int
    place_id: int
    score: float
    true_place: int
    environment: str
    total_macs: float
    total_acs: float
    event_frontend_macs: float
    event_frontend_acs: float
    rgb_frontend_macs: float
    hstnn_macs: float
    hstnn_acs: float
    event_frontend_spike_rate: float
    latency_s: float
    top_k: str
    known: bool = True
    raw_place_id: int = -1
    raw_score: float = float("nan")
    unknown_score: float = float("nan")

    @classmethod
    def from_result(cls, r: PlaceResult, true_place: int = -1, environment: str = "") -> DecisionRecord:
        """Flatten an engine result (top-k as ``id:prob;id:prob``)."""
        o = r.ops
        return cls(
            stamp_ns=r.stamp_ns, place_id=r.place_id, score=r.score, true_place=true_place, environment=environment,
            total_macs=o.total_macs, total_acs=o.total_acs, event_frontend_macs=o.event_frontend_macs,
            event_frontend_acs=o.event_frontend_acs, rgb_frontend_macs=o.rgb_frontend_macs, hstnn_macs=o.hstnn_macs,
            hstnn_acs=o.hstnn_acs, event_frontend_spike_rate=o.event_frontend_spike_rate, latency_s=r.latency_s,
            top_k=";".join(f"{i}:{p:.4f}" for i, p in r.top_k), known=r.known, raw_place_id=r.raw_place_id,
            raw_score=r.raw_top_k[0][1] if r.raw_top_k else r.score, unknown_score=r.unknown_score,
        )


def write_records(records: list[DecisionRecord], out_dir: Path, summary: dict | None = None) -> tuple[Path, Path]:
    """Write ``decisions.csv`` and ``decisions.json`` (records + summary) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / "decisions.csv", out_dir / "decisions.json"
    names = [f.name for f in fields(DecisionRecord)]
    with csv_path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=names)
        w.writeheader()
        for r in records:
            w.writerow(asdict(r))
    json_path.write_text(json.dumps({"summary": summary or {}, "decisions": [asdict(r) for r in records]},
                                    indent=1, default=float))
    return csv_path, json_path


def summarise(records: list[DecisionRecord], tolerance: int = defaults.RECALL_TOLERANCE) -> dict[str, dict[str, float]]:
    """Per environment (and ``all``): decisions, accuracy, recall@1 within ``tolerance`` places (only where ground
    truth is known), mean MACs/ACs per decision and latency p50/p99 (ms)."""
    groups: dict[str, list[DecisionRecord]] = {"all": list(records)}
    for r in records:
        if r.environment:
            groups.setdefault(r.environment, []).append(r)
    out: dict[str, dict[str, float]] = {}
    for name, rs in groups.items():
        if not rs:
            continue
        pred = np.array([r.place_id for r in rs])
        true = np.array([r.true_place for r in rs])
        known = true >= 0
        lat = np.array([r.latency_s for r in rs]) * 1e3
        s: dict[str, float] = {
            "decisions": len(rs),
            "labelled": int(known.sum()),
            "macs_per_decision": float(np.mean([r.total_macs for r in rs])),
            "acs_per_decision": float(np.mean([r.total_acs for r in rs])),
            "latency_p50_ms": float(np.percentile(lat, 50)),
            "latency_p99_ms": float(np.percentile(lat, 99)),
        }
        accepted = np.array([r.known for r in rs])
        if not accepted.all():
            s["unknown_rate"] = float(np.mean(~accepted))
        if known.any():
            s["accuracy"] = float(np.mean(pred[known] == true[known]))
            s[f"recall_at_1_tol{tolerance}"] = float(np.mean(np.abs(pred[known] - true[known]) <= tolerance))
            raw = np.array([r.raw_place_id for r in rs])
            if (raw != pred).any():  # the route filter changed decisions: report the raw classifier beside it
                s["raw_accuracy"] = float(np.mean(raw[known] == true[known]))
                s[f"raw_recall_at_1_tol{tolerance}"] = float(np.mean(np.abs(raw[known] - true[known]) <= tolerance))
        out[name] = s
    return out


def format_summary(summary: dict[str, dict[str, float]]) -> str:
    """A fixed-width table of ``summarise`` for terminals."""
    keys = sorted({k for s in summary.values() for k in s})
    lines = ["env      " + " ".join(f"{k:>22}" for k in keys)]
    for env, s in summary.items():
        lines.append(f"{env:<8} " + " ".join(f"{s.get(k, float('nan')):>22.4g}" for k in keys))
    return "\n".join(lines)


def plot_predictions(records: list[DecisionRecord], path: Path) -> Path:
    """Save a PNG of predicted (and, when known, true) place id over time."""
    plt = pyplot()

    t = np.array([r.stamp_ns for r in records], dtype=np.float64)
    t = (t - t[0]) / 1e9 if len(t) else t
    fig, ax = plt.subplots(figsize=(9, 3.5))
    true = np.array([r.true_place for r in records])
    if (true >= 0).any():
        ax.plot(t[true >= 0], true[true >= 0], "-", color="0.6", lw=2, label="true place")
    ax.plot(t, [r.place_id for r in records], ".", ms=3, label="predicted place")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("place id")
    ax.legend(loc="upper left")
    return save_figure(fig, path, dpi=110)
