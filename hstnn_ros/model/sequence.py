"""Whole-sequence LIF and RNN populations as single autograd nodes, for training.

A hybrid layer's input projection already runs as one GEMM over all T steps (``HybridLayer.run``); what remained per
step was the recurrence: per population and step a few autograd nodes and, for the RNN, two small GEMMs in backward
(the state's gradient and a T-th share of the recurrent weight's gradient). ``lif_sequence`` and ``rnn_sequence``
run the recurrence in one node each. Their forward loops use the very kernels of the per-step path (``lif_step``,
``RNN.advance`` and the output gates of ``HybridLayer.advance``), so the values are identical; their backward runs
the reverse-time loop by hand, keeps one GEMM per step for the RNN state's gradient and computes the recurrent
weight's gradient as one GEMM over all steps.

The backward passes are written in differentiable torch ops on saved inputs and outputs only, so double backward
goes through them as through the per-step form (tested, with output gates too). It is slower there, though: the
per-step graph differentiated twice took 202-222 ms per batch of Selection's saliency against 254-335 ms through
these nodes, so ``learning.hessian`` runs its forward inside ``per_step()``, the switch that turns them off (tests
compare both forms with it; the ONNX export traces the per-step form anyway).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from hstnn_ros.model.surrogate import Surrogate

_ENABLED = True


def enabled() -> bool:
    """Whether hybrid layers may run their recurrences as whole-sequence nodes (see ``per_step``)."""
    return _ENABLED


@contextlib.contextmanager
def per_step() -> Iterator[None]:
    """Inside, hybrid layers record one autograd node per population and step, as before this module (same values;
    for comparisons and debugging)."""
    global _ENABLED  # noqa: PLW0603 - a process-wide switch, restored on exit
    old, _ENABLED = _ENABLED, False
    try:
        yield
    finally:
        _ENABLED = old


class _LIFSequence(torch.autograd.Function):
    """``(U, S)`` ``[T, B, n]`` of a LIF population from its drive ``D[T, B, n]`` and zero initial state."""

    @staticmethod
    def forward(ctx: Any, drive: torch.Tensor, decay: float, v_th: float,
                surrogate: Surrogate) -> tuple[torch.Tensor, torch.Tensor]:
        U, S = torch.empty_like(drive), torch.empty_like(drive)
        u = torch.zeros_like(drive[0])
        s = torch.zeros_like(drive[0])
        for t in range(drive.shape[0]):
            u = torch.addcmul(drive[t], u * decay, 1 - s, out=U[t])  # == lif_step: (1 - s) is 0 or 1, exact
            s = (u >= v_th).to(u.dtype)
            S[t] = s
        ctx.save_for_backward(U, S)
        ctx.decay, ctx.v_th, ctx.surrogate = decay, v_th, surrogate
        return U, S

    @staticmethod
    def backward(ctx: Any, g_U: torch.Tensor, g_S: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        U, S = ctx.saved_tensors
        decay = ctx.decay
        sur = ctx.surrogate.derivative(U - ctx.v_th)
        grads = []
        carry_u = carry_s = None
        for t in range(U.shape[0] - 1, -1, -1):
            gs = g_S[t] if carry_s is None else g_S[t] + carry_s
            gu = g_U[t] if carry_u is None else g_U[t] + carry_u
            g = torch.addcmul(gu, gs, sur[t])  # d/du_t of both outputs, as _LIFStep
            grads.append(g)
            if t:
                carry_u = g * (1 - S[t - 1]) * decay
                carry_s = g * (U[t - 1] * -decay)
        return torch.stack(grads[::-1]), None, None, None


class _RNNSequence(torch.autograd.Function):
    """``R[T, B, n]`` of a sigmoid RNN population, ``r_t = sigmoid(d_t + W r_{t-1})``, from zero state."""

    @staticmethod
    def forward(ctx: Any, drive: torch.Tensor, w_rec: torch.Tensor) -> torch.Tensor:
        R = torch.empty_like(drive)
        r = torch.zeros_like(drive[0])
        for t in range(drive.shape[0]):
            r = torch.sigmoid(drive[t] + F.linear(r, w_rec), out=R[t])  # == RNN.advance
        ctx.save_for_backward(R, w_rec)
        return R

    @staticmethod
    def backward(ctx: Any, g_R: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        R, w_rec = ctx.saved_tensors
        G = _rnn_backward(g_R, R, w_rec)[0]
        return G, _rec_weight_grad(G, R) if ctx.needs_input_grad[1] else None


class _GatedRNNSequence(torch.autograd.Function):
    """``(R, O)`` ``[T, B, n]`` of a sigmoid RNN population whose outputs pass gates ``m`` (``[n]`` or ``[B, n]``):
    ``r_t = sigmoid(d_t + W o_{t-1})``, ``o_t = m * r_t`` (its output and its recurrent state, as
    ``HybridLayer.advance`` applies masks), from zero state."""

    @staticmethod
    def forward(ctx: Any, drive: torch.Tensor, w_rec: torch.Tensor, gate: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        R = torch.empty_like(drive)
        Og = torch.empty(drive.shape[:1] + torch.broadcast_shapes(drive.shape[1:], gate.shape), dtype=drive.dtype,
                        device=drive.device)
        o = torch.zeros_like(Og[0])
        for t in range(drive.shape[0]):
            r = torch.sigmoid(drive[t] + F.linear(o, w_rec), out=R[t])
            o = torch.mul(r, gate, out=Og[t])
        ctx.save_for_backward(R, Og, w_rec, gate)
        return R, Og

    @staticmethod
    def backward(ctx: Any, g_R: torch.Tensor, g_Og: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        R, Og, w_rec, gate = ctx.saved_tensors
        G, g_gate = _rnn_backward(g_R, R, w_rec, g_gated=g_Og, gate=gate)
        g_w = _rec_weight_grad(G, Og) if ctx.needs_input_grad[1] else None
        assert g_gate is not None  # a gated loop always has the gate's gradient
        return G, g_w, (g_gate.sum_to_size(gate.shape) if ctx.needs_input_grad[2] else None)


def _rnn_backward(g_R: torch.Tensor, R: torch.Tensor, w_rec: torch.Tensor, *, g_gated: torch.Tensor | None = None,
                  gate: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Reverse-time loop of a (gated) sigmoid RNN: the drive's gradient ``[T, B, n]`` and, with a gate, the gate's
    (summed over steps, ``[B, n]``). ``g_R``: gradient of the raw outputs ``R``; ``g_gated``: of the gated outputs
    (with a gate; they are also the recurrent state)."""
    dz: list[torch.Tensor] = []
    g_gate = None
    carry = None
    for t in range(R.shape[0] - 1, -1, -1):
        if gate is None:
            g = g_R[t] if carry is None else g_R[t] + carry
        else:
            assert g_gated is not None
            go = g_gated[t] if carry is None else g_gated[t] + carry  # o_t is both an output and the next step's state
            term = R[t] * go
            g_gate = term if g_gate is None else g_gate + term
            g = torch.addcmul(g_R[t], go, gate)
        gz = g * (R[t] * (1 - R[t]))  # sigmoid'
        dz.append(gz)
        if t:
            carry = gz @ w_rec  # z_t = d_t + W o_{t-1}
    assert gate is None or g_gate is not None
    return torch.stack(dz[::-1]), g_gate


def _rec_weight_grad(G: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """``sum_{t >= 1} G_t^T state_{t-1}``: one GEMM over ``(T - 1) * B`` rows instead of T small ones."""
    T, B, n = G.shape
    if T == 1:
        return G.new_zeros(n, n)
    rows = (T - 1) * B
    return G[1:].reshape(rows, n).t() @ state[:-1].reshape(rows, n)


def lif_sequence(drive: torch.Tensor, *, decay: float, v_th: float, surrogate: Surrogate) -> torch.Tensor:
    """Spikes ``S[T, B, n]`` of a LIF population (HSTNN Eq. 6) over the drive ``D[T, B, n]`` from zero state."""
    return _LIFSequence.apply(drive, decay, v_th, surrogate)[1]


def rnn_sequence(drive: torch.Tensor, w_rec: torch.Tensor, gate: torch.Tensor | None = None) -> torch.Tensor:
    """Outputs ``R[T, B, n]`` of a sigmoid RNN population (HSTNN Eq. 3) over the drive ``D[T, B, n]`` from zero
    state; with ``gate`` (``[n]`` or ``[B, n]``) the gated outputs, which are also its recurrent state."""
    if gate is None:
        return _RNNSequence.apply(drive, w_rec)
    return _GatedRNNSequence.apply(drive, w_rec, gate)[1]
