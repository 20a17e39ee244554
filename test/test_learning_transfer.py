"""Cross-condition evaluation (hstnn_ros.learning.transfer) and the restored random control of the sweep, on two
"conditions" of scikit-learn's digits: the images as they are and inverted (another "lighting")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hstnn_ros.data_tools import cross_condition as cli
from test_learning_sweep import digits_features

from hstnn_ros.datasets.features import FeatureSet, save_feature_set
from hstnn_ros.learning import LearningError, config_from_dict, run_sweep
from hstnn_ros.learning.transfer import cell, cross_condition

torch.set_num_threads(1)

CFG = {
    "network": {"hidden": [16, 16]},
    "optim": {"lr": 5e-3, "batch_size": 64},
    "epochs": {"adaptation": 6, "restoration": 3, "patience": 6},
    "selection": {"rounds": 2, "max_batches": 4},
    "sweep": {"ratios": [0.5, 1.0], "seeds": [0], "direct_baselines": True, "random_control": True,
              "random_restoration": True},
    "eval": {"recall_tolerance": 1, "ops_samples": 32},
}


def _inverted(fs: FeatureSet) -> FeatureSet:
    return FeatureSet(features=(1.0 - fs.features).astype(np.float32), labels=fs.labels, split=fs.split,
                      group=fs.group, env=fs.env, num_classes=fs.num_classes, meta={"inverted": True})


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path, dict]]:
    root = tmp_path_factory.mktemp("transfer")
    cfg = config_from_dict(CFG)
    out = {}
    for cond, fs in (("plain", digits_features()), ("inverted", _inverted(digits_features()))):
        feats = save_feature_set(root / f"{cond}.safetensors", fs)
        report = run_sweep(cfg, fs, root / cond, name=cond, plots=False)
        out[cond] = (root / cond, feats, report)
    return out


def test_restored_random_control_is_recorded(sweeps: dict) -> None:
    _, _, report = sweeps["plain"]
    unit = next(u for u in report["units"] if u["kind"] == "hstnn" and u["snn_ratio"] == 0.5)
    restored = unit["random"]["restored"]
    assert restored["fit"]["epochs_run"] >= 1
    # Restoration trains the random control: it ends above where it started
    assert restored["test"]["top1"] > unit["random"]["test"]["top1"]
    row = next(r for r in report["summary"] if r["kind"] == "hstnn" and r["snn_ratio"] == 0.5)
    assert row["random_restored_top1"]["mean"] == restored["test"]["top1"]
    # ratio 1 keeps every SNN neuron and no RNN one: nothing to choose, so no random control to train
    forced = next(u for u in report["units"] if u["kind"] == "hstnn" and u["snn_ratio"] == 1.0)
    assert forced["random"] is None and not forced["importance"]["rounds"]


def test_random_restoration_needs_the_random_control() -> None:
    bad = {**CFG, "sweep": {**CFG["sweep"], "random_control": False}}
    with pytest.raises(LearningError, match="random_restoration"):
        config_from_dict(bad)


def test_cross_condition_diagonal_is_the_sweep_report(sweeps: dict) -> None:
    res = cross_condition({c: d for c, (d, _, _) in sweeps.items()}, {c: f for c, (_, f, _) in sweeps.items()},
                          progress=False)
    for cond, (_, _, report) in sweeps.items():
        for u in report["units"]:
            got = next(x for x in res["units"] if x["train"] == cond and x["unit"] == u["unit"])
            # the same network on the same test split: the sweep's own per-condition number
            assert got["test"][cond]["top1"] == pytest.approx(u["test"]["top1"], abs=1e-12)
            assert got["test"][cond]["recall"] == pytest.approx(u["test"]["recall"], abs=1e-12)
    # a network trained on plain digits does far worse on inverted ones than at home, and the reverse
    for tr, te in (("plain", "inverted"), ("inverted", "plain")):
        home, away = cell(res, tr, tr, "hstnn", 0.5), cell(res, tr, te, "hstnn", 0.5)
        assert home is not None and away is not None
        assert away["mean"] < home["mean"] - 0.2, (tr, te, home, away)
    assert {r["model"] for r in res["summary"]} == {"adaptation", "hstnn", "direct_hybrid", "snn"}


def test_cross_condition_refuses_features_of_other_front_ends(sweeps: dict, tmp_path: Path) -> None:
    fs = digits_features()
    wide = FeatureSet(features=np.concatenate([fs.features, fs.features], axis=2), labels=fs.labels, split=fs.split,
                      group=fs.group, env=fs.env, num_classes=fs.num_classes, meta={})
    path = save_feature_set(tmp_path / "wide.safetensors", wide)
    with pytest.raises(LearningError, match=r"wide\.safetensors"):
        cross_condition({"plain": sweeps["plain"][0]}, {"wide": path}, progress=False)
    with pytest.raises(LearningError, match=r"no report\.json"):
        cross_condition({"plain": tmp_path}, {"plain": sweeps["plain"][1]}, progress=False)


def test_cli_writes_report_and_plot(sweeps: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--sweep", *(f"{c}={d}" for c, (d, _, _) in sweeps.items()),
            "--features", *(f"{c}={f}" for c, (_, f, _) in sweeps.items()), "--out", str(tmp_path)]
    assert cli.main(args) == 0
    result = json.loads((tmp_path / "cross_condition.json").read_text())
    # train x test x (adaptation, hstnn at 0.5 and 1, directly hybrid at 0.5, pure SNN)
    assert len(result["summary"]) == 2 * 2 * 5
    assert (tmp_path / "cross_condition.png").stat().st_size > 0
    assert "report:" in capsys.readouterr().out
