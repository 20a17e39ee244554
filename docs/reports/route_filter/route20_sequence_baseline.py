"""Untrained sequence baseline on route20: query = held-out t5, reference = t4 of the same environment; per frame
the event counts of its 9 x 7 ms window (45 x 60, both polarities), zero-mean unit-norm; cosine similarity; single
frame vs sequence_match over 9 frames; predicted place = the reference frame's place label."""
import json
from pathlib import Path

import numpy as np

from hstnn_ros.model.route_filter import sequence_match


def desc(x):
    d = x.reshape(len(x), -1).astype(np.float64)
    d -= d.mean(1, keepdims=True)
    return d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)


out = {}
for e in ("env1", "env2", "env3"):
    r, q = np.load(f"/tmp/rf/seq/{e}_t4.npz"), np.load(f"/tmp/rf/seq/{e}_t5.npz")
    sim = desc(q["frames"]) @ desc(r["frames"]).T
    row = {"query_frames": len(q["labels"]), "reference_frames": len(r["labels"])}
    for name, s in (("single", sim), ("seq9", sequence_match(sim, 9))):
        pred = r["labels"][s.argmax(1)]
        row[f"{name}_top1"] = float(np.mean(pred == q["labels"]))
        row[f"{name}_within1"] = float(np.mean(np.abs(pred - q["labels"]) <= 1))
    out[e] = row
    print(e, row)
Path("/tmp/rf/seq/baseline_route20.json").write_text(json.dumps(out, indent=1))
