"""Export -> simulate round trip on a small HSTNN trained for a few seconds (sklearn digits, rows as time steps)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hstnn_ros.datasets.features import SPLIT_TEST, SPLIT_TRAIN, FeatureSet, save_feature_set
from hstnn_ros.model import HSTNN, Decoder, HSTNNConfig, LayerSpec, save_bundle
from hstnn_ros.tianjicx import MappingStrategy, TianjicxError, export_program, load_program, simulate_program
from hstnn_ros.tianjicx.onnx_export import ONNX_NAME, run_onnx

N_TRAIN = 1400


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """[N, 8, 16] windows: per step 8 spike features (pixel > 0.5) then the 8 grey values of one image row."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32) / 16.0
    return np.concatenate([(x > 0.5).astype(np.float32), x], axis=2), d.target.astype(np.int64)


def _train(decoder: Decoder, hidden: tuple[LayerSpec, ...], epochs: int = 20) -> HSTNN:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = _digits()
    cfg = HSTNNConfig(input_size=16, hidden=hidden, num_classes=10, input_spiking=8, bias=True, decoder=decoder)
    model = HSTNN(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x[:N_TRAIN]), torch.from_numpy(y[:N_TRAIN])
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(N_TRAIN, generator=g)
        for i in range(0, N_TRAIN, 100):
            idx = perm[i : i + 100]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def trained() -> HSTNN:
    return _train(Decoder.RATE, (LayerSpec(32, 32), LayerSpec(32, 32)))


@pytest.mark.slow  # trains a small HSTNN for a few seconds (shared module fixture)
def test_export_simulate_agrees_with_float_model(trained: HSTNN, tmp_path: Path) -> None:
    x, y = _digits()
    res = export_program(trained, x[:N_TRAIN], tmp_path)
    assert res.onnx_max_abs_diff is not None and res.onnx_max_abs_diff < 1e-4
    with torch.no_grad():
        float_logits = trained(torch.from_numpy(x[N_TRAIN:])).numpy()
    report = simulate_program(tmp_path, x[N_TRAIN:], y[N_TRAIN:], progress=False)  # float side from the ONNX graph
    assert report.accuracy_float == pytest.approx(float((float_logits.argmax(1) == y[N_TRAIN:]).mean()))
    assert report.accuracy_float > 0.8  # the model learnt something, so agreement is not trivial
    assert report.agreement is not None and report.agreement >= 0.99
    assert abs(report.accuracy_int - report.accuracy_float) <= 0.01
    s = report.summary()
    assert len(s["cores"]) == 5 and all(c["memory_bytes"] > 0 for c in s["cores"])
    assert s["latency_us_per_sample"] > 0 and s["energy_uj_per_sample"] > 0


@pytest.mark.slow  # trains a small HSTNN for a few seconds (shared module fixture)
def test_onnx_graph_matches_pytorch_on_other_batch_sizes(trained: HSTNN, tmp_path: Path) -> None:
    x, _ = _digits()
    export_program(trained, x[:64], tmp_path)
    for n in (1, 7, 33):
        with torch.no_grad():
            ref = trained(torch.from_numpy(x[-n:])).numpy()
        np.testing.assert_allclose(run_onnx(tmp_path / ONNX_NAME, x[-n:]), ref, atol=1e-4)


@pytest.mark.slow  # trains a small HSTNN for a few seconds (shared module fixture)
def test_last_step_decoder_and_variable_mapping_round_trip(tmp_path: Path) -> None:
    model = _train(Decoder.LAST, (LayerSpec(48, 16), LayerSpec(64, 32)), epochs=10)
    x, y = _digits()
    export_program(
        model, x[:N_TRAIN], tmp_path, strategy=MappingStrategy.VARIABLE, variable_columns=32, with_onnx=False
    )
    manifest, _ = load_program(tmp_path)
    assert any(g["strategy"] == "variable" and len(g["cores"]) > 2 for g in manifest["core_groups"])
    with torch.no_grad():
        float_logits = model(torch.from_numpy(x[N_TRAIN:])).numpy()
    report = simulate_program(tmp_path, x[N_TRAIN:], y[N_TRAIN:], float_logits=float_logits, progress=False)
    assert report.agreement >= 0.97


def test_unsupported_population_kind_is_refused(tmp_path: Path) -> None:
    cfg = HSTNNConfig(input_size=16, hidden=(LayerSpec(8, 8),), num_classes=10, nonspiking_kind="lstm")
    with pytest.raises(TianjicxError, match="LSTM"):
        export_program(HSTNN(cfg), np.zeros((2, 8, 16), np.float32), tmp_path)


@pytest.mark.slow  # trains a small HSTNN for a few seconds (shared module fixture)
def test_clis_export_and_simulate_a_bundle(trained: HSTNN, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hstnn_ros.data_tools.export_tianjicx import main as export_main
    from hstnn_ros.data_tools.tianjicx_sim import main as sim_main

    x, y = _digits()
    split = np.full(len(y), SPLIT_TEST, np.int8)
    split[:N_TRAIN] = SPLIT_TRAIN
    fs = FeatureSet(x, y, split, np.zeros(len(y), np.int32), np.zeros(len(y), np.int8), 10, input_spiking=8)
    data = save_feature_set(tmp_path / "digits.safetensors", fs)
    save_bundle(tmp_path / "bundle", {"hstnn": trained})
    prog = tmp_path / "p"
    assert export_main([str(tmp_path / "bundle"), "--out", str(prog), "--calib", str(data)]) == 0
    assert "fixed-core mapping" in capsys.readouterr().out
    png, js = tmp_path / "fig.png", tmp_path / "r.json"
    args = [str(prog), "--data", str(data), "--plot", str(png), "--json", str(js), "--min-agreement", "0.99"]
    assert sim_main(args) == 0
    assert "top-1 agreement with float" in capsys.readouterr().out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert json.loads(js.read_text())[str(prog)]["agreement_top1"] >= 0.99
    assert sim_main([str(tmp_path / "nowhere"), "--data", str(data)]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_shipped_fp16_bundle_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Shipped bundles store fp16 weights: the export quantises an fp32 copy and its ONNX graph matches PyTorch."""
    from hstnn_ros.data_tools.export_tianjicx import main as export_main

    from hstnn_ros import defaults
    from hstnn_ros.model import load_bundle

    bundle = defaults.shipped_models_dir() / "default"
    if not (bundle / "bundle.json").is_file():
        pytest.skip("no shipped default bundle")
    model = load_bundle(bundle).hstnn()
    assert model.readout.weight.dtype == torch.float16  # the case this test is about
    assert export_main([str(bundle), "--out", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    assert "onnx:" in out and (tmp_path / "p" / ONNX_NAME).is_file()
