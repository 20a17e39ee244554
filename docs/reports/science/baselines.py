"""Untrained baselines of docs/reports/science.md on the default-preset fit, per environment and cross-condition
(reference: one environment, queries: another's test traversal t3):
- nearest neighbour on raw thumbnails (grey RGB and event counts; reference = the training traversals t0, t1),
- single frame and 9-frame sequence match on event counts (reference = the validation traversal t2), as in
  ../fit_route_default/sequence_baseline.py.
usage: FIT=/work/fitdata/default3 python baselines.py OUT.json"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fit_route_default"))
from sequence_baseline import match

from hstnn_ros.datasets.frontend_training import nearest_neighbour_matrix
from hstnn_ros.datasets.windows import load_dataset

FIT = Path(os.environ.get("FIT", "/work/fitdata/default3"))
ENVS = ("env1", "env2", "env3")

out = {"nearest_neighbour": nearest_neighbour_matrix(load_dataset(FIT / "out/.work/dataset", verify=False)),
       "sequence": {r: {q: match(f"{q}_t3", f"{r}_t2") for q in ENVS} for r in ENVS}}
Path(sys.argv[1]).write_text(json.dumps(out, indent=1))
print(json.dumps(out, indent=1))
