"""End-to-end evidence for the three-stage learning on a small real dataset (scikit-learn's digits, each 8x8 image
read row by row as 8 time steps of 8 features): the Hessian-aware selection beats a random choice, the shrunk model
is far above chance right after Selection, Restoration improves on it, and the sweep resumes after interruption."""

from __future__ import annotations

import json
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
        "epochs": {"adaptation": epochs, "restoration": epochs // 2, "direct": epochs, "patience": 8},
        "selection": {"probes": 8, "batch_size": 256, "min_batches": 3, "max_batches": 16, "tolerance": 0.15},
        "sweep": {"ratios": ratios, "seeds": seeds},
        "eval": {"recall_tolerance": 1, "ops_samples": 32},
    }


def _rows(report: dict, kind: str) -> dict[float, dict]:
    return {r["ratio"]: r for r in report["summary"] if r["kind"] == kind}


def _table(report: dict) -> str:
    """The summary as text, so that a failing assertion shows every number."""
    keys = ("top1", "selected_top1", "random_top1", "overlap_with_random")
    return "\n".join(f"{r['kind']} r={r['ratio']} " + " ".join(
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
    assert restored > sel_all + 0.1, (restored, sel_all, _table(report))  # Restoration clearly improves
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
    raw["selection"]["max_batches"] = 10
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
    # the importance was computed once for the seed and reused by every ratio
    assert len(list((tmp_path / "cache").glob("importance_*.safetensors"))) == 1
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


def test_hardware_friendly_selection_gives_aligned_layers(tmp_path: Path) -> None:
    from hstnn_ros.learning import Sweep
    from hstnn_ros.learning import network as net

    raw = _cfg([0.25, 0.5], [0])
    raw["network"]["hidden"] = [64, 96]
    raw["selection"] |= {"hardware_friendly": True, "multiple": 16, "max_batches": 3, "probes": 1}
    sweep = Sweep(config_from_dict(raw), digits_features(), tmp_path)
    model = net.build_model(sweep.cfg, sweep.data, sweep.adapt_sizes(), seed=0)
    imp = sweep.importance(model, seed=0)
    assert imp.batches == 3 and set(imp.scores) == {"L0.snn", "L0.rnn", "L1.snn", "L1.rnn"}
    for r in (0.25, 0.5):
        small = net.shrink_model(model, sweep.select(model, imp, r))
        sizes = net.sizes_of(small)
        assert [s + n for s, n in sizes] == [64, 96]
        assert all(s % 16 == 0 and n % 16 == 0 for s, n in sizes)
        assert small(sweep.data.val.x[:4]).shape == (4, 10)
