"""The route20 env bundles of /tmp/rf/out with the unknown-place detector added exactly as the fit's ship stage adds
it (``calibrate_route`` on the feature set, reference component + ``unknown_detector`` metadata), into
/tmp/unk/bundles (front-ends copied beside them). Weights and every other metadata key are kept as they are."""
import shutil
from pathlib import Path

from hstnn_ros.datasets.features import load_feature_set
from hstnn_ros.fitting.route_calibration import calibrate_route
from hstnn_ros.model import load_bundle, save_bundle
from hstnn_ros.model.unknown_place import COMPONENT

M, OUT = Path("/tmp/rf/out"), Path("/tmp/unk/bundles")
OUT.mkdir(parents=True, exist_ok=True)
if not (OUT / "frontends").exists():
    shutil.copytree(M / "frontends", OUT / "frontends")
for e in ("env1", "env2", "env3"):
    b = load_bundle(M / e)
    cal = calibrate_route(b.hstnn().float().eval(), load_feature_set(M / ".work" / "features" / f"{e}.safetensors"))
    det = cal.pop("detector")
    save_bundle(OUT / e, {**b.components, COMPONENT: det.to_component()},
                {**b.metadata, "unknown_detector": cal["unknown_detector"]})
    print(e, cal["unknown_detector"], "softmax thresholds (unchanged):", cal["unknown_threshold"],
          b.metadata["unknown_threshold"])
