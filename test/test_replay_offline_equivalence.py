"""Online replay equals offline evaluation: the engine's decisions on a bag are the shipped model's outputs on the
windows that the dataset builder and feature cache make from the same bag (issue 6 evidence)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from fpbounds import U32, cnn_bound, hstnn_bound, scnn_bound

from hstnn_ros import defaults
from hstnn_ros.datasets.frontend_training import cache_features
from hstnn_ros.datasets.sidecar import route_bags
from hstnn_ros.datasets.synth.config import preset_config
from hstnn_ros.datasets.synth.route import generate_route_set
from hstnn_ros.datasets.windows import build_dataset
from hstnn_ros.enums import Environment
from hstnn_ros.model import load_bundle
from hstnn_ros.perception.enums import DropPolicy
from hstnn_ros.perception.frontends import BUILDERS
from hstnn_ros.runtime.bag_source import open_bag
from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine
from hstnn_ros.runtime.loading import load_pipeline
from hstnn_ros.runtime.replay import run_replay

MODEL = defaults.shipped_models_dir() / "default"


@pytest.mark.slow
def test_replay_decisions_equal_offline_windows(tmp_path):
    if not (MODEL / "bundle.json").is_file():
        pytest.skip("no shipped default bundle")
    cfg = preset_config("demo")
    cfg = dataclasses.replace(cfg, world=dataclasses.replace(cfg.world, path_length_m=2.0))
    generate_route_set(tmp_path / "route", cfg, envs=(Environment.ENV2,), traversals=3, seed=0, progress=False)
    bags = route_bags(tmp_path / "route")

    pipeline = load_pipeline(MODEL)
    ds = build_dataset(bags, tmp_path / "ds", window=pipeline.window, progress=False)
    fe = load_bundle(MODEL / load_bundle(MODEL).metadata["frontend_bundle"])
    scnn, cnn = fe.build("scnn", BUILDERS), fe.build("cnn", BUILDERS)
    fs = cache_features(ds, scnn, cnn, progress=False)
    hstnn = load_bundle(MODEL).hstnn("hstnn").float()
    trav = ds.traversals[0]
    offline = fs.subset(fs.group == 0)
    with torch.no_grad():
        off_logits = hstnn(torch.from_numpy(offline.features)).numpy()
    off_stamp = trav.stamps_ns[2:]

    windows: dict[int, torch.Tensor] = {}  # what the engine's HSTNN sees, by decision (the real classifier runs)
    classifier = pipeline.classifier

    class Recording:
        num_classes, input_size = classifier.num_classes, classifier.input_size

        def __call__(self, x: torch.Tensor):
            windows[len(windows)] = x.detach().clone()
            return classifier(x)

    pipeline.classifier = Recording()
    engine = PlaceRecognitionEngine(pipeline, EngineConfig(drop_policy=DropPolicy.DROP_NEWEST,
                                                           max_pending_frames=512, reorder_delay_ns=100_000_000))
    src = open_bag(bags[0][0])
    out = run_replay(src.items(), engine, progress=False)
    assert len(windows) == len(out.results)
    on = {r.stamp_ns: (r, windows[k]) for k, r in enumerate(out.results)}
    assert len(on) >= len(off_stamp) - 2, "the engine decides on (almost) every RGB frame with a full window"
    matched = [(i, *on[s]) for i, s in enumerate(off_stamp) if s in on]
    assert len(matched) >= len(off_stamp) - 2

    # Online the front-ends see 3 event frames / 1 RGB frame per call and the HSTNN one window; offline, batches of
    # 64 frames and all windows at once: other convolution and GEMM shapes, so other roundings (float32). fpbounds
    # says how far each path can be from exact arithmetic. An event feature (a spike) may differ only where the
    # SCNN's bound cannot decide it (a worst case over six spiking layers, so most features stay undecided: this
    # check is sound but weak, and in practice the features are equal); an RGB feature within twice the CNN's bound.
    # The HSTNN is then checked on the inputs each path actually had: the offline path within E(0) of exact
    # arithmetic on the offline window, the online path within E(|x_on - x_off|), so the logits within twice the
    # latter (a real misalignment moves features and logits far beyond these bounds), and the place ids equal where
    # the top class leads by more than that.
    n, bins = trav.events.shape[:2]
    ev = scnn_bound(scnn, torch.from_numpy(np.asarray(trav.events, np.float32)).flatten(0, 1), U32)
    rgb = cnn_bound(cnn, torch.from_numpy(trav.rgb_input(slice(0, n))), U32)
    fe_size, w = scnn.feature_size, defaults.RGB_FRAMES_PER_WINDOW
    ev_err = ev.error.view(n, bins, -1)
    idx = [i for i, _, _ in matched]
    x_off = torch.from_numpy(offline.features[idx]).double()
    x_on = torch.cat([x for _, _, x in matched]).double()
    diff = (x_on - x_off).abs()
    for k, i in enumerate(idx):  # window i covers RGB frames i .. i + w - 1 (cache_features' layout)
        assert bool((diff[k, :, :fe_size] <= ev_err[i : i + w].reshape(w * bins, -1)).all())
        for j, step in enumerate(defaults.RGB_STEPS):
            assert bool((diff[k, step, fe_size:] <= 2 * rgb.error[i + j]).all())
    hb = hstnn_bound(hstnn, x_off, U32, e_x=diff)
    sure = hb.logits_decided().numpy()
    # The worst-case bound decides 11 of the 28 windows (measured): the shipped model's top two places lie within
    # 0.001-0.1 of each other on many of them (and a spike that could flip counts in full), so the place id is
    # compared there only; the features above and the logits below are compared on every window.
    assert sure.any()
    for k, (i, r, _) in enumerate(matched):
        assert bool((np.abs(r.logits - off_logits[i]) <= 2 * hb.logits[k].numpy()).all())
        if sure[k]:
            assert r.place_id == int(off_logits[i].argmax())
    # the accuracy the replay reports is the offline accuracy on the same windows
    labels = {int(s): int(lab) for s, lab in zip(off_stamp, offline.labels, strict=True)}
    on_acc = np.mean([on[s][0].place_id == labels[s] for s in labels if s in on])
    off_acc = np.mean([off_logits[i].argmax() == offline.labels[i] for i, _, _ in matched])
    assert abs(on_acc - off_acc) <= (~sure).mean() + 1e-12  # equal but for windows whose top class is not decided
