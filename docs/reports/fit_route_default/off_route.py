"""Unknown place on the default-preset fit: false-accept rates of every shipped bundle's three rules at their shipped
thresholds on recordings of other worlds, with the library that ``hstnn-fit-route --off-route`` runs
(``fitting.off_route``), beside the true-accept rates on the own test traversals. Run after ``run.sh``: the fit was
made before ``--off-route`` existed, and adding the option to it now would retrain (the pretraining recipe gained a
field since). Writes ``$OUT/off_route.json``."""
import json
import os
from pathlib import Path

from hstnn_ros.datasets.features import SPLIT_TEST, load_feature_set
from hstnn_ros.fitting.off_route import accept_rates, by_traversal, false_accept_rates, off_route_windows
from hstnn_ros.model import load_bundle
from hstnn_ros.perception.window import window_from_metadata

ROOT = Path(os.environ.get("OUT", "/work/fitdata/default3"))
FIT = ROOT / "out"
OTHER = {  # name: [(recording, environment)]
    "default preset, seed 7 (env1, 1 traversal)": [(Path("/work/data/other7/env1_t0"), "env1")],
    "demo preset, seed 7 (env1-3, 1 traversal each)": [(Path(f"/tmp/rf/other_route/{e}_t0"), e)
                                                       for e in ("env1", "env2", "env3")],
}
BUNDLES = {"env1": False, "env2": False, "env3": False, "default": False, "events_only": True}

fe_dir = FIT / "frontends"
window = window_from_metadata(load_bundle(fe_dir).metadata, source=str(fe_dir))
res: dict = {"own_test": {}, "other": {}}
for name, eo in BUNDLES.items():
    env = name if name.startswith("env") else None
    fs = load_feature_set(FIT / ".work" / "features" / f"{name if env else 'all'}.safetensors")
    if eo:
        fs = fs.without_rgb()
    res["own_test"][name] = accept_rates(FIT / name, by_traversal(fs, fs.split == SPLIT_TEST))
    print("own test", name, res["own_test"][name], flush=True)
for other, recs in OTHER.items():
    off = off_route_windows(recs, fe_dir, window, num_places=100, progress=False)
    res["other"][other] = {name: false_accept_rates(FIT / name, off, events_only=eo) for name, eo in BUNDLES.items()}
    print(other, json.dumps(res["other"][other])[:1500], flush=True)
(ROOT / "off_route.json").write_text(json.dumps(res, indent=1))
