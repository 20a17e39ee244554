"""Spike functions: exact Heaviside forward, surrogate-gradient backward, twice differentiable.

The spike is built as ``H(x) + (F(x) - F(x).detach())`` where ``F`` is a smooth primitive of the surrogate
derivative: the forward value is exactly ``H(x)`` and autograd differentiates ``F`` (any order), so Hessian-vector
products run through it (the Selection stage needs them) and ONNX export sees only standard ops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from hstnn_ros.model.enums import SurrogateKind
from hstnn_ros.model.errors import ModelError


@dataclass(frozen=True)
class Surrogate:
    """A surrogate gradient and its shape parameters.

    Attributes:
        kind: which pseudo-derivative.
        width: RECT half-width ``a`` (derivative ``1[|x| < a] / (2a)``).
        slope: SIGMOID steepness ``k`` (derivative ``k * sig(kx) * (1 - sig(kx))``).
        mg_h, mg_s, mg_sigma: Multi-Gaussian height, width scale and sigma (SRNN paper Eq. 1: 0.15, 6, 0.5).
    """

    kind: SurrogateKind = SurrogateKind.RECT
    width: float = 0.5
    slope: float = 4.0
    mg_h: float = 0.15
    mg_s: float = 6.0
    mg_sigma: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", SurrogateKind(self.kind))
        for name in ("width", "slope", "mg_s", "mg_sigma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ModelError(f"surrogate {name} must be a positive finite number, got {value!r}")
        if not (math.isfinite(self.mg_h) and self.mg_h >= 0):
            raise ModelError(f"surrogate mg_h must be >= 0, got {self.mg_h!r}")

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """``F(x)`` with ``F' =`` the surrogate derivative (smooth wherever the derivative is)."""
        if self.kind is SurrogateKind.RECT:
            a = self.width
            # ramp inside |x| < a, flat outside (strict edges, as the rectangle 1[|x| < a] / (2a))
            return torch.where(x.abs() < a, (x + a) / (2 * a), (x >= a).to(x.dtype))
        if self.kind is SurrogateKind.SIGMOID:
            return torch.sigmoid(self.slope * x)
        sig, h, s = self.mg_sigma, self.mg_h, self.mg_s
        return ((1 + h) * _phi(x / sig) - h * _phi((x - sig) / (s * sig)) - h * _phi((x + sig) / (s * sig)))

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        """The surrogate derivative itself, for plots and tests."""
        if self.kind is SurrogateKind.RECT:
            return (x.abs() < self.width).to(x.dtype) / (2 * self.width)
        if self.kind is SurrogateKind.SIGMOID:
            z = torch.sigmoid(self.slope * x)
            return self.slope * z * (1 - z)
        sig, h, s = self.mg_sigma, self.mg_h, self.mg_s
        return (1 + h) * _gauss(x, 0.0, sig) - h * _gauss(x, sig, s * sig) - h * _gauss(x, -sig, s * sig)


def _phi(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(z / math.sqrt(2.0)))


def _gauss(x: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


def spike(x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """Heaviside ``H(x) = 1[x >= 0]`` (paper Eq. 6) in the forward pass, ``surrogate`` derivative backwards."""
    if not (x.requires_grad and torch.is_grad_enabled()):
        return (x >= 0).to(x.dtype)  # inference: f - f.detach() is exactly 0, skip computing it
    f = surrogate.primitive(x)
    return (x >= 0).to(x.dtype) + (f - f.detach())
