"""Build a runtime ``Pipeline`` from model bundles: adapters from the model core and front-ends to the engine.

Shipped layout (keeps the repository small: one front-end bundle shared by every environment bundle)::

    models/frontends/   bundle with components ``scnn`` (events) and ``cnn`` (RGB(-D)), or only ``scnn``;
                        metadata ``window`` (``WindowSpec.to_dict``: how inputs are cut and framed)
    models/<env>/       bundle with component ``hstnn``; metadata (``deployment.DeployMeta``) ``frontend_bundle`` =
                        path relative to it (``../frontends``), ``frontend_sha256`` = the front-end weights it was
                        trained on (checked), ``events_only`` (bool), optional ``place_names``

A bundle that holds ``scnn``/``cnn`` and ``hstnn`` together also works (``frontend_bundle`` absent), and so does a
bundle ``hstnn-train`` wrote (it names the front-ends of its feature set the same way).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hstnn_ros.errors import HstnnError
from hstnn_ros.model import HSTNN, count_ops, load_bundle
from hstnn_ros.model.unknown_place import KnnNovelty
from hstnn_ros.perception.frontends import BUILDERS, CNN_KIND, SCNN_KIND, Frontend
from hstnn_ros.perception.window import window_from_metadata
from hstnn_ros.runtime.deployment import DeployMeta, check_frontend_digest
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.inference import FastHstnn
from hstnn_ros.runtime.pipeline import ClassifierResult, FrontendResult, Pipeline

LOG = logging.getLogger(__name__)

HSTNN_COMPONENT = "hstnn"


class HstnnClassifier(nn.Module):
    """``hstnn_ros.model.HSTNN`` as an engine ``Classifier``: logits plus the ops measured on the window (Eq. 23-25,
    as the model core's ``count_ops`` defines them) and the spike rate of each hidden SNN population.

    LIF + RNN networks run through ``FastHstnn`` (the same arithmetic and counts in one pass, tested equal to
    ``HSTNN.run`` + ``count_ops``); other kinds through the model core."""

    def __init__(self, model: HSTNN) -> None:
        super().__init__()
        self.model = model.float()  # bundles may store fp16 to stay small; inference runs in fp32
        self.num_classes = int(model.config.num_classes)
        self.input_size = int(model.config.input_size)
        self._fast = FastHstnn(self.model) if FastHstnn.supports(self.model) else None

    def forward(self, x: torch.Tensor) -> ClassifierResult:
        if self._fast is not None and not torch.is_grad_enabled():
            logits, macs, acs, rates, feat = self._fast.run_readout(x)
            return ClassifierResult(logits, float(macs.sum()), float(acs.sum()), rates, feat)

        record = self.model.run(x)
        ops = count_ops(self.model, x, record)
        rates = tuple(r for r in ops.spike_rates if r is not None)
        return ClassifierResult(record.logits, float(ops.macs.sum()), float(ops.acs.sum()), rates, record.readout_input)


class FrontendAdapter(nn.Module):
    """A ``hstnn_ros.perception.frontends`` extractor as an engine ``FrontEnd`` (features + measured ops)."""

    def __init__(self, frontend: Frontend) -> None:
        super().__init__()
        self.frontend = frontend
        self.feature_size = int(frontend.feature_size)

    def forward(self, x: torch.Tensor) -> FrontendResult:
        out = self.frontend.extract(x)
        rate = float(out.features.float().mean()) if getattr(self.frontend, "spiking", False) else None
        return FrontendResult(out.features, float(out.macs.sum()), float(out.acs.sum()), rate)


def _load(path: Path) -> Any:
    if not (path / "bundle.json").is_file():
        raise RuntimeEngineError(f"{path}: not a model bundle (no bundle.json); pass a bundle directory or a preset")
    return load_bundle(path)


def load_pipeline(bundle_dir: Path | str, frontends: Path | str | None = None) -> Pipeline:
    """The inference pipeline of a bundle directory (see the module docstring for the layout). ``frontends``: a
    front-end bundle to use instead of the one the bundle names (for bundles that name none); its digest must still
    match a recorded ``frontend_sha256``."""
    bundle_dir = Path(bundle_dir)
    main = _load(bundle_dir)
    import hstnn_ros.perception.frontends  # noqa: F401, PLC0415 - registers the scnn/cnn bundle builders

    comps = {name: main for name in main.components}  # component name -> the bundle that holds it
    meta = dict(main.metadata)
    if HSTNN_COMPONENT not in comps:
        raise RuntimeEngineError(f"{bundle_dir}: bundle has no {HSTNN_COMPONENT!r} component (has {sorted(comps)})")
    deploy = DeployMeta.from_metadata({**meta, "place_count": main.components[HSTNN_COMPONENT].config.get(
        "num_classes", meta.get("place_count", 1))}, source=bundle_dir / "bundle.json")
    fe_rel = str(Path(frontends).resolve()) if frontends is not None else deploy.frontend_bundle
    if fe_rel:
        fe_dir = (bundle_dir / fe_rel).resolve()
        if not (fe_dir / "bundle.json").is_file():
            raise RuntimeEngineError(f"{bundle_dir}: its front-end bundle {fe_dir} is missing; keep the front-ends "
                                     "beside the model as hstnn-fit-route wrote them, or pass --frontends DIR")
        fe = _load(fe_dir)
        check_frontend_digest(bundle_dir, fe_dir, deploy.frontend_sha256, fe.digest)
        comps = {**{name: fe for name in fe.components}, **comps}
        meta.setdefault("frontend_metadata", dict(fe.metadata))
    if SCNN_KIND not in comps:
        raise RuntimeEngineError(f"{bundle_dir}: no {SCNN_KIND!r} event front-end in the bundle or in its "
                                 f"frontend_bundle ({fe_rel!r}); pass the front-end bundle it was trained with "
                                 "(--frontends DIR), or fit models that name it (hstnn-fit-route, hstnn-train on "
                                 "features cached by hstnn-frontends)")
    events_only = deploy.events_only or CNN_KIND not in comps
    clf = HstnnClassifier(main.hstnn(HSTNN_COMPONENT))
    ev = FrontendAdapter(comps[SCNN_KIND].build(SCNN_KIND, BUILDERS))
    rgb = None if events_only else FrontendAdapter(comps[CNN_KIND].build(CNN_KIND, BUILDERS))
    rgb_size = clf.input_size - ev.feature_size
    fe_meta = meta.get("frontend_metadata", meta)
    fe_source = str((bundle_dir / fe_rel).resolve() if fe_rel else bundle_dir)
    try:
        window = window_from_metadata(fe_meta, source=fe_source)
    except HstnnError as exc:
        raise RuntimeEngineError(str(exc)) from exc
    rgb_in = getattr(getattr(rgb.frontend, "config", None), "in_channels", None) if rgb is not None else None
    if rgb_in is not None and rgb_in != window.rgb_channels:
        raise RuntimeEngineError(f"{fe_source}: the RGB front-end takes {rgb_in} channels but the window has "
                                 f"{window.rgb_channels} (depth={window.depth}); rebuild the front-end bundle")
    names = deploy.place_names
    try:
        detector = KnnNovelty.from_bundle(meta, main.components, source=str(bundle_dir / "bundle.json"))
    except HstnnError as exc:
        raise RuntimeEngineError(str(exc)) from exc
    if detector is not None and detector.size != clf.model.readout.in_features:
        raise RuntimeEngineError(f"{bundle_dir}: its unknown-place references have {detector.size} features but the "
                                 f"HSTNN's readout takes {clf.model.readout.in_features}; re-ship the bundle")
    return Pipeline(
        event_frontend=ev,
        rgb_frontend=rgb,
        classifier=clf,
        window=window,
        rgb_feature_size=rgb_size,
        place_names=tuple(names) if names else None,
        metadata={"bundle": str(bundle_dir), **{k: v for k, v in meta.items() if k != "frontend_metadata"}},
        unknown_detector=detector,
    )
