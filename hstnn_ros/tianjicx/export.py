"""Export a trained float HSTNN as a TianjicX-style core program, and simulate an exported program on data.

``export_program``: float model -> :class:`~hstnn_ros.tianjicx.quant.FloatNet` -> INT8 network (calibrated on data)
-> core mapping -> ``program.json`` + ``weights.safetensors`` + ``float_model.onnx``.
``simulate_program``: program directory + float features -> integer simulation, compared with the float model
(run from the ONNX graph stored beside the program, so simulation needs no torch model code).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hstnn_ros.model import HSTNN, Decoder, NonSpikingKind, SpikingKind
from hstnn_ros.model.network import HybridLayer
from hstnn_ros.model.neurons import LIF, RNN
from hstnn_ros.tianjicx.enums import LutWidth, MappingStrategy
from hstnn_ros.tianjicx.errors import TianjicxError
from hstnn_ros.tianjicx.manifest import build_program, load_program, network_shapes, save_program
from hstnn_ros.tianjicx.mapping import CoreLimits, Mapping, map_network
from hstnn_ros.tianjicx.onnx_export import ONNX_NAME, export_onnx, run_onnx
from hstnn_ros.tianjicx.quant import FloatLayer, FloatNet, QuantHSTNN, quantise, quantise_features
from hstnn_ros.tianjicx.sim import CostModel, SimReport, compare, run_program

log = logging.getLogger(__name__)

#: ONNX and PyTorch logits must agree this closely (float32, unrolled graph).
ONNX_ATOL = 1e-4


def _np(t: torch.Tensor | None, shape: tuple[int, ...]) -> np.ndarray:
    return np.zeros(shape) if t is None else t.detach().cpu().double().numpy().reshape(shape)


def _as_hstnn(model: torch.nn.Module) -> HSTNN:
    if not isinstance(model, HSTNN):
        raise TianjicxError(f"expected an hstnn_ros.model.HSTNN, got {type(model).__name__}")
    return model


def _lif_rnn(layer: HybridLayer, i: int) -> tuple[LIF, RNN]:
    """The two populations of hybrid layer ``i``, typed as the kinds the chip program expresses."""
    snn, rnn = layer.snn, layer.rnn
    if type(snn) is not LIF or type(rnn) is not RNN:
        raise TianjicxError(f"layer {i}: TianjicX export needs an LIF + vanilla RNN hybrid layer, got "
                            f"{type(snn).__name__} + {type(rnn).__name__}")
    return snn, rnn


def float_net_from_hstnn(model: torch.nn.Module) -> FloatNet:
    """Read the float weights of an ``hstnn_ros.model.HSTNN`` (LIF + vanilla RNN populations, dense layers).

    Raises:
        TianjicxError: not an HSTNN, or a population kind the chip program does not express (ALIF, LSTM,
            convolutional).
    """
    model = _as_hstnn(model)
    cfg = model.config
    if cfg.spiking_kind != SpikingKind.LIF or cfg.nonspiking_kind != NonSpikingKind.RNN:
        raise TianjicxError(
            f"TianjicX export supports LIF + vanilla RNN populations; this model has {cfg.spiking_kind.name} + "
            f"{cfg.nonspiking_kind.name}: retrain with spiking_kind=LIF, nonspiking_kind=RNN"
        )
    layers = []
    fan_in = cfg.input_size
    for i, layer in enumerate(model.hybrid_layers):
        snn, rnn = _lif_rnn(layer, i)
        n_s, n_r = snn.size, rnn.size
        layers.append(
            FloatLayer(
                w_snn=_np(snn.fc.weight, (n_s, fan_in)),
                b_snn=_np(snn.fc.bias, (n_s,)),
                w_rnn=_np(rnn.fc_in.weight, (n_r, fan_in)),
                w_rec=_np(rnn.fc_rec.weight, (n_r, n_r)),
                b_rnn=_np(rnn.fc_in.bias, (n_r,)) + _np(rnn.fc_rec.bias, (n_r,)),
                decay=float(snn.decay),
                v_th=float(snn.v_th),
            )
        )
        if not layers[-1].w_snn.size and not layers[-1].w_rnn.size:
            raise TianjicxError(f"layer {i} has no neurons")
        fan_in = n_s + n_r
    ro = model.readout
    return FloatNet(
        input_size=cfg.input_size,
        input_spiking=cfg.input_spiking,
        layers=tuple(layers),
        w_out=_np(ro.weight, tuple(ro.weight.shape)),
        b_out=_np(ro.bias, (ro.weight.shape[0],)),
        rate_decoder=cfg.decoder == Decoder.RATE,
    )


@dataclass
class ExportResult:
    """Where the program went and what it contains."""

    out_dir: Path
    manifest_path: Path
    onnx_path: Path | None
    quant: QuantHSTNN
    mapping: Mapping
    onnx_max_abs_diff: float | None


def export_program(
    model: torch.nn.Module,
    calib_x: np.ndarray,
    out_dir: Path,
    *,
    net: FloatNet | None = None,
    strategy: MappingStrategy | None = None,
    limits: CoreLimits | None = None,
    variable_columns: int | None = None,
    lut_width: LutWidth = LutWidth.BITS_12,
    with_onnx: bool = True,
    meta: dict | None = None,
) -> ExportResult:
    """Quantise ``model`` on ``calib_x[N, T, F]``, map it, and write the program (and ONNX) into ``out_dir``.

    ``variable_columns`` fixes the workload (neurons) per core of variable-core layers (default: as many as fit).
    ``net`` overrides the weight extraction (default :func:`float_net_from_hstnn`; then the model's layer outputs on
    ``calib_x`` calibrate the weights, see :func:`~hstnn_ros.tianjicx.quant.quantise`). The ONNX graph is checked
    against PyTorch on the calibration windows and refused when they differ by more than ``ONNX_ATOL``.
    """
    calib_x = np.asarray(calib_x, dtype=np.float32)
    # Bundles may store fp16 weights (the shipped ones do); export works on an fp32 copy, the caller's model untouched.
    model = copy.deepcopy(model).float()
    layer_outputs = None
    if net is None:
        net = float_net_from_hstnn(model)
        # what every layer of the float model outputs on the calibration windows: the quantiser fits each INT8
        # operand to the drive it must reproduce there
        with torch.no_grad():
            rec = _as_hstnn(model).eval().run(torch.from_numpy(calib_x))
        layer_outputs = [torch.cat([s, r], dim=-1).numpy() for s, r in zip(rec.spikes, rec.rnn_out, strict=True)]
    q = quantise(net, calib_x, lut_width=lut_width, layer_outputs=layer_outputs)
    mapping = map_network(
        network_shapes(q),
        limits=limits,
        strategy=strategy,
        lut_entries=2 ** int(lut_width),
        variable_columns=variable_columns,
    )
    manifest, tensors = build_program(q, mapping, steps=int(calib_x.shape[1]))
    manifest["meta"].update(meta or {})
    out_dir = Path(out_dir)
    onnx_path, diff = None, None
    out_dir.mkdir(parents=True, exist_ok=True)
    if with_onnx:
        sample = torch.from_numpy(calib_x[: min(64, calib_x.shape[0])])
        onnx_path = export_onnx(model, sample[:2], out_dir / ONNX_NAME)
        with torch.no_grad():
            ref = model.eval()(sample).cpu().numpy()
        diff = float(np.abs(run_onnx(onnx_path, sample.numpy()) - ref).max())
        if diff > ONNX_ATOL:
            raise TianjicxError(f"{onnx_path}: ONNX logits differ from PyTorch by {diff:.3g} (> {ONNX_ATOL})")
        manifest["meta"]["onnx"] = {"file": ONNX_NAME, "max_abs_diff_vs_torch": diff}
    manifest_path = save_program(out_dir, manifest, tensors)
    log.info("exported %d cores in %d groups to %s", len(mapping.cores), len(mapping.groups), out_dir)
    return ExportResult(out_dir, manifest_path, onnx_path, q, mapping, diff)


def simulate_program(
    program_dir: Path,
    x: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    float_logits: np.ndarray | None = None,
    cost: CostModel | None = None,
    progress: bool = True,
) -> SimReport:
    """Run the program on float features ``x[N, T, F]`` and compare with the float model.

    The float logits come from ``float_logits`` or, when absent, from the program's ONNX graph (if exported).
    """
    program_dir = Path(program_dir)
    manifest, tensors = load_program(program_dir)
    net = manifest["network"]
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != net["input_size"]:
        raise TianjicxError(f"data must be [N, T, {net['input_size']}] for {program_dir}, got {x.shape}")
    x_int = quantise_features(x, net["input_spiking"], net["input_exp"])
    report = run_program(manifest, tensors, x_int, cost=cost, progress=progress)
    if float_logits is None and (program_dir / ONNX_NAME).is_file():
        float_logits = run_onnx(program_dir / ONNX_NAME, x)
    if float_logits is not None:
        compare(report, float_logits, labels)
    elif labels is not None:
        report.accuracy_int = float((report.predictions == np.asarray(labels)).mean())
    return report
