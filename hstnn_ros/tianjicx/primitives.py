"""Bit-exact numpy kernels of three TianjicX primitives: P04 vector x matrix, P07 lookup table, P08 LIF neuron.

Semantics follow BiMap's C++ behaviour simulator (openBII/BiMap ``src/simulator/behavior_simulator/primitive/
prim_04.cpp``, ``prim_07.cpp``, ``prim_08.cpp``) as pinned down by the golden vectors and their README in
``../shared/data/tianjicx_golden/``; the tests reproduce all of them bit for bit. Every kernel is vectorised
over neurons/columns and over any leading batch axes, so the simulator can run whole batches at once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from hstnn_ros.tianjicx.enums import FireType, LutWidth, ResetMode
from hstnn_ros.tianjicx.errors import TianjicxError

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
V28_MIN, V28_MAX = -(2**27), 2**27 - 1
#: P04 input rows are padded to a multiple of this (4 INT8 per word, 16 per MAC row group).
INPUT_ALIGN = 16
#: P04 output columns are computed in groups of this many (one MAC array pass).
OUTPUT_ALIGN = 32
#: P07/P08 INT8 outputs are padded to a multiple of this per group.
INT8_OUT_ALIGN = 16


def ceil_to(n: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``n``."""
    return -(-int(n) // multiple) * multiple


def sat32(a: np.ndarray) -> np.ndarray:
    """Saturate int64 values to the INT32 range."""
    return np.clip(a, INT32_MIN, INT32_MAX)


def clip28(a: np.ndarray) -> np.ndarray:
    """Clamp int64 values to the 28-bit two's complement range of the P08 membrane."""
    return np.clip(a, V28_MIN, V28_MAX)


def wrap32(a: np.ndarray | int) -> np.ndarray:
    """Wrap integers to 32-bit two's complement (as int32)."""
    return (np.asarray(a, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


# --------------------------------------------------------------------------------------------------- packing


def pack_int8_words(values: np.ndarray) -> np.ndarray:
    """Pack INT8 values 4 per int32 word, element ``4i+j`` in bits ``8j..8j+7`` of word ``i`` (last axis).

    The last axis is zero-padded to a multiple of 4.
    """
    v = np.asarray(values).astype(np.int8)
    n = v.shape[-1]
    pad = ceil_to(n, 4) - n
    if pad:
        v = np.concatenate([v, np.zeros((*v.shape[:-1], pad), np.int8)], axis=-1)
    return np.ascontiguousarray(v).view("<i4").astype(np.int32)


def unpack_int8_words(words: np.ndarray, n: int | None = None) -> np.ndarray:
    """Inverse of :func:`pack_int8_words`: int32 words -> INT8 values (last axis), optionally cut to ``n``."""
    w = np.ascontiguousarray(np.asarray(words, dtype="<i4"))
    v = w.view(np.int8).reshape(*w.shape[:-1], w.shape[-1] * 4)
    return v if n is None else v[..., :n]


def pack_p04_input(x: np.ndarray) -> np.ndarray:
    """P04 input vector ``[nr]`` INT8 -> words, length padded to a multiple of 16 elements (4 words)."""
    x = np.asarray(x)
    return pack_int8_words(np.pad(x.astype(np.int8), (0, ceil_to(x.shape[0], INPUT_ALIGN) - x.shape[0])))


def pack_p04_weights(weights: np.ndarray) -> np.ndarray:
    """P04 weights ``[nr, nf]`` INT8 -> memory words.

    Columns are cut into groups of 32 (the last zero-padded); for group g and row r the 8 words
    ``g*nr*8 + r*8 .. +7`` hold ``W[r, 32g .. 32g+31]`` packed 4 per word.
    """
    w = np.asarray(weights).astype(np.int8)
    nr, nf = w.shape
    nfp = ceil_to(nf, OUTPUT_ALIGN)
    wp = np.zeros((nr, nfp), np.int8)
    wp[:, :nf] = w
    groups = wp.reshape(nr, nfp // OUTPUT_ALIGN, OUTPUT_ALIGN).transpose(1, 0, 2)  # [G, nr, 32]
    return pack_int8_words(groups).reshape(-1)


def pack_v_state(v: np.ndarray, refractory: np.ndarray) -> np.ndarray:
    """P08 state word: V as 28-bit two's complement in bits 0..27, refractory count (4 bits) in bits 28..31."""
    ref = np.asarray(refractory, dtype=np.int64)
    if ref.size and (ref.min() < 0 or ref.max() > 15):
        raise TianjicxError(f"refractory counts must fit in 4 bits (0..15), found {ref.min()}..{ref.max()}")
    return wrap32((ref << 28) | (np.asarray(v, dtype=np.int64) & 0x0FFFFFFF))


def unpack_v_state(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`pack_v_state`: int32 words -> (V int32 sign-extended from 28 bits, refractory int32)."""
    u = np.asarray(words).astype(np.int32).view(np.uint32).astype(np.int64)
    v = u & 0x0FFFFFFF
    v = np.where(v >= 2**27, v - 2**28, v)
    return v.astype(np.int32), (u >> 28).astype(np.int32)


# --------------------------------------------------------------------------------------------------- P04


def p04_matvec(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | int = 0) -> np.ndarray:
    """P04 vector x matrix: INT8 ``x[..., nr]`` times INT8 ``W[nr, nf]`` plus INT32 bias, INT32 result.

    The accumulator starts at the bias and adds ``x[r] * W[r, f]`` for r ascending, saturating to INT32 after
    **every** addition (so a sum that touches a rail and comes back differs from ``clip(exact sum)``). The
    output has ``ceil(nf/32)*32`` columns; padding columns have zero weights and equal the bias.

    Vectorised exact formulation: where ``|bias| + sum_r |x_r W_rf|`` stays within INT32 no partial sum can touch
    a rail, so the plain (float64-exact) matrix product is the answer; only the remaining (sample, column)
    pairs run the sequential saturating loop, vectorised across them.

    Args:
        x: ``[..., nr]`` int8 values (any integer dtype holding INT8 values).
        weights: ``[nr, nf]`` INT8 values.
        bias: scalar constant or ``[nf_padded]`` (or ``[nf]``) INT32 vector.
    Returns:
        ``[..., nf_padded]`` int32.
    """
    x = np.asarray(x)
    w = np.asarray(weights)
    if w.ndim != 2 or x.shape[-1] != w.shape[0]:
        raise TianjicxError(f"P04 needs x[..., nr] and W[nr, nf]; got x{tuple(x.shape)} and W{tuple(w.shape)}")
    nr, nf = w.shape
    nfp = ceil_to(nf, OUTPUT_ALIGN)
    b = np.asarray(bias, dtype=np.int64)
    b = np.broadcast_to(b, (nfp,)) if b.ndim == 0 else np.pad(b, (0, nfp - b.shape[0]))
    lead = x.shape[:-1]
    x2 = x.reshape(int(np.prod(lead, dtype=np.int64)), nr).astype(np.float64)
    wf = np.zeros((nr, nfp), np.float64)
    wf[:, :nf] = w
    # All partial sums are integers far below 2**53, so float64 BLAS is exact here.
    exact = (x2 @ wf).astype(np.int64) + b
    bound = np.abs(x2) @ np.abs(wf) + np.abs(b).astype(np.float64)
    risky = bound > INT32_MAX
    out = exact
    if risky.any():
        rows, cols = np.nonzero(risky)
        acc = b[cols].copy()
        xi = x2[rows].astype(np.int64)  # [K, nr]
        wi = wf[:, cols].astype(np.int64)  # [nr, K]
        for r in range(nr):
            acc = sat32(acc + xi[:, r] * wi[r])
        out = exact.copy()
        out[rows, cols] = acc
    return out.astype(np.int32).reshape(*lead, nfp)


def p04_reference(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | int = 0) -> np.ndarray:
    """Literal row-by-row P04 (saturating loop over every row, vectorised over columns); a check for tests."""
    w = np.asarray(weights, dtype=np.int64)
    nr, nf = w.shape
    nfp = ceil_to(nf, OUTPUT_ALIGN)
    b = np.asarray(bias, dtype=np.int64)
    acc = np.broadcast_to(b, (nfp,)).copy() if b.ndim == 0 else np.pad(b, (0, nfp - b.shape[0]))
    wp = np.zeros((nr, nfp), np.int64)
    wp[:, :nf] = w
    xv = np.asarray(x, dtype=np.int64)
    for r in range(nr):
        acc = sat32(acc + xv[r] * wp[r])
    return acc.astype(np.int32)


# --------------------------------------------------------------------------------------------------- P07


def lut_address(x: np.ndarray, width: LutWidth | int, shift: int) -> np.ndarray:
    """P07 table address of each input element (int64), before the negative wrap.

    INT32 input (any width) and INT8 input with the 4-bit width: ``floor(x / 4**shift)`` clamped to the signed
    ``width``-bit range. INT8 input with the 8-bit width: ``x`` itself (shift ignored). INT8 input with 12/16-bit
    width (simulator quirk): address 0 for every element.
    """
    width = LutWidth(width)
    x = np.asarray(x)
    xi = x.astype(np.int64)
    if x.dtype == np.int8:
        if width == LutWidth.BITS_8:
            return xi
        if width in (LutWidth.BITS_12, LutWidth.BITS_16):
            return np.zeros_like(xi)
    elif x.dtype != np.int32:
        raise TianjicxError(f"P07 input must be int8 or int32, got {x.dtype}: cast it to one of them")
    half = 2 ** (int(width) - 1)
    return np.clip(np.floor_divide(xi, 4 ** int(shift)), -half, half - 1)


def lut_lookup(x: np.ndarray, table: np.ndarray, width: LutWidth | int, shift: int) -> np.ndarray:
    """P07 elementwise lookup: ``table[address mod 2**width]`` (negative addresses wrap to the upper half).

    The result has the table's dtype (int8 or int32); ``table`` must have ``2**width`` entries.
    """
    width = LutWidth(width)
    table = np.asarray(table)
    if table.shape != (2 ** int(width),):
        raise TianjicxError(f"P07 table for a {int(width)}-bit LUT needs {2 ** int(width)} entries, got {table.shape}")
    a = lut_address(x, width, shift)
    return table[np.mod(a, table.shape[0])]


def p07_output_length(n: int, x_dtype: np.dtype, table_dtype: np.dtype) -> int:
    """Padded output length per group: ``ceil(n/4)*4`` for INT32 in and table, else ``ceil(n/16)*16``."""
    if np.dtype(x_dtype) == np.int32 and np.dtype(table_dtype) == np.int32:
        return ceil_to(n, 4)
    return ceil_to(n, INT8_OUT_ALIGN)


def p07_lut(
    x: np.ndarray, table: np.ndarray, width: LutWidth | int, shift: int, neuron_num: int | None = None
) -> np.ndarray:
    """P07 on grouped memory: ``x[group, padded_len]`` -> ``out[group, output_padded_len]``.

    Positions beyond the computed range (INT32 input with an INT8 table: beyond ``ceil(n/4)*4``) read 0.
    """
    x = np.asarray(x)
    table = np.asarray(table)
    n = x.shape[-1] if neuron_num is None else neuron_num
    out_len = p07_output_length(n, x.dtype, table.dtype)
    computed = ceil_to(n, 4) if x.dtype == np.int32 else ceil_to(n, INT8_OUT_ALIGN)
    computed = min(computed, x.shape[-1], out_len)
    out = np.zeros((*x.shape[:-1], out_len), table.dtype)
    out[..., :computed] = lut_lookup(x[..., :computed], table, width, shift)
    return out


def p07_output_words(output: np.ndarray) -> np.ndarray:
    """Memory image of a P07 output: INT32 one per word, INT8 packed 4 per word (groups one after another)."""
    output = np.asarray(output)
    if output.dtype == np.int8:
        return pack_int8_words(output).reshape(-1)
    return output.astype(np.int32).reshape(-1)


def sigmoid_table_int8(in_scale: float, out_scale: float, width: LutWidth | int = LutWidth.BITS_8) -> np.ndarray:
    """INT8 table of a sigmoid for P07: entry at signed address a is ``round(sigmoid(a * in_scale) / out_scale)``.

    Stored two's-complement style (``table[a mod 2**width]``) and clamped to [-128, 127].
    """
    bits = int(LutWidth(width))
    a = np.arange(2**bits, dtype=np.int64)
    signed = np.where(a >= 2 ** (bits - 1), a - 2**bits, a)
    vals = np.round(1.0 / (1.0 + np.exp(-signed * in_scale)) / out_scale)
    return np.clip(vals, -128, 127).astype(np.int8)


# --------------------------------------------------------------------------------------------------- P08


@dataclass(frozen=True)
class LifParams:
    """P08 parameters (program fields in brackets). Names match ``cases.json`` of the golden vectors."""

    v_threshold: int  #: Vth0
    v_floor: int = -(2**27)  #: VL, applied to V and to the threshold
    reset_value: int = 0  #: VR
    reset_subtract_dv: int = 0  #: dV
    reset_mode: ResetMode = ResetMode.TO_VALUE
    leak_multiplicative_enable: bool = False  #: Vleaky_adpt_en
    leak_alpha_256: int = 256  #: Vleaky_alpha
    leak_beta: int = 0  #: Vleaky_beta
    theta_decay_enable: bool = False  #: Vth_adpt_en
    theta_alpha_256: int = 0  #: Vth_alpha
    theta_beta: int = 0  #: Vth_beta
    theta_increment: int = 0  #: Vth_Incre
    refractory_steps: int = 0  #: Ref_len (4 bits)
    fire_type: FireType = FireType.SPIKE
    seed: int = 0
    time_window_count: int = 0
    time_window_length: int = 1000
    v_init: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.refractory_steps <= 15:
            raise TianjicxError(f"refractory_steps={self.refractory_steps} must fit in 4 bits (0..15)")
        object.__setattr__(self, "reset_mode", ResetMode(self.reset_mode))
        object.__setattr__(self, "fire_type", FireType(self.fire_type))


@dataclass(frozen=True)
class LifStep:
    """Result of one P08 call."""

    state: np.ndarray  #: ``[..., N]`` int32 packed words (V 28 bits + refractory 4 bits)
    vtheta: np.ndarray  #: ``[vtheta_length]`` or ``[..., vtheta_length]`` int32
    spikes: np.ndarray  #: ``[..., N]`` bool
    output: np.ndarray  #: ``[..., N]`` int8 (fire-type dependent), unpadded
    para_out: np.ndarray  #: ``[4]`` int32


@functools.lru_cache(maxsize=256)
def lfsr_advance(seed: int, n: int) -> int:
    """P08 LFSR state after ``n`` updates from ``seed`` (unsigned 32-bit), returned as int32."""
    s = int(seed) & 0xFFFFFFFF
    for _ in range(n):
        b = (s ^ (s >> 1) ^ (s >> 2) ^ (s >> 3) ^ (s >> 5) ^ (s >> 7)) & 1
        s = (b << 31) | (s >> 1)
    return int(wrap32(s))


def p08_para_out(params: LifParams, n_neurons: int) -> np.ndarray:
    """The 4 ``para_out`` words a P08 call writes (LFSR state, packed threshold/theta fields)."""
    p = params
    w0 = lfsr_advance(p.seed, n_neurons)
    w1 = ((p.v_threshold & 0xFFFFFF) << 8) | (p.time_window_count & 0xFF)
    w2 = ((p.theta_beta & 0xFFFFF) << 12) | ((p.theta_alpha_256 & 0xFF) << 4) | ((p.v_threshold >> 24) & 0xF)
    w3 = ((p.theta_increment & 0xFFFFFF) << 8) | ((p.theta_beta >> 20) & 0xFF)
    return wrap32(np.array([w0, w1, w2, w3], dtype=np.int64))


def p08_lif(state: np.ndarray, vtheta: np.ndarray, uin: np.ndarray, params: LifParams) -> LifStep:
    """One P08 LIF time step for ``N`` neurons (vectorised over neurons and leading batch axes).

    Order per neuron: threshold ``clip28(Vth0 + theta) `` floored at VL; integrate Uin unless refractory;
    clip28; strict fire ``V > th``; reset by mode; leak (multiplicative ``floor(V*alpha/256) + beta`` or additive
    ``+ beta``); clip28 and floor at VL; threshold state update (decay, beta, increment on spike, clip28; with a
    shared theta only the first ``vtheta_length`` neurons write back); INT8 output by fire type; refractory count.
    The random threshold (VM mask) is taken as zero, as in every golden case.

    Args:
        state: ``[..., N]`` int32 packed state words.
        vtheta: ``[L]`` or ``[..., L]`` int32 threshold offsets; neuron k uses ``theta[k mod L]``.
        uin: ``[..., N]`` int32 input currents.
        params: the primitive parameters.
    """
    p = params
    v, ref = unpack_v_state(state)
    v = v.astype(np.int64)
    ref = ref.astype(np.int64)
    n = v.shape[-1]
    theta_in = np.asarray(vtheta, dtype=np.int64)
    big_l = theta_in.shape[-1]
    theta = theta_in[..., np.arange(n) % big_l]
    th = np.maximum(clip28(p.v_threshold + theta), p.v_floor)
    u = np.asarray(uin, dtype=np.int64)
    v = clip28(np.where(ref == 0, v + u, v))
    v_integrated = v
    spike = v > th
    if p.reset_mode == ResetMode.TO_VALUE:
        reset = np.full_like(v, p.reset_value)
    elif p.reset_mode == ResetMode.SUBTRACT_THRESHOLD:
        reset = v - th
    elif p.reset_mode == ResetMode.SUBTRACT_DV:
        reset = v - p.reset_subtract_dv
    else:
        reset = v
    vr = np.where(spike, reset, v)
    if p.time_window_count >= p.time_window_length:
        vn = np.full_like(vr, p.v_init)
    elif p.leak_multiplicative_enable:
        vn = np.floor_divide(vr * p.leak_alpha_256, 256) + p.leak_beta
    else:
        vn = vr + p.leak_beta
    vn = np.maximum(clip28(vn), p.v_floor)
    # Threshold state: only neurons 0..L-1 write back (a shared theta follows neuron 0 alone).
    t_src = theta[..., :big_l]
    t_new = np.floor_divide(t_src * p.theta_alpha_256, 256) if p.theta_decay_enable else t_src
    t_new = clip28(t_new + p.theta_beta + np.where(spike[..., :big_l], p.theta_increment, 0))
    if p.fire_type == FireType.SPIKE:
        out = spike.astype(np.int8)
    else:
        src = v_integrated if p.fire_type == FireType.HALF_V_INTEGRATED else vn
        out = np.clip(np.trunc(src / 2.0), -128, 127).astype(np.int8)  # C division truncates toward zero
    new_ref = np.where(spike, p.refractory_steps, np.maximum(ref - 1, 0))
    return LifStep(
        state=pack_v_state(vn, new_ref),
        vtheta=t_new.astype(np.int32),
        spikes=spike,
        output=out,
        para_out=p08_para_out(p, n),
    )


def p08_output_layout(output: np.ndarray, group_num: int) -> np.ndarray:
    """Arrange a flat ``[..., N]`` INT8 output as ``[..., group_num, ceil(neuron_num/16)*16]`` (zero padding)."""
    output = np.asarray(output)
    n = output.shape[-1]
    if n % group_num:
        raise TianjicxError(f"P08 neuron count {n} is not a multiple of group_num={group_num}")
    per = n // group_num
    g = output.reshape(*output.shape[:-1], group_num, per)
    pad = ceil_to(per, INT8_OUT_ALIGN) - per
    return np.pad(g, [(0, 0)] * (g.ndim - 1) + [(0, pad)]) if pad else g
