"""Unknown place by novelty of the window's representation (``model.unknown_place``): calibrated by a route fit on
its own traversals, it accepts most windows of the route and refuses most windows of another world; the engine uses
the bundle's detector, and the bundle round trip keeps it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hstnn_ros.datasets.features import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, FeatureSet
from hstnn_ros.model import load_bundle, save_bundle
from hstnn_ros.model.errors import ModelError
from hstnn_ros.model.network import HSTNN, HSTNNConfig, LayerSpec
from hstnn_ros.model.unknown_place import COMPONENT, KnnNovelty, NoveltyTracker, calibrate_novelty

PLACES, PER_PLACE, STEPS, FEATS = 10, 6, 4, 24


def _world(rng: np.random.Generator, traversals: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``traversals`` traversals of one world: each place is a centre, each window a noisy view of it."""
    centres = rng.normal(size=(PLACES, FEATS))
    labels = np.tile(np.repeat(np.arange(PLACES), PER_PLACE), traversals)
    x = centres[labels][:, None, :] + 0.3 * rng.normal(size=(len(labels), STEPS, FEATS))
    return x.astype(np.float32), labels


def test_a_fit_accepts_its_own_route_and_refuses_another_world() -> None:
    """The property a robot needs: calibrated on the route's own training and validation traversals only, the
    detector accepts most decisions of a held-out traversal and refuses most decisions in an unrelated world."""
    from hstnn_ros.fitting.route_calibration import calibrate_route, window_outputs

    x, labels = _world(np.random.default_rng(0), 5)
    n = PLACES * PER_PLACE
    splits = np.repeat([SPLIT_TRAIN, SPLIT_TRAIN, SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST], n)
    fs = FeatureSet(x, labels.astype(np.int64), splits.astype(np.int8), np.repeat(np.arange(5), n).astype(np.int32),
                    np.zeros(len(labels), np.int8), PLACES)
    torch.manual_seed(0)
    model = HSTNN(HSTNNConfig(FEATS, (LayerSpec(16, 16),), PLACES, v_th=0.2)).eval()
    cal = calibrate_route(model, fs, true_accept=0.95)
    det = cal["detector"]
    assert cal["unknown_detector"]["threshold"] == det.threshold
    assert cal["validation"]["true_accept_detector"] >= 0.95
    assert len(det.reference) <= 512 and det.size == 32

    def accepted(windows: np.ndarray) -> float:
        feats = window_outputs(model, windows)[1]
        return float(np.mean(det.smoothed([det.similarity(feats)]) >= det.threshold))

    own = accepted(x[splits == SPLIT_TEST])
    other = accepted(_world(np.random.default_rng(1), 1)[0])
    assert own >= 0.8, own
    assert other <= 0.2, other


def test_tracker_smooths_over_the_last_decisions_and_resets() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(20, 8))
    det = KnnNovelty(ref, 0.5, window=3)
    queries = rng.normal(size=(7, 8))
    sims = det.similarity(queries)
    assert sims[0] == pytest.approx(float(det.similarity(queries[0])[0]))
    assert det.similarity(ref[4] * 3.0)[0] == pytest.approx(1.0, abs=1e-6)  # scale does not matter
    tracker = NoveltyTracker(det)
    online = [tracker.update(q) for q in queries]
    np.testing.assert_allclose(online, det.smoothed([sims]), rtol=1e-6)  # float32 similarities
    np.testing.assert_allclose(online[3], sims[1:4].mean(), rtol=1e-6)
    tracker.reset()
    assert tracker.update(queries[6]) == pytest.approx(sims[6])


def test_calibration_meets_the_true_accept_target_on_validation() -> None:
    rng = np.random.default_rng(3)
    train = [rng.normal(size=(300, 6)), rng.normal(size=(400, 6))]
    val = [rng.normal(size=(100, 6)), rng.normal(size=(50, 6))]
    det, facts = calibrate_novelty(train, val, true_accept=0.9, max_refs=128)
    assert len(det.reference) <= 128
    scores = det.smoothed([det.similarity(v) for v in val])
    assert np.mean(scores >= det.threshold) >= 0.9
    assert facts["true_accept_validation"] == pytest.approx(np.mean(scores >= det.threshold))
    with pytest.raises(ModelError, match="validation"):
        calibrate_novelty(train, [], true_accept=0.9)


def test_bundle_round_trip_and_a_bundle_naming_a_missing_reference_is_refused(tmp_path) -> None:
    det = KnnNovelty(np.random.default_rng(4).normal(size=(30, 5)), 0.7, window=5)
    comp = HSTNN(HSTNNConfig(5, (LayerSpec(3, 2),), 4)).to_component()
    meta = {"unknown_detector": det.to_metadata(true_accept_validation=0.95)}
    b = load_bundle(save_bundle(tmp_path / "ok", {"hstnn": comp, COMPONENT: det.to_component()}, meta))
    back = KnnNovelty.from_bundle(b.metadata, b.components, source="ok")
    assert back is not None and back.threshold == 0.7 and back.window == 5
    np.testing.assert_allclose(back.reference, det.reference, atol=2e-3)  # stored as float16
    assert KnnNovelty.from_bundle({}, b.components) is None  # an old bundle: the softmax threshold stays
    broken = load_bundle(save_bundle(tmp_path / "broken", {"hstnn": comp}, meta))
    with pytest.raises(ModelError, match=r"broken.*re-ship"):
        KnnNovelty.from_bundle(broken.metadata, broken.components, source=str(tmp_path / "broken"))


def test_engine_decides_unknown_with_the_bundle_detector() -> None:
    """An engine whose pipeline carries a detector calibrated on one input stream accepts that stream and refuses
    input of another kind (black frames, hardly any events); the score is smoothed as the tracker does; an explicit
    unknown_threshold keeps the softmax rule. (Random streams are each an unknown world for a random model, so the
    calibration stream is the "route" here; test_a_fit_... checks held-out traversals.)"""
    from test_engine import PERIOD, make_pipeline, random_events, stream

    from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine

    def readout_inputs(seed: int, n: int = 12) -> np.ndarray:
        pipe = make_pipeline()
        seen: list[np.ndarray] = []
        clf = pipe.classifier

        class Keep:
            num_classes, input_size = clf.num_classes, clf.input_size

            def __call__(self, x: torch.Tensor):
                out = clf(x)
                seen.append(out.readout_input[0].numpy().copy())
                return out

        pipe.classifier = Keep()
        stream(PlaceRecognitionEngine(pipe, EngineConfig(reorder_delay_ns=0)), n, seed=seed)
        return np.stack(seen)

    route = readout_inputs(1)
    det = KnnNovelty(route, threshold=0.995)  # its own windows are the references: similarity 1 (float16)
    pipe = make_pipeline()
    pipe.unknown_detector = det
    eng = PlaceRecognitionEngine(pipe, EngineConfig(reorder_delay_ns=0))
    assert eng.unknown_threshold == det.threshold
    own, _ = stream(eng, 12, seed=1)
    assert all(r.known for r in own)
    assert all(r.known == (r.unknown_score >= det.threshold) for r in own)
    np.testing.assert_allclose([r.unknown_score for r in own], det.smoothed([det.similarity(route)]), rtol=1e-5)

    dark = PlaceRecognitionEngine(pipe, EngineConfig(reorder_delay_ns=0))
    rng, results = np.random.default_rng(5), []
    for k in range(1, 13):
        dark.push_events(random_events(rng, (k - 1) * PERIOD, k * PERIOD, 3))
        dark.push_frame(k * PERIOD, np.zeros((48, 64, 3), np.uint8))
        results += dark.poll()
    results += dark.flush()
    assert np.mean([r.known for r in results]) <= 0.3

    softmax = PlaceRecognitionEngine(pipe, EngineConfig(reorder_delay_ns=0, unknown_threshold=0.0))
    assert softmax.novelty is None
    assert all(r.known and r.unknown_score == r.score for r in stream(softmax, 6, seed=3)[0])
