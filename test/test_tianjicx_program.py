"""Program manifest, its checks, and the per-core simulator against the whole-population integer forward pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hstnn_ros.tianjicx.enums import MappingStrategy
from hstnn_ros.tianjicx.errors import TianjicxError
from hstnn_ros.tianjicx.manifest import (
    MANIFEST_NAME,
    WEIGHTS_NAME,
    build_program,
    load_program,
    network_shapes,
    save_program,
)
from hstnn_ros.tianjicx.mapping import map_network
from hstnn_ros.tianjicx.quant import FloatLayer, FloatNet, QuantHSTNN, quantise
from hstnn_ros.tianjicx.sim import plot_vs_snn_ratio, run_program


def _layer(rng: np.random.Generator, fin: int, ns: int, nr: int) -> FloatLayer:
    return FloatLayer(
        w_snn=rng.normal(0, 1 / np.sqrt(fin), (ns, fin)),
        b_snn=rng.normal(0, 0.1, ns),
        w_rnn=rng.normal(0, 1 / np.sqrt(fin), (nr, fin)),
        w_rec=rng.normal(0, 1 / np.sqrt(nr + 1), (nr, nr)),
        b_rnn=rng.normal(0, 0.1, nr),
        decay=0.5,
        v_th=0.4,
    )


def _quant(rate: bool, sizes: tuple = ((40, 24), (70, 48)), seed: int = 0) -> tuple[QuantHSTNN, np.ndarray]:
    rng = np.random.default_rng(seed)
    layers, fin = [], 64
    for ns, nr in sizes:
        layers.append(_layer(rng, fin, ns, nr))
        fin = ns + nr
    net = FloatNet(64, 16, tuple(layers), rng.normal(0, 0.2, (10, fin)), rng.normal(0, 0.1, 10), rate)
    x = rng.random((24, 6, 64)) * 3
    x[..., :16] = x[..., :16] > 2.0
    q = quantise(net, x)
    return q, q.quantise_input(x)


@pytest.mark.parametrize("rate", [True, False])
@pytest.mark.parametrize("strategy", [MappingStrategy.FIXED, MappingStrategy.VARIABLE])
def test_simulating_the_saved_program_equals_the_integer_network(
    tmp_path: Path, rate: bool, strategy: MappingStrategy
) -> None:
    q, xi = _quant(rate)
    mapping = map_network(network_shapes(q), strategy=strategy, variable_columns=32)
    save_program(tmp_path, *build_program(q, mapping, steps=xi.shape[1]))
    manifest, tensors = load_program(tmp_path)
    if strategy == MappingStrategy.VARIABLE:
        assert len(manifest["cores"]) > 5  # populations really split across cores
    report = run_program(manifest, tensors, xi, batch_size=10, progress=False)
    expect = q.run(xi)
    np.testing.assert_array_equal(report.logits, expect.logits)
    assert expect.spikes[0].any() and not expect.spikes[0].all()  # a meaningful test: some, not all, spike
    assert 0 < report.snn_ratio < 1
    assert report.latency_us > 0 and report.energy_uj > 0
    snn_core = next(c for c in report.cores if c.population == "layer1.snn")
    rnn_core = next(c for c in report.cores if c.population == "layer1.rnn")
    assert snn_core.acs > 0 and rnn_core.macs > 0


def test_readout_sees_rate_decoded_spikes(tmp_path: Path) -> None:
    """Rate and last-step decoders give different logits from the same weights (the integrator really counts)."""
    q, xi = _quant(True)
    logits_rate = q.run(xi).logits
    q.readout.rate_decoder = False
    assert not np.array_equal(logits_rate, q.run(xi).logits)


def _saved(tmp_path: Path) -> Path:
    q, xi = _quant(True)
    save_program(tmp_path, *build_program(q, map_network(network_shapes(q)), steps=xi.shape[1]))
    return tmp_path


def _edit(path: Path, fn) -> None:
    m = json.loads((path / MANIFEST_NAME).read_text())
    fn(m)
    (path / MANIFEST_NAME).write_text(json.dumps(m))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(format_version=99), "format_version"),
        (lambda m: m["cores"][0].update(columns=[0, 8]), "core 0: columns"),
        (lambda m: m["cores"][1].update(fan_in_padded=17), "fan_in_padded"),
        (lambda m: m["cores"][0]["routes"][0].update(offset=5), "route|written"),
        (lambda m: m["cores"][0]["primitives"][0].update(weights="core9.w"), "not in the weights file"),
        (lambda m: m["core_groups"][0]["cores"].pop(), "exactly once"),
        (lambda m: m["network"]["layers"][1].update(fan_in=3), "fan_in"),
        (lambda m: m["cores"][0]["primitives"][1]["params"].update(refractory_steps=40), "4 bits"),
        (lambda m: m["cores"][0]["primitives"][0].update(op="P99"), "op"),
        (lambda m: m["limits"].update(memory_bytes=1000), "exceed core memory"),
    ],
)
def test_hand_edited_inconsistent_manifest_is_refused(tmp_path: Path, edit, message: str) -> None:
    d = _saved(tmp_path)
    load_program(d)  # the untouched program is fine
    _edit(d, edit)
    with pytest.raises(TianjicxError, match=message):
        load_program(d)


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    d = _saved(tmp_path)
    (d / WEIGHTS_NAME).write_bytes((d / WEIGHTS_NAME).read_bytes()[:-1] + b"\x00")
    with pytest.raises(TianjicxError, match="SHA-256"):
        load_program(d)


def test_missing_program_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(TianjicxError, match=str(tmp_path)):
        load_program(tmp_path)


def test_latency_and_energy_plot_is_written(tmp_path: Path) -> None:
    reports = []
    for sizes in (((16, 48), (16, 48)), ((32, 32), (32, 32)), ((48, 16), (48, 16))):
        q, xi = _quant(True, sizes)
        m, t = build_program(q, map_network(network_shapes(q)), steps=xi.shape[1])
        reports.append(run_program(m, t, xi, progress=False))
    # more spiking neurons -> less recurrent work -> the RNN core group is smaller and cheaper
    assert reports[0].energy_uj > reports[2].energy_uj
    png = plot_vs_snn_ratio(reports, tmp_path / "fig.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibrated_weights_reproduce_the_calibration_drive_better_than_rounding() -> None:
    """With the float model's layer outputs the quantiser fits each INT8 operand to the drive it must reproduce
    (GPTQ): on the calibration windows the first layer's drive error is smaller than with rounding to nearest."""
    rng = np.random.default_rng(3)
    layers = (_layer(rng, 64, 40, 24), _layer(rng, 64, 30, 20))
    net = FloatNet(64, 16, layers, rng.normal(0, 0.2, (10, 50)), rng.normal(0, 0.1, 10), True)
    x = rng.random((200, 6, 64)) * 3
    x[..., :16] = x[..., :16] > 2.0
    outs = [(rng.random((200, 6, 64)) < 0.3).astype(np.float64), (rng.random((200, 6, 50)) < 0.3).astype(np.float64)]
    plain, fitted = quantise(net, x), quantise(net, x, layer_outputs=outs)

    def drive_error(q: QuantHSTNN) -> float:
        lay = q.layers[0]
        codes = q.quantise_input(x).reshape(-1, 64).astype(np.float64)  # INT8 inputs, exactly what P04 sees
        drive = codes @ lay.w_snn.astype(np.float64) * np.exp2(lay.exp_snn) + lay.b_snn * np.exp2(lay.exp_snn)
        real = x.reshape(-1, 64)
        return float(np.mean((drive - (real @ layers[0].w_snn.T + layers[0].b_snn)) ** 2))

    assert drive_error(fitted) < 0.8 * drive_error(plain)  # 0.47 measured: far from the bound, whatever BLAS
    with pytest.raises(TianjicxError, match="layer_outputs must have shapes"):
        quantise(net, x, layer_outputs=outs[:1])


def test_a_core_program_without_the_product_its_lut_or_lif_reads_is_refused() -> None:
    q, xi = _quant(True)
    manifest, tensors = build_program(q, map_network(network_shapes(q)), steps=xi.shape[1])
    cid, core = next((i, c) for i, c in enumerate(manifest["cores"]) if c["primitives"][0]["op"] == "P04"
                     and len(c["primitives"]) > 1 and c["primitives"][1]["op"] in ("P07", "P08"))
    core["primitives"] = core["primitives"][1:]
    with pytest.raises(TianjicxError, match=f"core {cid}: primitive P0[78] has no input"):
        run_program(manifest, tensors, xi, progress=False)
