"""Config validation, data refusal, grouped ranking and robustness perturbations (no network needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.datasets.features import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, FeatureSet
from hstnn_ros.learning.config import TrainConfig, config_from_dict, load_config, population_sizes
from hstnn_ros.learning.data import prepare_data
from hstnn_ros.learning.enums import EmptyPolicy, Perturbation
from hstnn_ros.learning.errors import LearningError
from hstnn_ros.learning.ranking import LayerScores, select_fixed, select_global, select_random
from hstnn_ros.learning.robustness import perturb

torch.set_num_threads(1)


def _fs(n: int = 30, classes: int = 5, splits: tuple[int, ...] = (SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST)) -> FeatureSet:
    rng = np.random.default_rng(0)
    return FeatureSet(features=rng.normal(size=(n, 4, 6)).astype(np.float32),
                      labels=rng.integers(0, classes, n).astype(np.int64),
                      split=np.resize(np.array(splits, dtype=np.int8), n), group=np.zeros(n, np.int32),
                      env=np.zeros(n, np.int8), num_classes=classes)


def test_config_roundtrip_and_example_files() -> None:
    cfg = TrainConfig()
    assert config_from_dict(cfg.to_dict()) == cfg
    assert cfg.optim.clip == 0.25
    from pathlib import Path

    for path in sorted((Path(__file__).resolve().parents[1] / "config").glob("train_*.yaml")):
        assert isinstance(load_config(path), TrainConfig)


@pytest.mark.parametrize(("raw", "needle"), [
    ({"optim": {"lr": 0}}, "optim.lr"),
    ({"optim": {"clip": -1}}, "optim.clip"),
    ({"epochs": {"patience": 0}}, "epochs.patience"),
    ({"sweep": {"ratios": [1.5]}}, "outside [0, 1]"),
    ({"sweep": {"seeds": [1, 1]}}, "distinct"),
    ({"network": {"hidden": [0, 4]}}, "network.hidden"),
    ({"optim": {"lrr": 0.1}}, "unknown keys"),
    ({"training": {}}, "unknown sections"),
    ({"selection": {"empty_layer": "maybe"}}, "refuse"),
    ({"selection": {"hardware_friendly": True, "multiple": 32}, "network": {"hidden": [500]}}, "multiple of"),
    ({"network": {"hidden": [4, 4]}, "sweep": {"ratios": [0.1]}}, "keep_both_populations"),
    ({"selection": {"min_batches": 5, "max_batches": 2}}, "min_batches"),
])
def test_impossible_config_refused_with_fix(raw: dict, needle: str) -> None:
    with pytest.raises(LearningError, match=None) as err:
        config_from_dict(raw)
    assert needle in str(err.value)


def test_ratio_allowed_when_population_may_be_empty() -> None:
    cfg = config_from_dict({"network": {"hidden": [4, 4]}, "sweep": {"ratios": [0.1]},
                            "selection": {"keep_both_populations": False}})
    assert cfg.sweep.ratios == (0.1,)


def test_hardware_sizes_are_multiples() -> None:
    cfg = config_from_dict({"network": {"hidden": [128, 64]}, "sweep": {"ratios": [0.25, 0.5]},
                            "selection": {"hardware_friendly": True, "multiple": 32, "keep_both_populations": False}})
    for r in (0.25, 0.5, 0.7):
        for (s, n), m in zip(population_sizes(cfg, r), (128, 64), strict=True):
            assert s % 32 == 0 and n % 32 == 0 and s + n == m


def test_bad_data_refused_before_training() -> None:
    with pytest.raises(LearningError, match="val split is empty"):
        prepare_data(_fs(splits=(SPLIT_TRAIN, SPLIT_TEST)))
    with pytest.raises(LearningError, match="feature size 6 does not match the model input size 7"):
        prepare_data(_fs(), input_size=7)
    with pytest.raises(LearningError, match="label ids"):
        prepare_data(_fs(classes=5), num_classes=3)
    d = prepare_data(_fs())
    assert len(d.train) + len(d.val) + len(d.test) == 30 and d.feature_size == 6


layer_scores = st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(layer_scores, st.floats(0, 1), st.integers(0, 2**16))
def test_global_ranking_counts_and_order(shape: list[tuple[int, int]], ratio: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    layers = [LayerScores(torch.rand(s, generator=g), torch.rand(r, generator=g)) for s, r in shape]
    total = min(sum(s for s, _ in shape), sum(r for _, r in shape))
    try:
        kept = select_global(layers, ratio, total, policy=EmptyPolicy.REPAIR, keep_both=False)
    except LearningError as e:
        assert "no other layer can spare" in str(e) or "would be empty" in str(e)
        return
    n_snn = round(ratio * total)
    assert sum(k.snn.numel() for k in kept) == n_snn
    assert sum(k.rnn.numel() for k in kept) == total - n_snn
    assert all(k.size > 0 for k in kept)
    for k in kept:  # sorted, unique, in range
        for idx in (k.snn, k.rnn):
            assert torch.equal(idx, idx.unique())
    # when the plain global top-k leaves no layer empty, nothing is repaired: the kept neurons of each kind are
    # exactly the globally best ones (ranked over all layers together)
    def top(scores: list[torch.Tensor], k: int) -> set[tuple[int, int]]:
        flat = [(float(v), i, j) for i, sc in enumerate(scores) for j, v in enumerate(sc)]
        return {(i, j) for _, i, j in sorted(flat, key=lambda t: -t[0])[:k]}

    best_s = top([la.snn for la in layers], n_snn)
    best_r = top([la.rnn for la in layers], total - n_snn)
    if all(any(i == li for i, _ in best_s | best_r) for li in range(len(layers))):
        assert {(i, int(j)) for i, k in enumerate(kept) for j in k.snn} == best_s
        assert {(i, int(j)) for i, k in enumerate(kept) for j in k.rnn} == best_r


def test_global_ranking_refuses_or_repairs_empty_layer() -> None:
    layers = [LayerScores(torch.tensor([5.0, 4.0, 3.0, 2.0]), torch.tensor([1.0, 2.0, 3.0, 10.0])),
              LayerScores(torch.tensor([0.1, 0.2, 0.1, 0.0]), torch.tensor([9.0, 8.0, 7.0, 6.0]))]
    with pytest.raises(LearningError, match="layer 1 without SNN"):
        select_global(layers, 0.5, 8, policy=EmptyPolicy.REFUSE, keep_both=True)
    kept = select_global(layers, 0.5, 8, policy=EmptyPolicy.REPAIR, keep_both=True)
    assert kept[1].snn.tolist() == [1]  # the best SNN neuron of layer 1 is swapped in
    assert kept[0].snn.tolist() == [0, 1, 2]  # for the worst kept SNN neuron elsewhere
    assert sum(k.snn.numel() for k in kept) == 4 and sum(k.rnn.numel() for k in kept) == 4


def test_fixed_and_random_selection() -> None:
    g = torch.Generator().manual_seed(0)
    layers = [LayerScores(torch.rand(64, generator=g), torch.rand(64, generator=g)) for _ in range(2)]
    kept = select_fixed(layers, [(32, 32), (0, 64)])
    assert [k.snn.numel() for k in kept] == [32, 0] and [k.rnn.numel() for k in kept] == [32, 64]
    assert float(layers[0].snn[kept[0].snn].min()) >= float(layers[0].snn.sort().values[32])
    rnd = select_random(layers, kept, seed=1)
    assert [k.snn.numel() for k in rnd] == [32, 0]
    assert not torch.equal(rnd[0].snn, kept[0].snn)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(list(Perturbation)), st.floats(0, 1), st.integers(0, 1000))
def test_perturbations(kind: Perturbation, level: float, seed: int) -> None:
    x = torch.rand(20, 6, 5)
    xp = perturb(x, kind, level, torch.Generator().manual_seed(seed))
    assert xp.shape == x.shape and torch.isfinite(xp).all()
    if level == 0:
        assert torch.equal(xp, x)
    if kind is Perturbation.FRAME_LOSS:
        lost = (xp == 0).all(dim=2)
        kept = (xp == x).all(dim=2)
        assert torch.all(lost | kept)  # whole steps vanish, the others are untouched
    if kind is Perturbation.SALT_PEPPER:
        changed = xp != x
        assert torch.all((xp[changed] == x.min()) | (xp[changed] == x.max()))


def test_perturbation_strength() -> None:
    x = torch.rand(200, 9, 16)
    g = torch.Generator().manual_seed(0)
    lost = (perturb(x, Perturbation.FRAME_LOSS, 0.3, g) == 0).all(dim=2).float().mean()
    assert abs(float(lost) - 0.3) < 0.03
    noise = perturb(x, Perturbation.GAUSSIAN, 0.5, g) - x
    assert abs(float(noise.std()) - 0.5 * float(x.std())) < 0.01
    with pytest.raises(LearningError, match="probability"):
        perturb(x, Perturbation.FRAME_LOSS, 1.5, g)


def test_report_aggregates_over_seeds(tmp_path) -> None:
    from hstnn_ros.learning.report import build_report, write_report

    def unit(seed: int, top1: float, rate: float | None) -> dict:
        m = {"top1": top1, "top5": 1.0, "recall": top1, "loss": 0.1, "n": 10}
        return {"unit": f"hstnn_r0.5_s{seed}", "kind": "hstnn", "snn_ratio": 0.5, "seed": seed, "test": m, "val": m,
                "mac": 100.0 * (seed + 1), "ac": 10.0, "spike_rates": [rate, None],
                "selected": {"test": dict(m, top1=top1 / 2)}}

    rep = build_report([unit(0, 0.6, 0.1), unit(1, 0.8, 0.3)], TrainConfig(), fingerprint="f")
    (row,) = rep["summary"]
    assert row["top1"]["mean"] == pytest.approx(0.7) and row["top1"]["std"] == pytest.approx(0.1414, abs=1e-4)
    assert row["selected_top1"]["mean"] == pytest.approx(0.35) and row["model"] == "hstnn"
    assert row["ops"]["mean"] == pytest.approx(160.0) and row["seeds"] == [0, 1]
    assert row["spike_rates"][0]["mean"] == pytest.approx(0.2) and row["spike_rates"][1] is None
    path = write_report(tmp_path, rep, plots=True)
    assert path.is_file() and (tmp_path / "accuracy_vs_ops.png").is_file()
    with pytest.raises(LearningError, match=r"hstnn_r0.5_s2: kind 'hybrid' is not one of"):
        build_report([dict(unit(2, 0.5, None), kind="hybrid")], TrainConfig(), fingerprint="f")
