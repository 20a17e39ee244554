"""The strict cross-condition protocol of docs/reports/science.md: front-ends trained on env1's training traversals
only (the default-preset fit's recipe: --quick --frontend-epochs 8), then run frozen over every environment's frames;
the HSTNN sweep (run.sh's recipe) then trains on env1's features and hstnn-cross-condition tests on env2 / env3.
usage: FIT=/work/fitdata/default3 python env1_frontends.py OUT   (writes OUT/frontends, OUT/features/*.safetensors)"""
import dataclasses
import os
import sys
from pathlib import Path

from hstnn_ros.datasets.frontend_training import PretrainConfig, cache_feature_sets, pretrain_frontends
from hstnn_ros.datasets.windows import load_dataset

FIT = Path(os.environ.get("FIT", "/work/fitdata/default3"))
out = Path(sys.argv[1])
ds = load_dataset(FIT / "out/.work/dataset", verify=False)
env1 = dataclasses.replace(ds, traversals=[t for t in ds.traversals if t.env == "env1"])
_, _, bundle, report = pretrain_frontends(env1, out / "frontends", recipe=PretrainConfig(epochs=8))
print({k: report[k].get("val_top1") for k in ("scnn_head", "cnn_head")})
cache_feature_sets(ds, bundle, out / "features")
