"""Operation accounting (paper Eqs. 23-25), measured on the actual window.

Per hybrid layer, sample and step: real-valued inputs cost MACs ``M_i1 (M_o1 + M_o2)`` plus the recurrent
``M_o1^2`` (LSTM: every weight matrix has 4 gate blocks, so ``4 M_o1`` rows), spiking inputs cost ACs ``nnz(s_t)
(M_o1 + M_o2)`` with ``nnz`` the spikes actually present at that step. Layer 1's spiking inputs are the first
``input_spiking`` features. The readout is counted the same way on ``concat(d(s), r_T)``: ``r_T`` once (MACs), the
spikes as ACs at each step they are accumulated (rate decoder: every step, its ``1/T`` folded into ``W_N``; last-step
decoder: step T only). Convolutions: :func:`count_conv_ops`.

Only what is computed is counted: a real-valued operand *block* that is entirely zero in a sample at a step is
skipped, as block-sparse hardware (and a schedule that knows when a frame arrives) skips it, so it costs nothing.
The blocks are the real-valued part of a layer's input (layer 1: the non-spiking features, e.g. the RGB feature of
a window, present only at the window's RGB steps; above: the RNN outputs of the layer below), the recurrent state
``r_{t-1}`` (zero at the first step of a window, which starts from rest) and ``r_T`` for the readout. Which blocks
are zero is read from the operands themselves, not from a declared layout, so the model core, the online engine
and the integer simulator count the same thing from the same data without knowing how a window is assembled
(:func:`active_blocks`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn

from hstnn_ros.model.enums import Decoder
from hstnn_ros.model.errors import ModelError
from hstnn_ros.model.network import HSTNN, RunRecord
from hstnn_ros.model.neurons import RNN, ConvLIF, ConvRNN


@dataclass
class OpsReport:
    """Measured operation counts of one batch of windows.

    Attributes:
        macs, acs: ``[B]`` int64 totals per sample.
        per_layer_step_macs, per_layer_step_acs: ``[B, L + 1, T]`` int64; index ``L`` is the readout.
        spike_rates: per hidden layer, the mean spike rate of its SNN population (None when it has none).
        input_spike_rate: mean rate of the spiking input features (None when there are none).
    """

    macs: torch.Tensor
    acs: torch.Tensor
    per_layer_step_macs: torch.Tensor
    per_layer_step_acs: torch.Tensor
    spike_rates: list[float | None]
    input_spike_rate: float | None

    @property
    def per_layer_step(self) -> torch.Tensor:
        """``[B, L + 1, T, 2]``: (MACs, ACs) per sample, layer (readout last) and step."""
        return torch.stack([self.per_layer_step_macs, self.per_layer_step_acs], dim=-1)

    @property
    def mac_per_sample(self) -> float:
        """Mean MACs per sample over the batch."""
        return float(self.macs.double().mean())

    @property
    def ac_per_sample(self) -> float:
        """Mean ACs per sample over the batch."""
        return float(self.acs.double().mean())


def _gates(pop: object) -> int:
    return pop.gates if isinstance(pop, RNN) else 1


def active_blocks(block: torch.Tensor) -> torch.Tensor:
    """``[..., n] -> [...]`` int64: 1 where the operand block has a non-zero entry (it is computed), else 0 (an
    all-zero block is skipped). An empty block (``n = 0``) is never active."""
    return (block != 0).any(-1).long()


@torch.no_grad()
def count_ops(model: HSTNN, x: torch.Tensor, record: RunRecord) -> OpsReport:
    """Eq. 23-25 counts for windows ``x[B, T, F]`` given ``record = model.run(x)`` (its spikes are the measured
    sparsity). Shrink a masked network first: a masked run still counts the removed neurons' weights."""
    if not isinstance(model, HSTNN):
        raise ModelError(f"count_ops needs an HSTNN, got {type(model).__name__}")
    model._check_input(x)
    B, T, _ = x.shape
    L, cfg = len(model.layers), model.config
    if len(record.spikes) != L or len(record.rnn_out) != L:
        raise ModelError(f"record has {len(record.spikes)} layers of spikes, the model {L}: pass model.run(x)")
    for i, (s, spec) in enumerate(zip(record.spikes, cfg.hidden, strict=True)):
        if tuple(s.shape) != (B, T, spec.n_snn):
            raise ModelError(f"record.spikes[{i}] is {tuple(s.shape)}, expected {(B, T, spec.n_snn)} for x "
                             f"{tuple(x.shape)}: pass the record of model.run(x) on the same x")
    macs = torch.zeros(B, L + 1, T, dtype=torch.long)
    acs = torch.zeros(B, L + 1, T, dtype=torch.long)
    spikes_in = (x[..., : cfg.input_spiking] != 0).sum(-1).long().cpu()  # [B, T]
    real_in = x[..., cfg.input_spiking :]  # [B, T, n_real]
    for i, layer in enumerate(model.hybrid_layers):
        g = _gates(layer.rnn)
        n_r = layer.spec.n_rnn
        rows = layer.spec.n_snn + g * n_r
        macs[:, i, :] = active_blocks(real_in).cpu() * (real_in.shape[-1] * rows)
        if n_r and T > 1:  # r_0 is the zero state: the first step's recurrent product is skipped
            macs[:, i, 1:] += active_blocks(record.rnn_out[i][:, :-1]).cpu() * (g * n_r * n_r)
        acs[:, i, :] = spikes_in * rows
        spikes_in = (record.spikes[i] != 0).sum(-1).long().cpu()
        real_in = record.rnn_out[i]
    C = cfg.num_classes
    macs[:, L, T - 1] = active_blocks(real_in[:, -1]).cpu() * (real_in.shape[-1] * C)
    if cfg.decoder is Decoder.RATE:
        acs[:, L, :] = spikes_in * C
    else:
        acs[:, L, T - 1] = spikes_in[:, T - 1] * C
    rates = [float(s.float().mean()) if s.numel() else None for s in record.spikes]
    in_rate = float((x[..., : cfg.input_spiking] != 0).float().mean()) if cfg.input_spiking else None
    return OpsReport(macs=macs.sum((1, 2)), acs=acs.sum((1, 2)), per_layer_step_macs=macs,
                     per_layer_step_acs=acs, spike_rates=rates, input_spike_rate=in_rate)


@functools.lru_cache(maxsize=64)
def _coverage(hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
              device: torch.device) -> tuple[torch.Tensor, int]:
    """``[H * W]`` float64: how many output windows of the convolution cover each input position (read-only), and
    its total (the in-bounds taps of one input channel)."""
    axes = []
    h, w = hw
    for n, k, s, p in ((h, kernel[0], stride[0], padding[0]), (w, kernel[1], stride[1], padding[1])):
        cov = torch.zeros(n, dtype=torch.float64)
        for o in range((n + 2 * p - k) // s + 1):
            cov[max(o * s - p, 0) : min(o * s - p + k, n)] += 1
        axes.append(cov)
    cov = torch.outer(axes[0], axes[1]).flatten()
    return cov.to(device), int(cov.sum().item())


def _taps(conv: nn.Conv2d, hw: tuple[int, int], device: torch.device) -> tuple[torch.Tensor, int]:
    """Coverage map ``[H*W]`` of ``conv`` on an ``hw`` input and its total (the in-bounds taps of one channel)."""
    return _coverage(hw, conv.kernel_size, conv.stride, conv.padding, device)


@torch.no_grad()
def count_conv_ops(conv: nn.Conv2d | ConvLIF | ConvRNN, x: torch.Tensor, spiking_input: bool
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(MACs[B], ACs[B])`` of one step of a convolution on ``x[B, C, H, W]``.

    Every kernel tap that lands inside the input is one multiply per output channel: a MAC for real-valued input,
    an AC for spiking input but only where the input is non-zero (padding costs nothing). A :class:`ConvRNN` adds the
    MACs of its recurrent convolution on its (real-valued) state.
    """
    rec: nn.Conv2d | None = None
    if isinstance(conv, ConvLIF):
        conv = conv.conv
    elif isinstance(conv, ConvRNN):
        rec = conv.conv_rec  # before rebinding conv (mypy checks a tuple assignment item by item)
        conv = conv.conv_in
    if not isinstance(conv, nn.Conv2d):
        raise ModelError(f"count_conv_ops needs an nn.Conv2d, ConvLIF or ConvRNN, got {type(conv).__name__}")
    if conv.groups != 1 or conv.dilation != (1, 1) or not isinstance(conv.padding, tuple):
        raise ModelError("count_conv_ops supports groups=1, dilation=1 and numeric padding")
    if x.dim() != 4 or x.shape[1] != conv.in_channels:
        raise ModelError(f"count_conv_ops expects x[B, {conv.in_channels}, H, W], got {tuple(x.shape)}")
    # taps landing on active inputs = each input position's non-zero channels x the output windows covering it
    cov, taps = _taps(conv, (x.shape[2], x.shape[3]), x.device)
    if spiking_input:
        active = (x != 0).sum(1, dtype=torch.float64).flatten(1)  # non-zero channels per position
        count = (torch.mv(active, cov).long() * conv.out_channels).cpu()  # sums of integers < 2**53: exact
    else:
        count = torch.full((x.shape[0],), x.shape[1] * taps * conv.out_channels, dtype=torch.long)
    zero = torch.zeros_like(count)
    macs, acs = (zero, count) if spiking_input else (count, zero)
    if rec is not None:
        h_out = (x.shape[2] + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
        w_out = (x.shape[3] + 2 * conv.padding[1] - conv.kernel_size[1]) // conv.stride[1] + 1
        macs = macs + rec.in_channels * _taps(rec, (h_out, w_out), torch.device("cpu"))[1] * rec.out_channels
    return macs, acs
