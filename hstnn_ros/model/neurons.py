"""Neuron populations (dense and convolutional) with explicit state.

Every population owns the weights that drive it (its *afferent* weights, one row block per neuron) and splits a step
into ``project`` (input -> drive current, a matrix product that the network batches over all time steps) and
``advance`` (drive + state -> output, the cheap per-step recurrence). ``step = advance(project(x))``.
State is a tuple of tensors; ``init_state`` gives zeros.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hstnn_ros.model.errors import ModelError
from hstnn_ros.model.surrogate import Surrogate, spike

State = tuple[torch.Tensor, ...]

#: SRNN-paper bounds keeping learnable time constants meaningful (in time steps).
MIN_TAU = 0.1


def _linear(n_in: int, n_out: int, bias: bool) -> nn.Linear:
    """``nn.Linear`` that tolerates 0-sized populations (empty layers are legal in a hybrid network)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        return nn.Linear(n_in, n_out, bias=bias)


def _check_sizes(n_in: int, size: int) -> None:
    if n_in < 0 or size < 0:
        raise ModelError(f"population sizes must be >= 0, got in_features={n_in}, size={size}")


def _rows(t: torch.Tensor | None, size: int) -> list[torch.Tensor]:
    return [] if t is None else [t.reshape(size, -1)]


class _LIFStep(torch.autograd.Function):
    """One LIF step as one autograd node: ``u = decay u_prev (1 - s_prev) + drive``, ``s = H(u - v_th)``.

    The same values as the op-by-op form with :func:`~hstnn_ros.model.surrogate.spike` (``decay * u`` is rounded
    first, then masked by the 0/1 spike, then ``drive`` added; ``u >= v_th`` iff ``u - v_th >= 0`` in IEEE
    arithmetic) and the same gradients, in about a third of the kernels and without a dozen autograd nodes per
    step: a training step runs hundreds of these on small tensors, where per-kernel cost dominates. The backward
    is written in differentiable torch ops on the saved inputs and output, so double backward (the Selection
    stage's Hessian-vector products) sees the surrogate's second derivative exactly as through ``spike``.
    """

    @staticmethod
    def forward(ctx: Any, u_prev: torch.Tensor, s_prev: torch.Tensor, drive: torch.Tensor,  # noqa: PLR0917  (Function.apply is positional)
                decay: float, v_th: float, surrogate: Surrogate) -> tuple[torch.Tensor, torch.Tensor]:
        u = torch.addcmul(drive, u_prev * decay, 1 - s_prev)
        s = (u >= v_th).to(u.dtype)
        ctx.save_for_backward(u_prev, s_prev, u)
        ctx.decay, ctx.v_th, ctx.surrogate = decay, v_th, surrogate
        return u, s

    @staticmethod
    def backward(ctx: Any, g_u: torch.Tensor, g_s: torch.Tensor
                 ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor, None, None, None]:
        u_prev, s_prev, u = ctx.saved_tensors
        g = torch.addcmul(g_u, g_s, ctx.surrogate.derivative(u - ctx.v_th))  # d/du of both outputs
        g_u_prev = g * (1 - s_prev) * ctx.decay if ctx.needs_input_grad[0] else None
        g_s_prev = g * (u_prev * -ctx.decay) if ctx.needs_input_grad[1] else None
        return g_u_prev, g_s_prev, g, None, None, None


def lif_step(u_prev: torch.Tensor, s_prev: torch.Tensor, drive: torch.Tensor, *, decay: float, v_th: float,
             surrogate: Surrogate) -> tuple[torch.Tensor, torch.Tensor]:
    """``(u, s)`` of one LIF step (HSTNN Eq. 6); fused into one autograd node when gradients are recorded."""
    if torch.is_grad_enabled() and (u_prev.requires_grad or s_prev.requires_grad or drive.requires_grad):
        return _LIFStep.apply(u_prev, s_prev, drive, decay, v_th, surrogate)
    u = decay * u_prev * (1 - s_prev) + drive
    return u, spike(u - v_th, surrogate)


class Population(nn.Module):
    """Common surface of all populations (see module docstring)."""

    size: int
    spiking: bool
    in_features: int

    def init_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> State:
        """Zero state for ``batch`` samples."""
        raise NotImplementedError

    def input_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(W_in[rows, in_features], bias[rows] | None)``: the input projection, fused across populations."""
        raise NotImplementedError

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Input drive ``W_in x (+ b)`` for inputs ``x[..., in_features]``."""
        w, b = self.input_weight()
        return F.linear(x, w, b)

    def advance(self, drive: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One time step from a precomputed drive: ``(output[B, size], new state)``."""
        raise NotImplementedError

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One time step from the population's input ``x[B, in_features]``."""
        return self.advance(self.project(x), state)

    def afferent_parameters(self) -> list[torch.Tensor]:
        """Every parameter owned row-wise by single neurons (input rows, recurrent rows, per-neuron constants)."""
        raise NotImplementedError

    def per_neuron(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-neuron view ``[size, k]`` of tensors shaped like :meth:`afferent_parameters`."""
        raise NotImplementedError

    def masked_state(self, state: State, mask: torch.Tensor) -> State:
        """State with the outputs of dropped neurons (``mask == 0``) zeroed where other neurons can see them."""
        return state


class LIF(Population):
    """Leaky integrate-and-fire, HSTNN Eq. 6: ``u_t = decay u_{t-1} (1 - s_{t-1}) + W y_t``, ``s_t = H(u_t - v_th)``.

    ``decay`` and ``v_th`` are constants (floats), as in the paper and the chip.
    """

    spiking = True

    def __init__(self, in_features: int, size: int, *, decay: float = 0.5, v_th: float = 0.5,
                 surrogate: Surrogate | None = None, bias: bool = False) -> None:
        super().__init__()
        _check_sizes(in_features, size)
        if not 0.0 <= decay <= 1.0:
            raise ModelError(f"LIF decay must be in [0, 1], got {decay}")
        if not (math.isfinite(v_th) and v_th > 0):
            raise ModelError(f"LIF v_th must be a positive finite number, got {v_th}")
        self.in_features, self.size = int(in_features), int(size)
        self.decay, self.v_th = float(decay), float(v_th)
        self.surrogate = surrogate or Surrogate()
        self.fc = _linear(in_features, size, bias)

    def init_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> State:
        """``(u, s)`` zeros."""
        z = torch.zeros(batch, self.size, device=device or self.fc.weight.device, dtype=dtype or self.fc.weight.dtype)
        return z, z

    def input_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.fc.weight, self.fc.bias

    def advance(self, drive: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        u, s = lif_step(state[0], state[1], drive, decay=self.decay, v_th=self.v_th, surrogate=self.surrogate)
        return s, (u, s)

    def afferent_parameters(self) -> list[torch.Tensor]:
        return [p for p in (self.fc.weight, self.fc.bias) if p is not None]

    def per_neuron(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t.reshape(self.size, -1) for t in tensors], dim=1)


class ALIF(LIF):
    """Adaptive LIF (HSTNN Eq. 7 with the SRNN paper's learnable per-neuron time constants).

    ``u_t = a u_{t-1} (1 - s_{t-1}) + W y_t``, ``b_t = rho b_{t-1} + (1 - rho) s_{t-1}``,
    ``eta_t = v_th + adapt * b_t``, ``s_t = H(u_t - eta_t)``, with ``a = exp(-1/tau_m)``, ``rho = exp(-1/tau_adp)``
    learnable per neuron. Eq. 7 writes ``s_t`` in ``b_t``; that is circular within one step, so (as in the SRNN
    paper, Eq. 6) the threshold adapts to the previous step's spike.
    """

    def __init__(self, in_features: int, size: int, *, decay: float = 0.5, v_th: float = 0.5,
                 surrogate: Surrogate | None = None, bias: bool = False, adapt: float = 0.2,
                 tau_adp: float = 20.0) -> None:
        super().__init__(in_features, size, decay=decay, v_th=v_th, surrogate=surrogate, bias=bias)
        if not 0.0 < decay < 1.0:
            raise ModelError(f"ALIF decay must be in (0, 1) (it sets tau_m = -1/ln(decay)), got {decay}")
        if tau_adp <= MIN_TAU or adapt < 0:
            raise ModelError(f"ALIF needs tau_adp > {MIN_TAU} and adapt >= 0, got tau_adp={tau_adp}, adapt={adapt}")
        self.adapt = float(adapt)
        self.tau_m = nn.Parameter(torch.full((size,), -1.0 / math.log(decay)))
        self.tau_adp = nn.Parameter(torch.full((size,), float(tau_adp)))

    def init_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> State:
        """``(u, s, b)`` zeros."""
        u, s = super().init_state(batch, device, dtype)
        return u, s, u

    def advance(self, drive: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        u, s, b = state
        a = torch.exp(-1.0 / self.tau_m.clamp(min=MIN_TAU))
        rho = torch.exp(-1.0 / self.tau_adp.clamp(min=MIN_TAU))
        b = rho * b + (1 - rho) * s
        u = a * u * (1 - s) + drive
        s = spike(u - (self.v_th + self.adapt * b), self.surrogate)
        return s, (u, s, b)

    def afferent_parameters(self) -> list[torch.Tensor]:
        return [*super().afferent_parameters(), self.tau_m, self.tau_adp]


class RNN(Population):
    """Vanilla recurrent population, HSTNN Eq. 3: ``r_t = sigmoid(W_in y_t + W_rec r_{t-1})``."""

    spiking = False
    gates = 1

    def __init__(self, in_features: int, size: int, *, bias: bool = False) -> None:
        super().__init__()
        _check_sizes(in_features, size)
        self.in_features, self.size = int(in_features), int(size)
        self.fc_in = _linear(in_features, self.gates * size, bias)
        self.fc_rec = _linear(size, self.gates * size, False)

    def init_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> State:
        """``(r,)`` zeros."""
        w = self.fc_in.weight
        return (torch.zeros(batch, self.size, device=device or w.device, dtype=dtype or w.dtype),)

    def input_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.fc_in.weight, self.fc_in.bias

    def advance(self, drive: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        r = torch.sigmoid(drive + F.linear(state[0], self.fc_rec.weight))
        return r, (r,)

    def masked_state(self, state: State, mask: torch.Tensor) -> State:
        return (state[0] * mask, *state[1:])

    def afferent_parameters(self) -> list[torch.Tensor]:
        return [p for p in (self.fc_in.weight, self.fc_rec.weight, self.fc_in.bias) if p is not None]

    def per_neuron(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        # rows of gate g of unit j sit at g * size + j: gather the gates of each unit side by side
        return torch.cat([t.reshape(self.gates, self.size, -1).transpose(0, 1).reshape(self.size, -1)
                          for t in tensors], dim=1)


class LSTM(RNN):
    """LSTM population, HSTNN Eq. 4 (gate order i, f, g, o as in ``torch.nn.LSTMCell``); state ``(h, c)``."""

    gates = 4

    def init_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> State:
        """``(h, c)`` zeros."""
        (h,) = super().init_state(batch, device, dtype)
        return h, h

    def advance(self, drive: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h, c = state
        z = drive + F.linear(h, self.fc_rec.weight)
        i, f, g, o = z.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class ConvLIF(Population):
    """Convolutional LIF: Eq. 6 with ``W y`` a convolution; ``size`` = output channels.

    Usable without any setup: ``s, state = ConvLIF(2, 16, 3, 1, 1).step(frame, None)`` starts from zeros.
    """

    spiking = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0, *,
                 decay: float = 0.5, v_th: float = 0.5, surrogate: Surrogate | None = None,
                 bias: bool = False) -> None:
        super().__init__()
        _check_sizes(in_channels, out_channels)
        if out_channels == 0 or in_channels == 0 or kernel_size < 1 or stride < 1 or padding < 0:
            raise ModelError(f"ConvLIF needs channels > 0, kernel >= 1, stride >= 1, padding >= 0; got "
                             f"{in_channels}->{out_channels}, k={kernel_size}, stride={stride}, padding={padding}")
        self.in_features, self.size = int(in_channels), int(out_channels)
        self.decay, self.v_th = float(decay), float(v_th)
        self.surrogate = surrogate or Surrogate()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)

    def init_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None, out_hw: tuple[int, int] = (1, 1)) -> State:
        """``(u, s)`` zeros of shape ``[batch, size, *out_hw]``."""
        w = self.conv.weight
        z = torch.zeros(batch, self.size, *out_hw, device=device or w.device, dtype=dtype or w.dtype)
        return z, z

    def input_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.conv.weight, self.conv.bias

    def project(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_features:
            raise ModelError(f"{type(self).__name__} expects x[B, {self.in_features}, H, W], got {tuple(x.shape)}")
        return self.conv(x)

    def advance(self, drive: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        if state is None:
            state = (torch.zeros_like(drive), torch.zeros_like(drive))
        u, s = lif_step(state[0], state[1], drive, decay=self.decay, v_th=self.v_th, surrogate=self.surrogate)
        return s, (u, s)

    def step(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """One step on ``x[B, C_in, H, W]``; ``state=None`` starts from rest."""
        return self.advance(self.project(x), state)

    def afferent_parameters(self) -> list[torch.Tensor]:
        return [p for p in (self.conv.weight, self.conv.bias) if p is not None]

    def per_neuron(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t.reshape(self.size, -1) for t in tensors], dim=1)


class ConvRNN(Population):
    """Recurrent convolutional population ("RCNN"): ``r_t = sigmoid(conv_in(y_t) + conv_rec(r_{t-1}))``.

    The recurrent convolution keeps the spatial size (stride 1, 'same' padding, odd kernel).
    """

    spiking = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0, *,
                 rec_kernel_size: int = 3, bias: bool = False) -> None:
        super().__init__()
        if out_channels < 1 or in_channels < 1 or kernel_size < 1 or rec_kernel_size % 2 == 0:
            raise ModelError(f"ConvRNN needs channels > 0, kernel >= 1 and an odd recurrent kernel; got "
                             f"{in_channels}->{out_channels}, k={kernel_size}, rec_k={rec_kernel_size}")
        self.in_features, self.size = int(in_channels), int(out_channels)
        self.conv_in = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        self.conv_rec = nn.Conv2d(out_channels, out_channels, rec_kernel_size, 1, rec_kernel_size // 2, bias=False)

    def init_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None, out_hw: tuple[int, int] = (1, 1)) -> State:
        """``(r,)`` zeros of shape ``[batch, size, *out_hw]``."""
        w = self.conv_in.weight
        return (torch.zeros(batch, self.size, *out_hw, device=device or w.device, dtype=dtype or w.dtype),)

    def input_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.conv_in.weight, self.conv_in.bias

    def project(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_features:
            raise ModelError(f"ConvRNN expects x[B, {self.in_features}, H, W], got {tuple(x.shape)}")
        return self.conv_in(x)

    def advance(self, drive: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        r_prev = torch.zeros_like(drive) if state is None else state[0]
        r = torch.sigmoid(drive + self.conv_rec(r_prev))
        return r, (r,)

    def step(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """One step on ``x[B, C_in, H, W]``; ``state=None`` starts from rest."""
        return self.advance(self.project(x), state)

    def masked_state(self, state: State, mask: torch.Tensor) -> State:
        return (state[0] * mask.reshape(1, -1, 1, 1),)

    def afferent_parameters(self) -> list[torch.Tensor]:
        return [p for p in (self.conv_in.weight, self.conv_rec.weight, self.conv_in.bias) if p is not None]

    def per_neuron(self, tensors: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat([t.reshape(self.size, -1) for t in tensors], dim=1)
