"""INT8 quantisation of a hybrid network and its integer forward pass written in the TianjicX primitives.

Scheme (DESIGN.md section 10, paper Methods "Details of implementation on neuromorphic hardware"):

* Activations are INT8 with power-of-two scales: a spike travels as the INT8 level ``2**SPIKE_EXP`` (scale
  ``2**-SPIKE_EXP``; the P08 0/1 output goes through an INT8 P07 table ``{0: 0, 1: 64}``), so that spike rows and RNN
  rows of the next P04 have comparable scales and one INT8 weight range serves both; RNN outputs are a sigmoid in (0, 1)
  stored as ``round(128 * r)`` clipped to 127 (scale 2**-7), real-valued network inputs use ``2**-k`` with k chosen
  by calibration so that the largest calibration value maps to at most 127. The layer output is the concatenation
  ``[spikes, INT8 RNN outputs]`` exactly as in the float model.
* Weights are INT8 and accumulate in INT32 (P04, saturating per add). Each P04 operand has power-of-two accumulator
  scales ``s_acc`` (one per LIF neuron, one per RNN population and one for the readout); the INT8 weight of input row
  r approximates ``W[r] * s_in[r] / s_acc`` (input scales are folded into the weights, so one INT8 vector can mix
  spikes and real values). Biases become INT32 (``b / s_acc``). Without calibration activity every weight is rounded
  to nearest at the finest scale that does not clip. With the float model's layer outputs on the calibration windows
  (what :func:`~hstnn_ros.tianjicx.export.export_program` passes) the scale is the one, of that and two finer ones
  that clip the largest weights, with the smallest error on the calibration drive, and the INT8 weights are chosen
  by GPTQ (each rounding error is compensated on the inputs not yet rounded, bias last): on the digits test network
  this halves the drive error and the spike mismatches of the first layer compared with rounding to nearest.
* Spiking populations are P08 LIF neurons: the stored potential is the float model's ``decay * u * (1 - s)`` (reset
  mode 0 to VR = 0, multiplicative leak ``alpha = round(256 * decay)``); each LIF neuron k has its own power-of-two
  accumulator scale ``s_k`` (per weight column) and threshold ``ceil(v_th / s_k) - 1`` held in P08's per-neuron
  Vtheta with Vth0 = 0 (the float model fires on ``u >= v_th``, P08 on ``V > th``), the 28-bit
  membrane is the INT32 accumulator, no floor, no refractory time, fire type 4 (0/1 spikes) followed by the
  spike-level P07.
* RNN populations are one P04 over ``[y_t, r_{t-1}]`` (input and recurrent weights stacked) followed by a P07 lookup
  of an INT8 sigmoid table (12-bit address by default, shift chosen so the table spans about +-8 of the float
  pre-activation; each entry is the sigmoid at the middle of the accumulator range its address covers).
* Readout: with the rate decoder the spikes of the last layer are summed over time by a P04 (spikes as ACs) into a P08
  used as an integrator (no reset, no leak, threshold out of reach); the 1/T of the mean is folded into those weights.
  At the last step a P04 over ``r_T`` adds the RNN part. With the last-step decoder one P04 runs over ``[s_T, r_T]``.
  The predicted class is the argmax of the INT32 logits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hstnn_ros.tianjicx.enums import FireType, LutWidth, ResetMode
from hstnn_ros.tianjicx.errors import TianjicxError
from hstnn_ros.tianjicx.primitives import (
    V28_MAX,
    V28_MIN,
    LifParams,
    lut_lookup,
    p04_matvec,
    p08_lif,
    pack_v_state,
    unpack_v_state,
)

log = logging.getLogger(__name__)

#: Exponent of the INT8 RNN output scale: r_int = round(r * 2**RNN_OUT_EXP).
RNN_OUT_EXP = 7
#: A spike travels between cores as the INT8 value 2**SPIKE_EXP.
SPIKE_EXP = 6


def spike_level_table() -> np.ndarray:
    """INT8 P07 table (8-bit address, INT8 input: direct index) mapping a 0/1 spike to 0 / ``2**SPIKE_EXP``."""
    table = np.zeros(256, np.int8)
    table[1] = 2**SPIKE_EXP
    return table


SPIKE_TABLE = spike_level_table()
#: Float pre-activation half-range the sigmoid table should span.
SIGMOID_SPAN = 8.0
#: At most this many calibration rows (window steps) feed the weight fit of one operand.
CALIB_ROWS = 20000


# --------------------------------------------------------------------------------------------------- float side


@dataclass(frozen=True)
class FloatLayer:
    """One float hybrid layer, weights as ``[out, in]`` numpy arrays (torch ``nn.Linear`` convention)."""

    w_snn: np.ndarray  #: [n_snn, fan_in]
    b_snn: np.ndarray  #: [n_snn]
    w_rnn: np.ndarray  #: [n_rnn, fan_in]
    w_rec: np.ndarray  #: [n_rnn, n_rnn]
    b_rnn: np.ndarray  #: [n_rnn]
    decay: float
    v_th: float

    @property
    def n_snn(self) -> int:
        return int(self.w_snn.shape[0])

    @property
    def n_rnn(self) -> int:
        return int(self.w_rnn.shape[0])

    @property
    def fan_in(self) -> int:
        return int(self.w_snn.shape[1] if self.n_snn else self.w_rnn.shape[1])


@dataclass(frozen=True)
class FloatNet:
    """The float weights of a hybrid network in the form the quantiser needs (extracted from an ``HSTNN``)."""

    input_size: int
    input_spiking: int
    layers: tuple[FloatLayer, ...]
    w_out: np.ndarray  #: [classes, n_snn_last + n_rnn_last], columns in the order [d(s), r_T]
    b_out: np.ndarray  #: [classes]
    rate_decoder: bool  #: True: d = mean of spikes over time; False: last step's spikes


# --------------------------------------------------------------------------------------------------- integer side


def quantise_features(x: np.ndarray, input_spiking: int, input_exp: int) -> np.ndarray:
    """Float features ``[..., F]`` -> INT8: the first ``input_spiking`` (0/1 spikes) become 0 / ``2**SPIKE_EXP``,
    the rest scale by ``2**input_exp``, round half to even and saturate to [-128, 127]."""
    x = np.asarray(x, dtype=np.float64)
    out = np.clip(np.round(x * 2.0**input_exp), -128, 127)
    out[..., :input_spiking] = np.clip(np.round(x[..., :input_spiking]) * 2**SPIKE_EXP, -128, 127)
    return out.astype(np.int8)


@dataclass
class QuantLayer:
    """One hybrid layer as INT8/INT32 primitive operands."""

    n_snn: int
    n_rnn: int
    fan_in: int
    w_snn: np.ndarray  #: int8 [fan_in, n_snn] (P04 layout: rows = inputs)
    b_snn: np.ndarray  #: int32 [n_snn]
    lif: LifParams
    exp_snn: np.ndarray  #: int [n_snn]: neuron k accumulates at scale 2**exp_snn[k]
    theta_snn: np.ndarray  #: int32 [n_snn]: per-neuron threshold (P08 Vtheta, Vth0 = 0)
    w_rnn: np.ndarray  #: int8 [fan_in + n_rnn, n_rnn]
    b_rnn: np.ndarray  #: int32 [n_rnn]
    exp_rnn: int
    lut: np.ndarray  #: int8 [2**lut_width]
    lut_width: LutWidth
    lut_shift: int


@dataclass
class QuantReadout:
    """The readout: spike-count part (integrated each step) and RNN part (at the last step)."""

    w_spk: np.ndarray  #: int8 [n_snn_last, classes]
    w_rnn: np.ndarray  #: int8 [n_rnn_last, classes]
    bias: np.ndarray  #: int32 [classes]
    exp: int
    rate_decoder: bool
    integrator: LifParams


@dataclass
class QuantHSTNN:
    """An INT8 hybrid network whose forward pass is made of P04, P07 and P08 calls only."""

    input_size: int
    input_spiking: int
    input_exp: int  #: real-valued inputs: x_int = clip(round(x * 2**input_exp), -128, 127)
    layers: list[QuantLayer]
    readout: QuantReadout
    num_classes: int
    meta: dict = field(default_factory=dict)

    def quantise_input(self, x: np.ndarray) -> np.ndarray:
        """Float features ``[..., F]`` -> INT8 (see :func:`quantise_features`)."""
        return quantise_features(x, self.input_spiking, self.input_exp)

    def run(self, x_int: np.ndarray) -> QuantRecord:
        """Integer forward pass over ``x_int[B, T, F]`` int8; returns INT32 logits and per-layer activity."""
        x_int = np.asarray(x_int)
        if x_int.ndim != 3 or x_int.shape[2] != self.input_size:
            raise TianjicxError(f"input must be int8 [B, T, {self.input_size}], got {x_int.shape} {x_int.dtype}")
        b, steps, _ = x_int.shape
        lif_state = [
            pack_v_state(np.zeros((b, q.n_snn), np.int64), np.zeros((b, q.n_snn), np.int64)) for q in self.layers
        ]
        lif_theta = [np.broadcast_to(q.theta_snn, (b, q.n_snn)).copy() for q in self.layers]
        r_prev = [np.zeros((b, q.n_rnn), np.int8) for q in self.layers]
        spikes_rec = [np.zeros((b, steps, q.n_snn), np.int8) for q in self.layers]
        rnn_rec = [np.zeros((b, steps, q.n_rnn), np.int8) for q in self.layers]
        ro = self.readout
        n_spk = self.layers[-1].n_snn
        integ_state = pack_v_state(np.zeros((b, ro.bias.shape[0]), np.int64), np.zeros((b, ro.bias.shape[0]), int))
        integ_theta = np.zeros((b, 1), np.int32)
        for t in range(steps):
            y = x_int[:, t]
            for i, q in enumerate(self.layers):
                parts = []
                if q.n_snn:
                    u = p04_matvec(y, q.w_snn, pad_bias(q.b_snn))[:, : q.n_snn]
                    st = p08_lif(lif_state[i], lif_theta[i], u, q.lif)
                    lif_state[i], lif_theta[i] = st.state, st.vtheta
                    s = lut_lookup(st.output, SPIKE_TABLE, LutWidth.BITS_8, 0)  # 0/1 -> INT8 spike level
                    spikes_rec[i][:, t] = s
                    parts.append(s)
                if q.n_rnn:
                    acc = p04_matvec(np.concatenate([y, r_prev[i]], axis=1), q.w_rnn, pad_bias(q.b_rnn))
                    r = lut_lookup(acc[:, : q.n_rnn], q.lut, q.lut_width, q.lut_shift)
                    r_prev[i] = r
                    rnn_rec[i][:, t] = r
                    parts.append(r)
                y = np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]
            if ro.rate_decoder and n_spk:
                u = p04_matvec(spikes_rec[-1][:, t], ro.w_spk)[:, : ro.bias.shape[0]]
                integ_state = p08_lif(integ_state, integ_theta, u, ro.integrator).state
        classes = ro.bias.shape[0]
        if ro.rate_decoder:
            spk_part = unpack_v_state(integ_state)[0].astype(np.int64) if n_spk else np.zeros((b, classes), np.int64)
            logits = spk_part + p04_matvec(rnn_rec[-1][:, -1], ro.w_rnn, pad_bias(ro.bias))[:, :classes]
        else:
            feats = np.concatenate([spikes_rec[-1][:, -1], rnn_rec[-1][:, -1]], axis=1)
            w = np.concatenate([ro.w_spk, ro.w_rnn], axis=0)
            logits = p04_matvec(feats, w, pad_bias(ro.bias))[:, :classes].astype(np.int64)
        return QuantRecord(logits=logits, spikes=spikes_rec, rnn_out=rnn_rec)


@dataclass
class QuantRecord:
    """Integer forward results: logits (INT32 range, as int64) and the INT8 layer outputs over time (spikes as the
    levels 0 / ``2**SPIKE_EXP``, RNN outputs as ``round(128 r)``)."""

    logits: np.ndarray
    spikes: list[np.ndarray]
    rnn_out: list[np.ndarray]


def pad_bias(b: np.ndarray) -> np.ndarray:
    """Bias padded with zeros to the P04 output width (a multiple of 32)."""
    n = b.shape[0]
    return np.pad(b.astype(np.int64), (0, -(-n // 32) * 32 - n))


# --------------------------------------------------------------------------------------------------- quantiser


def _pow2_exp_for(max_abs: float, limit: float) -> int:
    """Exponent e with ``max_abs / 2**e <= limit`` and e as small as possible (finest power-of-two step)."""
    if max_abs <= 0 or not math.isfinite(max_abs):
        return -20
    return math.ceil(math.log2(max_abs / limit))


def _fit_int8(
    w_t: np.ndarray,
    row_exps: np.ndarray,
    bias: np.ndarray,
    inputs: np.ndarray | None,
    *,
    per_column: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """INT8 weights, power-of-two accumulator exponents and INT32 biases for one P04 operand.

    ``w_t[in, out]`` are float weights on inputs whose INT8 codes are ``x / 2**row_exps``; ``bias[out]`` float.
    Exponents are per output column (``per_column``) or one for the whole operand (a shared LUT or logit scale).

    Without calibration ``inputs[R, in]`` (float layer inputs, one row per window and step) this is round to nearest
    at the finest exponent that does not clip. With them, the exponent is the one (of that and the next two finer,
    which clip the largest weights) with the smallest drive error on the calibration inputs, and the integer weights
    are chosen by GPTQ (Frantar et al., ICLR 2023: inputs in order of decreasing energy, each rounding error spread
    over the inputs not yet rounded through the Cholesky factor of the damped inverse Hessian ``(X^T X)^-1``), the
    bias (INT32, effectively continuous) last. This minimises the drive error ``|X (W - W_int s)|^2`` that decides
    spikes and sigmoid outputs, rather than each weight's own rounding error.
    """
    w_t = np.asarray(w_t, np.float64)
    k, m = w_t.shape
    scaled = w_t * np.exp2(row_exps)[:, None]  # weight per INT8 input code
    col_max = np.abs(scaled).max(axis=0, initial=0.0)
    base = np.array([_pow2_exp_for(float(v), 127.0) for v in col_max], np.int64) if m else np.zeros(0, np.int64)
    if not per_column and m:
        base = np.full(m, base.max())
    b = np.asarray(bias, np.float64)
    if inputs is None or not inputs.size or k == 0 or m == 0:
        q = np.clip(np.round(scaled / np.exp2(base)[None, :]), -127, 127)
        return q.astype(np.int8), base, _bias(b, base)
    codes = np.concatenate([inputs / np.exp2(row_exps)[None, :], np.ones((inputs.shape[0], 1))], axis=1)
    h = codes.T @ codes / codes.shape[0]  # [k + 1, k + 1], the bias input (always 1) last
    damp = 0.01 * float(np.mean(np.diag(h)[:k])) + 1e-12
    h[np.arange(k + 1), np.arange(k + 1)] += damp
    # exponent: drive error of plain rounding for the non-clipping exponent and two finer ones
    best, best_err = base.copy(), np.full(m, np.inf)
    for shift in range(3):
        e = base - shift
        d = scaled - np.clip(np.round(scaled / np.exp2(e)), -127, 127) * np.exp2(e)
        err = np.einsum("im,ij,jm->m", d, h[:k, :k], d)
        if not per_column:
            err = np.full(m, err.sum())
        better = err < best_err
        best[better], best_err[better] = e[better], err[better]
    step = np.exp2(best)[None, :]
    order = np.concatenate([np.argsort(-np.diag(h)[:k], kind="stable"), [k]])
    hp = h[np.ix_(order, order)]
    u = np.linalg.cholesky(np.linalg.inv(hp)).T  # upper: H^-1 = U^T U
    w = np.concatenate([scaled, b[None, :]], axis=0)[order].copy()
    q = np.zeros((k, m))
    for i in range(k):
        qi = np.clip(np.round(w[i] / step[0]), -127, 127)
        err = (w[i] - qi * step[0]) / u[i, i]
        w[i:] -= np.outer(u[i, i:], err)
        q[order[i]] = qi
    return q.astype(np.int8), best, _bias(w[k], best)


def _bias(b: np.ndarray, exp: int | np.ndarray) -> np.ndarray:
    scale = np.exp2(np.asarray(exp, np.float64))
    return np.clip(np.round(np.asarray(b, np.float64) / scale), -(2**31), 2**31 - 1).astype(np.int64)


def sigmoid_lut(acc_exp: int, width: LutWidth = LutWidth.BITS_12) -> tuple[np.ndarray, int]:
    """INT8 sigmoid table for P07 reading an INT32 accumulator at scale ``2**acc_exp``, and its shift.

    The shift s (address = floor(acc / 4**s)) is chosen so that the table's address range spans about
    ``+-SIGMOID_SPAN`` of the float pre-activation. Signed address a covers the accumulators
    ``a * 4**s .. (a + 1) * 4**s - 1``; its entry is ``round(128 * sigmoid(m * 2**acc_exp))`` clipped to 127 at the
    middle ``m = a * 4**s + (4**s - 1) / 2`` of that range (the floor in the address would otherwise bias every
    output down by half an address step).
    """
    bits = int(width)
    half = 2 ** (bits - 1)
    # want half * 4**s * 2**acc_exp ~= SIGMOID_SPAN
    s = max(0, round((math.log2(SIGMOID_SPAN / half) - acc_exp) / 2))
    a = np.arange(2**bits, dtype=np.int64)
    signed = np.where(a >= half, a - 2**bits, a)
    # address a holds every accumulator in [a * 4**s, (a + 1) * 4**s - 1]: tabulate the middle of that range
    acc_mid = signed * 4.0**s + (4.0**s - 1) / 2
    table = np.round(2.0**RNN_OUT_EXP / (1.0 + np.exp(-acc_mid * 2.0**acc_exp)))
    table = np.clip(table, -128, 127).astype(np.int8)
    return table, int(s)


def _rows(a: np.ndarray, limit: int = CALIB_ROWS) -> np.ndarray:
    """``[N, T, n]`` -> ``[<= limit, n]`` float64 rows (an evenly spaced subset when there are more)."""
    a = np.asarray(a, np.float64).reshape(-1, a.shape[-1])
    return a if a.shape[0] <= limit else a[np.linspace(0, a.shape[0] - 1, limit).astype(np.int64)]


def quantise(  # noqa: PLR0915  layer-by-layer calibration recipe
    net: FloatNet,
    calib_x: np.ndarray,
    lut_width: LutWidth = LutWidth.BITS_12,
    *,
    layer_outputs: Sequence[np.ndarray] | None = None,
) -> QuantHSTNN:
    """Quantise a float hybrid network, choosing the input scale on calibration data ``calib_x[N, T, F]``.

    ``layer_outputs[i]`` is what hybrid layer i of the float model outputs on ``calib_x`` (``[N, T, n_snn + n_rnn]``,
    spikes then RNN outputs, e.g. from ``HSTNN.run``). With them every P04 operand is fitted to the drive it must
    reproduce on those windows (see :func:`_fit_int8`); without them (or with too few windows to pin the fit down)
    each weight rounds to nearest. The input scale comes from the largest absolute real-valued calibration feature.
    """
    calib_x = np.asarray(calib_x, dtype=np.float64)
    if calib_x.ndim != 3 or calib_x.shape[2] != net.input_size:
        raise TianjicxError(f"calibration data must be [N, T, {net.input_size}], got {calib_x.shape}")
    if layer_outputs is not None:
        want = [(calib_x.shape[0], calib_x.shape[1], fl.n_snn + fl.n_rnn) for fl in net.layers]
        got = [tuple(np.shape(a)) for a in layer_outputs]
        if got != want:
            raise TianjicxError(f"layer_outputs must have shapes {want} (calibration windows x steps x layer size), "
                                f"got {got}")
    real = calib_x[..., net.input_spiking :]
    in_exp = -_pow2_exp_for(float(np.abs(real).max(initial=0.0)), 127.0) if real.size else 0
    row_exps = np.concatenate(
        [np.full(net.input_spiking, -float(SPIKE_EXP)), np.full(net.input_size - net.input_spiking, -float(in_exp))]
    )
    n_rows = calib_x.shape[0] * calib_x.shape[1]

    def fit_inputs(x: np.ndarray | None, k: int) -> np.ndarray | None:
        # too few calibration rows leave the fit free to distort weights of inputs it never saw vary: round instead
        return None if x is None or n_rows < 4 * (k + 1) else x

    layers: list[QuantLayer] = []
    y_cal: np.ndarray | None = calib_x if layer_outputs is not None else None
    for li, fl in enumerate(net.layers):
        if fl.fan_in != row_exps.shape[0]:
            raise TianjicxError(
                f"layer {li}: fan-in {fl.fan_in} does not match the previous output {row_exps.shape[0]}"
            )
        # Per-neuron power-of-two accumulator scales: the threshold of neuron k is ceil(v_th / s_k) - 1 (the float
        # model fires on u >= v_th, P08 on V > th), held in P08's per-neuron Vtheta with Vth0 = 0 and no adaptation.
        x_in = None if y_cal is None else _rows(y_cal)
        w_snn, col_exps, b_snn = _fit_int8(
            fl.w_snn.T, row_exps, fl.b_snn, fit_inputs(x_in, fl.fan_in), per_column=True
        )
        theta = np.array([math.ceil(fl.v_th / 2.0 ** int(e)) - 1 for e in col_exps], np.int64)
        if theta.size and not (theta.min() >= 0 and theta.max() < V28_MAX):
            raise TianjicxError(f"layer {li}: thresholds {theta.min()}..{theta.max()} do not fit the 28-bit membrane")
        lif = LifParams(
            v_threshold=0,
            v_floor=V28_MIN,
            reset_value=0,
            reset_mode=ResetMode.TO_VALUE,
            leak_multiplicative_enable=True,
            leak_alpha_256=round(256 * fl.decay),
            leak_beta=0,
            fire_type=FireType.SPIKE,
        )
        out_cal = None if layer_outputs is None else np.asarray(layer_outputs[li], np.float64)
        if fl.n_rnn:
            rec_exps = np.full(fl.n_rnn, -float(RNN_OUT_EXP))
            w_cat = np.concatenate([fl.w_rnn.T, fl.w_rec.T], axis=0)
            x_rnn = None
            if y_cal is not None and out_cal is not None:
                r_prev = np.zeros_like(out_cal[..., fl.n_snn :])
                r_prev[:, 1:] = out_cal[:, :-1, fl.n_snn :]
                x_rnn = _rows(np.concatenate([y_cal, r_prev], axis=2))
            w_rnn, e_rnn, b_rnn = _fit_int8(
                w_cat, np.concatenate([row_exps, rec_exps]), fl.b_rnn, fit_inputs(x_rnn, w_cat.shape[0]),
                per_column=False,
            )
            exp_rnn = int(e_rnn[0])
            lut, shift = sigmoid_lut(exp_rnn, lut_width)
        else:
            w_rnn, exp_rnn, b_rnn = np.zeros((fl.fan_in, 0), np.int8), 0, np.zeros(0, np.int64)
            lut, shift = np.zeros(2 ** int(lut_width), np.int8), 0
        layers.append(
            QuantLayer(
                n_snn=fl.n_snn,
                n_rnn=fl.n_rnn,
                fan_in=fl.fan_in,
                w_snn=w_snn,
                b_snn=b_snn,
                lif=lif,
                exp_snn=col_exps,
                theta_snn=theta.astype(np.int32),
                w_rnn=w_rnn,
                b_rnn=b_rnn,
                exp_rnn=exp_rnn,
                lut=lut,
                lut_width=LutWidth(lut_width),
                lut_shift=shift,
            )
        )
        row_exps = np.concatenate([np.full(fl.n_snn, -float(SPIKE_EXP)), np.full(fl.n_rnn, -float(RNN_OUT_EXP))])
        y_cal = out_cal
    last = net.layers[-1]
    steps = calib_x.shape[1]
    spk_exps = np.full(last.n_snn, -SPIKE_EXP - (math.log2(steps) if net.rate_decoder else 0.0))
    x_out = None
    if y_cal is not None:
        spk = y_cal[..., : last.n_snn]
        d = spk.mean(axis=1) if net.rate_decoder else spk[:, -1]
        x_out = np.concatenate([d, y_cal[:, -1, last.n_snn :]], axis=1)
    w_all, e_out, b_out = _fit_int8(
        net.w_out.T,
        np.concatenate([spk_exps, np.full(last.n_rnn, -float(RNN_OUT_EXP))]),
        net.b_out,
        None if x_out is None or x_out.shape[0] < 4 * (net.w_out.shape[1] + 1) else x_out,
        per_column=False,
    )
    exp_out = int(e_out[0])
    classes = int(net.w_out.shape[0])
    integrator = LifParams(
        v_threshold=V28_MAX,
        v_floor=V28_MIN,
        reset_mode=ResetMode.NONE,
        leak_multiplicative_enable=False,
        leak_beta=0,
        fire_type=FireType.SPIKE,
    )
    readout = QuantReadout(
        w_spk=w_all[: last.n_snn],
        w_rnn=w_all[last.n_snn :],
        bias=b_out,
        exp=exp_out,
        rate_decoder=net.rate_decoder,
        integrator=integrator,
    )
    q = QuantHSTNN(
        input_size=net.input_size,
        input_spiking=net.input_spiking,
        input_exp=in_exp,
        layers=layers,
        readout=readout,
        num_classes=classes,
        meta={"calibration_windows": int(calib_x.shape[0]), "steps": steps},
    )
    log.info("quantised %d layers: input scale 2**-%d", len(layers), in_exp)
    return q
