"""Route-aware decisions: the forward filter over places, the motion model, the unknown-place threshold, the
sequence-matching baseline, and the engine/messages carrying raw, filtered and unknown decisions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.model.errors import ModelError
from hstnn_ros.model.route_filter import (
    MotionModel,
    RouteFilter,
    calibrate_unknown_threshold,
    estimate_motion,
    sequence_match,
)


def _noisy_route(rng: np.random.Generator, n_places: int = 30, per_place: int = 4, acc: float = 0.6,
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Softmax-like posteriors of a classifier that is right ``acc`` of the time along an ordered route."""
    truth = np.repeat(np.arange(n_places), per_place)
    probs = np.full((len(truth), n_places), 0.2 / n_places)
    for t, place in enumerate(truth):
        guess = place if rng.random() < acc else rng.integers(n_places)
        probs[t, guess] += 0.8
    return truth, probs / probs.sum(1, keepdims=True)


def test_filter_beats_the_raw_classifier_on_an_ordered_route() -> None:
    rng = np.random.default_rng(0)
    train = [_noisy_route(rng)[0] for _ in range(3)]
    motion = estimate_motion(train)
    assert motion.offsets[motion.probs.index(max(motion.probs))] == 0  # 4 decisions per place: mostly stay
    gains = []
    for _ in range(5):
        truth, probs = _noisy_route(rng)
        filt = RouteFilter(probs.shape[1], motion).run(probs)
        raw_acc = np.mean(probs.argmax(1) == truth)
        gains.append(np.mean(filt.argmax(1) == truth) - raw_acc)
    assert np.mean(gains) > 0.2, gains


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2**31), st.floats(0.0, 0.2), st.floats(0.5, 5.0))
def test_posteriors_stay_distributions_and_a_uniform_likelihood_keeps_the_prior(n: int, seed: int, jump: float,
                                                                                temp: float) -> None:
    rng = np.random.default_rng(seed)
    f = RouteFilter(n, MotionModel(jump=jump, temperature=temp))
    for _ in range(5):
        post = f.update(rng.dirichlet(np.ones(n)))
        assert post.shape == (n,) and np.all(post >= 0) and np.isclose(post.sum(), 1.0)
    before = f._belief.copy()
    after = f.update(np.full(n, 1.0 / n))
    np.testing.assert_allclose(after, f.predict(before) / f.predict(before).sum())


def test_motion_model_checks_and_round_trips() -> None:
    m = MotionModel(offsets=(0, 1), probs=(0.7, 0.3), jump=0.01, temperature=2.0)
    assert MotionModel.from_dict(m.to_dict()) == m
    with pytest.raises(ModelError, match="sum to 1"):
        MotionModel(offsets=(0, 1), probs=(0.7, 0.7))
    with pytest.raises(ModelError, match="posteriors"):
        RouteFilter(5).update(np.ones(4) / 4)


def test_unknown_threshold_meets_the_false_accept_target() -> None:
    rng = np.random.default_rng(1)
    own, other = rng.beta(5, 2, 2000), rng.beta(2, 5, 2000)
    cal = calibrate_unknown_threshold(own, other, max_false_accept=0.05)
    assert cal["false_accept"] <= 0.05 and cal["true_accept"] > 0.5
    assert np.mean(other >= cal["threshold"]) == cal["false_accept"]


def test_sequence_match_finds_the_diagonal() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(40, 16))
    qry = ref + rng.normal(scale=1.5, size=ref.shape)  # single frames are ambiguous
    sim = (qry / np.linalg.norm(qry, axis=1, keepdims=True)) @ (ref / np.linalg.norm(ref, axis=1, keepdims=True)).T
    single = np.mean(sim.argmax(1) == np.arange(40))
    seq = np.mean(sequence_match(sim, 9)[8:].argmax(1) == np.arange(8, 40))
    assert seq > single and seq > 0.9


def test_engine_publishes_filtered_raw_and_unknown_decisions() -> None:
    import torch
    from test_engine import make_pipeline, stream

    from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine
    from hstnn_ros.runtime.messages import UNKNOWN_CLASS_ID, decision_messages

    torch.set_num_threads(1)
    plain, _ = stream(PlaceRecognitionEngine(make_pipeline(), EngineConfig(reorder_delay_ns=0)), 8)
    eng = PlaceRecognitionEngine(make_pipeline(), EngineConfig(reorder_delay_ns=0, route_filter=True,
                                                               unknown_threshold=0.99))
    filtered, _ = stream(eng, 8)
    assert [r.raw_top_k for r in filtered] == [r.top_k for r in plain]  # the raw decision is the classifier's
    assert all(not r.known for r in filtered)  # nothing this random is 99 % sure

    def make(t: str, **kw: object) -> dict:
        return {"type": t, **kw}

    place, _, raw = decision_messages(filtered[-1], make)
    assert place["results"][0]["class_id"] == UNKNOWN_CLASS_ID and len(place["results"]) == 1 + len(filtered[-1].top_k)
    assert [h["class_id"] for h in raw["results"]] == [str(i) for i, _ in filtered[-1].raw_top_k]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=200), st.floats(0.05, 1.0))
def test_true_accept_threshold_accepts_at_least_the_target_share(scores: list[float], target: float) -> None:
    from hstnn_ros.model.route_filter import threshold_for_true_accept

    cal = threshold_for_true_accept(np.array(scores), target)
    s = np.array(scores)
    assert cal["true_accept"] == pytest.approx(np.mean(s >= cal["threshold"]))
    assert cal["true_accept"] >= target - 1e-9
    higher = s[s > cal["threshold"]]
    assert not len(higher) or np.mean(s >= higher.min()) < target  # the largest threshold that does


def test_route_calibration_of_a_fit_reads_motion_from_training_and_thresholds_from_validation() -> None:
    """What a route fit ships: the kernel is the training traversals' label steps (3 decisions per place: stay 2/3,
    advance 1/3), both thresholds accept the target share of the validation decisions, and the metadata loads."""
    import torch

    from hstnn_ros.datasets.features import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, FeatureSet
    from hstnn_ros.fitting.route_calibration import TEMPERATURES, calibrate_route
    from hstnn_ros.model.network import HSTNN, HSTNNConfig, LayerSpec

    rng = np.random.default_rng(1)
    places, per_place, steps, feats = 12, 3, 4, 16
    labels = np.tile(np.repeat(np.arange(places), per_place), 5)
    splits = np.repeat([SPLIT_TRAIN, SPLIT_TRAIN, SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST], places * per_place)
    group = np.repeat(np.arange(5), places * per_place)
    centres = rng.normal(size=(places, feats))
    x = centres[labels][:, None, :] + 0.5 * rng.normal(size=(len(labels), steps, feats))
    fs = FeatureSet(x.astype(np.float32), labels.astype(np.int64), splits.astype(np.int8), group.astype(np.int32),
                    np.zeros(len(labels), np.int8), places)
    torch.manual_seed(0)
    model = HSTNN(HSTNNConfig(feats, (LayerSpec(8, 8),), places)).eval()
    cal = calibrate_route(model, fs, true_accept=0.9)
    motion = MotionModel.from_dict(cal["route_filter"])
    kernel = dict(zip(motion.offsets, motion.probs, strict=True))
    assert kernel[0] > kernel[1] > max(v for d, v in kernel.items() if d not in (0, 1))
    assert kernel[0] == pytest.approx(2 / 3, abs=0.05)
    assert motion.temperature in TEMPERATURES
    val = cal["validation"]
    assert val["windows"] == places * per_place and val["traversals"] == 1
    assert val["true_accept_raw"] >= 0.9 and val["true_accept_filtered"] >= 0.9
    assert 0 <= cal["unknown_threshold"] <= 1 and 0 <= cal["unknown_threshold_filtered"] <= 1 + 1e-9


def test_engine_takes_the_filtered_threshold_with_the_filter_and_the_raw_one_without() -> None:
    from test_engine import make_pipeline

    from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine

    meta = {"unknown_threshold": 0.3, "unknown_threshold_filtered": 0.8,
            "route_filter": MotionModel((0, 1), (0.7, 0.3)).to_dict()}
    engines = {}
    for on in (False, True):
        pipe = make_pipeline()
        pipe.metadata.update(meta)
        engines[on] = PlaceRecognitionEngine(pipe, EngineConfig(route_filter=on))
    assert engines[False].unknown_threshold == 0.3 and engines[False].route_filter is None
    assert engines[True].unknown_threshold == 0.8
    assert engines[True].route_filter is not None and engines[True].route_filter.motion.offsets == (0, 1)
