"""End-to-end evidence for the three-stage learning on a small real dataset (scikit-learn's digits, each 8x8 image
read row by row as 8 time steps of 8 features): the Selection's ranking is reproducible, the Hessian-aware selection
beats random choices of the same sizes before Restoration (several seeds), the shrunk model is far above chance right
after Selection, Restoration improves on it, baselines train for the same total epochs, and the sweep resumes after
interruption. docs/reports/selection.md has the measurements these thresholds come from."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hstnn_ros.datasets.features import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, FeatureSet, save_feature_set
from hstnn_ros.learning import LearningError, config_from_dict, run_sweep

torch.set_num_threads(1)
sklearn_datasets = pytest.importorskip("sklearn.datasets")

CHANCE = 0.1  # ten digits


def digits_features() -> FeatureSet:
    d = sklearn_datasets.load_digits()
    x = (d.images / 16.0).astype(np.float32)  # [N, 8 rows = time steps, 8 columns = features]
    n = len(x)
    split = np.full(n, SPLIT_TRAIN, np.int8)
    perm = np.random.default_rng(0).permutation(n)
    split[perm[: n // 5]] = SPLIT_VAL
    split[perm[n // 5: 2 * n // 5]] = SPLIT_TEST
    return FeatureSet(features=x, labels=d.target.astype(np.int64), split=split, group=np.arange(n, dtype=np.int32),
                      env=np.zeros(n, np.int8), num_classes=10, meta={"source": "sklearn.load_digits"})


def _cfg(ratios: list[float], seeds: list[int], epochs: int = 40) -> dict:
    return {
        "network": {"hidden": [24, 24]},
        "optim": {"lr": 5e-3, "batch_size": 64},
        "epochs": {"adaptation": epochs, "restoration": epochs // 2, "patience": 8},
        "selection": {},  # the shipped Selection recipe (SelectionConfig defaults)
        "sweep": {"ratios": ratios, "seeds": seeds},
        "eval": {"recall_tolerance": 1, "ops_samples": 32},
    }


def _rows(report: dict, kind: str) -> dict[float, dict]:
    return {r["snn_ratio"]: r for r in report["summary"] if r["kind"] == kind}


def _table(report: dict) -> str:
    """The summary as text, so that a failing assertion shows every number."""
    keys = ("top1", "selected_top1", "random_top1", "overlap_with_random")
    return "\n".join(f"{r['kind']} r={r['snn_ratio']} " + " ".join(
        f"{k}={r[k]['mean']:.3f}+-{r[k]['std']:.3f}" for k in keys if k in r) for r in report["summary"])


def _check_evidence(report: dict, ratios: list[float], *, direct: bool = True) -> None:
    hstnn = _rows(report, "hstnn")
    assert sorted(hstnn) == sorted(ratios), report["failures"]
    hybrid = {r: row for r, row in hstnn.items() if 0 < r < 1}
    assert hybrid, "the evidence needs at least one hybrid ratio"
    for r, row in hstnn.items():
        # far above chance right after Selection; removing a whole population (r = 0 or 1) costs the most
        assert row["selected_top1"]["mean"] > 2.5 * CHANCE, (r, _table(report))
        assert row["top1"]["mean"] >= row["selected_top1"]["mean"], (r, _table(report))  # Restoration improves
        assert row["mac"]["mean"] > 0 or row["ac"]["mean"] > 0
        assert 0 <= row["top1"]["mean"] <= row["top5"]["mean"] <= 1
    for row in hybrid.values():  # at r = 0 / 1 every neuron of one kind is kept, so only hybrid ratios choose
        assert row["overlap_with_random"]["mean"] < 0.9
    sel = np.mean([row["selected_top1"]["mean"] for row in hybrid.values()])
    rnd = np.mean([row["random_top1"]["mean"] for row in hybrid.values()])
    restored = np.mean([row["top1"]["mean"] for row in hstnn.values()])
    sel_all = np.mean([row["selected_top1"]["mean"] for row in hstnn.values()])
    # the Hessian-aware choice keeps more of the trained function than a random one of the same sizes
    assert sel > rnd, (sel, rnd, _table(report))
    # Restoration wins back at least half of what Selection cost (a fixed margin in top-1 points held on one CPU and
    # not on another: how much Selection costs moves with the kernels, and it bounds what Restoration can regain)
    adapted = _rows(report, "adaptation")[None]["top1"]["mean"]
    assert restored - sel_all >= 0.5 * (adapted - sel_all) > 0, (restored, sel_all, adapted, _table(report))
    if not direct:
        return
    base = _rows(report, "direct")
    assert sorted(base) == sorted(ratios)
    if 1.0 in ratios:  # pure SNN: every hidden neuron spikes, costs include ACs; pure RNN has none
        assert base[1.0]["spike_rates"][0]["mean"] > 0 and base[1.0]["ac"]["mean"] > 0
    if 0.0 in ratios:
        assert base[0.0]["spike_rates"][0] is None


def test_sweep_end_to_end_and_resume(tmp_path: Path) -> None:
    ratios = [0.5]
    raw = _cfg(ratios, [0], epochs=24)
    raw["sweep"]["direct_baselines"] = False  # the baselines run in the slow test below
    cfg = config_from_dict(raw)
    report = run_sweep(cfg, digits_features(), tmp_path, plots=True)
    _check_evidence(report, ratios, direct=False)
    for png in ("accuracy_vs_ratio.png", "ops_vs_ratio.png", "accuracy_vs_ops.png"):
        assert (tmp_path / png).stat().st_size > 1000
    unit = tmp_path / "units" / "hstnn_r0.5000_s0"
    meta = json.loads((unit / "bundle" / "bundle.json").read_text())["metadata"]
    assert meta["snn_ratio"] == 0.5 and meta["data_fingerprint"] == digits_features().fingerprint()
    assert len(meta["kept"]) == 2 and "metrics" in meta
    # one cached estimate per Selection round (each re-scores the neurons left), as the unit records
    rounds = json.loads((unit / "result.json").read_text())["importance"]["rounds"]
    assert len(rounds) == cfg.selection.rounds
    cached = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("importance_*.safetensors")}
    assert len(cached) == cfg.selection.rounds
    # interruption: lose one unit (and leave a half-written temp dir); a rerun redoes only that one
    stamps = {p.name: (p / "result.json").stat().st_mtime_ns for p in (tmp_path / "units").iterdir()}
    import shutil

    shutil.rmtree(unit)
    (tmp_path / "units" / ".tmp-hstnn_r0.5000_s0").mkdir()
    report2 = run_sweep(cfg, digits_features(), tmp_path, plots=False)
    after = {p.name: (p / "result.json").stat().st_mtime_ns for p in (tmp_path / "units").iterdir()
             if not p.name.startswith(".")}
    assert set(after) == set(stamps)
    assert [n for n in after if after[n] != stamps[n]] == [unit.name]
    # the redone unit's Selection re-used every round's cached scores (same weights, same neurons removed)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("importance_*.safetensors")} == cached
    assert _rows(report2, "hstnn")[0.5]["top1"]["mean"] > 3 * CHANCE
    # resuming with another recipe into the same directory is refused instead of mixing results
    other = dict(raw, optim={"lr": 1e-2, "batch_size": 64})
    with pytest.raises(LearningError, match="different recipe"):
        run_sweep(config_from_dict(other), digits_features(), tmp_path, plots=False)


def test_refuses_bad_input_before_training(tmp_path: Path) -> None:
    fs = digits_features()
    no_val = FeatureSet(features=fs.features, labels=fs.labels, split=np.where(fs.split == SPLIT_VAL, SPLIT_TRAIN,
                        fs.split).astype(np.int8), group=fs.group, env=fs.env, num_classes=10)
    with pytest.raises(LearningError, match="val split is empty"):
        run_sweep(config_from_dict(_cfg([0.5], [0])), no_val, tmp_path / "a")
    with pytest.raises(LearningError, match=r"network\.model"):
        run_sweep(config_from_dict({**_cfg([0.5], [0]), "network": {"hidden": [8], "model": {"decay": "x"}}}),
                  fs, tmp_path / "b")
    assert not (tmp_path / "a" / "units").exists() and not (tmp_path / "b" / "units").exists()


def test_cli_train_and_robustness(tmp_path: Path) -> None:
    import yaml
    from hstnn_ros.data_tools.robustness import main as robustness_main
    from hstnn_ros.data_tools.train import main as train_main

    feats = save_feature_set(tmp_path / "digits.safetensors", digits_features())
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump({**_cfg([0.5], [0], epochs=6), "sweep": {"direct_baselines": False}}))
    out = tmp_path / "run"
    assert train_main(["--config", str(cfg_path), "--features", str(feats), "--out", str(out), "--ratios", "0.5",
                       "--seeds", "1", "--no-plots"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [u["unit"] for u in report["units"]] == ["adaptation_s1", "hstnn_r0.5000_s1"]
    res_json = tmp_path / "rob.json"
    assert robustness_main([str(out / "units" / "hstnn_r0.5000_s1" / "bundle"), "--features", str(feats),
                            "--kinds", "gaussian", "frame_loss", "--levels", "0", "0.9", "--json", str(res_json),
                            "--plot", str(tmp_path / "rob.png")]) == 0
    res = json.loads(res_json.read_text())["results"]
    (model_res,) = res.values()
    for kind in ("gaussian", "frame_loss"):
        clean, noisy = model_res[kind]
        assert clean["top1"] > 3 * CHANCE and noisy["top1"] < clean["top1"]
    assert (tmp_path / "rob.png").is_file()
    other = digits_features()
    wide = FeatureSet(features=np.concatenate([other.features, other.features], axis=2), labels=other.labels,
                      split=other.split, group=other.group, env=other.env, num_classes=10)
    wide_path = save_feature_set(tmp_path / "wide.safetensors", wide)
    assert robustness_main([str(out / "units" / "hstnn_r0.5000_s1" / "bundle"), "--features", str(wide_path)]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: {clip: -1}\n")
    assert train_main(["--config", str(bad), "--features", str(feats), "--out", str(tmp_path / "x")]) == 2


@pytest.mark.slow
def test_full_sweep_several_seeds(tmp_path: Path) -> None:
    ratios = [0.0, 0.25, 0.5, 0.75, 1.0]
    report = run_sweep(config_from_dict(_cfg(ratios, [0, 1], epochs=40)), digits_features(), tmp_path, plots=True)
    _check_evidence(report, ratios)
    row = _rows(report, "hstnn")[0.5]
    assert row["top1"]["n"] == 2 and row["top1"]["std"] >= 0
    # baselines and three-stage models trained for the same total epochs, and the report says so
    assert report["comparison"]["basis"] == "equal total epochs"
    assert report["comparison"]["hstnn_epoch_budget"] == report["comparison"]["direct_epoch_budget"] == 60
    for unit in report["units"]:
        budget = 40 if unit["kind"] == "adaptation" else 60  # every unit says what it trained for and how long
        assert unit["training"]["epochs_budget"] == budget and 0 < unit["training"]["epochs_run"] <= budget
        assert unit["training"]["seconds"] > 0


def _adapted_digits(tmp_path: Path, seed: int, criterion: str = "removal") -> tuple:
    from hstnn_ros.learning import Sweep, Unit, UnitKind
    from hstnn_ros.learning import network as net

    raw = _cfg([0.5, 0.9], [seed], epochs=40)
    raw["selection"] = {"criterion": criterion}
    sweep = Sweep(config_from_dict(raw), digits_features(), tmp_path)
    sweep.units_dir.mkdir(parents=True)
    sweep.run_adaptation(Unit(UnitKind.ADAPTATION, seed))
    model, _ = net.load_model(sweep.unit_dir(Unit(UnitKind.ADAPTATION, seed)) / "bundle")
    return sweep, model.eval()


def test_ranking_reliability_grows_with_batches_on_a_trained_model(tmp_path: Path) -> None:
    """The shipped estimator's ranking of a trained network's neurons is reproducible and gets more so with more
    batches: the split-half reliability (Spearman between the scores of disjoint halves of the batches, stepped up)
    is recorded per batch, rises from its first value, and ends high. Measured on one machine (seed 0, default CPU
    settings): 0.65 after 7 batches, 0.875 at the 16-batch budget, i.e. the 0.9 target was NOT reached there (the
    estimate stops at max_batches and says so in its log and metadata)."""
    sweep, model = _adapted_digits(tmp_path, seed=0)
    imp = sweep.importance(model, seed=0)
    rel = [h["rank_reliability"] for h in imp.log if not math.isnan(h["rank_reliability"])]
    assert rel and imp.rank_reliability == rel[-1], imp.log
    assert imp.rank_reliability >= 0.75 and rel[-1] > rel[0], imp.log
    assert imp.batches <= sweep.cfg.selection.max_batches
    assert imp.converged == (imp.rank_reliability >= 0.9 or imp.rel_stderr <= sweep.cfg.selection.tolerance)


@pytest.mark.slow
@pytest.mark.parametrize("criterion", ["removal", "removal_fisher"])
def test_hessian_selection_beats_random_before_restoration(tmp_path: Path, criterion: str) -> None:
    """Before Restoration, the networks the shipped Selection keeps (and those of its Fisher-curvature variant) are
    clearly better than random choices of the same population sizes, at SNN ratios 0.5 and 0.9, over three seeds
    (10 random draws each); docs/reports/selection.md has the measured numbers (python
    docs/reports/selection_evidence.py); the margins below leave room for other CPUs."""
    from hstnn_ros.learning import LayerScores, select_random
    from hstnn_ros.learning import network as net
    from hstnn_ros.learning.trainer import evaluate

    gains: dict[float, list[float]] = {0.5: [], 0.9: []}
    for seed in (0, 1, 2):
        sweep, model = _adapted_digits(tmp_path / f"s{seed}", seed, criterion)
        full = [LayerScores(snn=torch.zeros(s), rnn=torch.zeros(r)) for s, r in net.sizes_of(model)]
        for ratio, gain in gains.items():
            kept, _ = sweep.select(model, ratio, seed)
            chosen = evaluate(net.shrink_model(model, kept), sweep.data.test).top1
            rnd = [evaluate(net.shrink_model(model, select_random(full, kept, seed=100 + j)), sweep.data.test).top1
                   for j in range(10)]
            gain.append(chosen - float(np.mean(rnd)))
    for ratio, g in gains.items():
        assert np.mean(g) > 0.06 and min(g) > 0.0, (ratio, gains)


def test_hardware_friendly_selection_gives_aligned_layers(tmp_path: Path) -> None:
    from hstnn_ros.learning import Sweep
    from hstnn_ros.learning import network as net

    raw = _cfg([0.25, 0.5], [0])
    raw["network"]["hidden"] = [64, 96]
    raw["selection"] |= {"hardware_friendly": True, "multiple": 16, "min_batches": 3, "max_batches": 3,
                         "probes": 1, "rounds": 3}
    sweep = Sweep(config_from_dict(raw), digits_features(), tmp_path)
    model = net.build_model(sweep.cfg, sweep.data, sweep.adapt_sizes(), seed=0)
    imp = sweep.importance(model, seed=0)
    assert imp.batches == 3 and set(imp.scores) == {"L0.snn", "L0.rnn", "L1.snn", "L1.rnn"}
    for r in (0.25, 0.5):
        kept, rounds = sweep.select(model, r, seed=0)
        assert len(rounds) == 3  # every round re-scored the neurons left
        small = net.shrink_model(model, kept)
        sizes = net.sizes_of(small)
        assert [s + n for s, n in sizes] == [64, 96]
        assert all(s % 16 == 0 and n % 16 == 0 for s, n in sizes)
        assert small(sweep.data.val.x[:4]).shape == (4, 10)
