"""Untrained sequence baseline on the default-preset route: query = a traversal the fit did not train on, reference =
the traversal before it in the same environment; per decision frame the event counts of its 9 x 7 ms window (both
polarities, 45 x 60 grid), zero-mean unit-norm, cosine similarity; single frame vs ``sequence_match`` over 9 frames;
the predicted place is the matched reference frame's place. Writes ``$OUT/baseline.json``."""
import json
import os
import time
from pathlib import Path

import numpy as np

from hstnn_ros.datasets.recordings import open_recording, window_for
from hstnn_ros.datasets.windows import WindowSpec, load_traversal
from hstnn_ros.model.route_filter import sequence_match

D = Path("/work/data")
OUT = Path(os.environ.get("OUT", "/work/fitdata/default3")) / "seq"
PAIRS = {  # query: reference
    "env1_t4": "env1_t3", "env1_t5": "env1_t4", "env1_t3": "env1_t2", "env2_t3": "env2_t2", "env3_t3": "env3_t2"}


def bag(name: str) -> Path:
    for d in ("default_route", "dr_env2", "dr_env3"):
        if (D / d / name).is_dir():
            return D / d / name
    raise FileNotFoundError(name)


def frames(name: str) -> dict:
    f = OUT / f"{name}.npz"
    if not f.is_file():
        p = bag(name)
        w = window_for([p], WindowSpec(event_frames=9, rgb_frames=3, bin_ns=7_000_000, input_hw=(45, 60)))
        tr = load_traversal(open_recording(p, window=w, label="route", progress=False), env=name[:4], window=w)
        np.savez(f, frames=tr.events.astype(np.float32).sum(axis=1), labels=tr.labels)
    return dict(np.load(f))


def desc(x: np.ndarray) -> np.ndarray:
    d = x.reshape(len(x), -1).astype(np.float64)
    d -= d.mean(1, keepdims=True)
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)


def match(query: str, reference: str) -> dict:
    """Single-frame and 9-frame sequence top-1 (and within 1 place) of ``query`` against ``reference``."""
    qf, rf = frames(query), frames(reference)
    sim = desc(qf["frames"]) @ desc(rf["frames"]).T
    row = {"reference": reference, "query_frames": len(qf["labels"]), "reference_frames": len(rf["labels"])}
    for name, s in (("single", sim), ("seq9", sequence_match(sim, 9))):
        pred = rf["labels"][s.argmax(1)]
        row[f"{name}_top1"] = float(np.mean(pred == qf["labels"]))
        row[f"{name}_within1"] = float(np.mean(np.abs(pred - qf["labels"]) <= 1))
    return row


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    res = {}
    for q, r in PAIRS.items():
        res[q] = match(q, r)
        print(q, res[q], f"{time.time() - t0:.0f} s", flush=True)
    (OUT / "baseline.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
