"""Frozen front-ends: a spiking CNN on event frames and a CNN on RGB(-D) frames, each giving one feature vector
per frame with the operations that frame cost.

Both are stateless per frame (the SCNN runs one LIF step from rest), so the online engine computes every frame once
and keeps the features in ring buffers. Architecture after cognav/NeuroGPR (DESIGN.md section 7); widths and the
pooled grid are configurable so that the shipped models fit the repository (see ``SMALL``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hstnn_ros.errors import HstnnError
from hstnn_ros.model import Component, ConvLIF, Surrogate, SurrogateKind, count_conv_ops, spike

SCNN_KIND = "scnn"
CNN_KIND = "cnn"


class FrontendError(HstnnError):
    """A front-end configuration or input is invalid."""


@dataclass(frozen=True)
class FrontendConfig:
    """Shape of a front-end.

    Attributes:
        in_channels: 2 for event frames (OFF, ON), 3 for RGB, 4 for RGB-D.
        widths: channels of the four conv layers (paper: 64, 128, 256, 256).
        pooled_hw: the grid the last feature map is average-pooled to before the FC layers; ``None`` = avg-pool 2
            (the reference), a small grid keeps the FC layer (most of the parameters) small.
        hidden: width of the first FC layer.
        features: output feature size (paper: 512).
        input_hw: input frame ``(H, W)`` (paper: 180 x 240).
        decay, v_th: LIF parameters of the SCNN (reference: 0.6, 0.15).
    """

    in_channels: int
    widths: tuple[int, int, int, int] = (64, 128, 256, 256)
    pooled_hw: tuple[int, int] | None = None
    hidden: int = 512
    features: int = 512
    input_hw: tuple[int, int] = (180, 240)
    decay: float = 0.6
    v_th: float = 0.15

    def __post_init__(self) -> None:
        if self.in_channels < 1 or len(self.widths) != 4 or min(self.widths) < 1 or self.features < 1:
            raise FrontendError(f"FrontendConfig: positive in_channels, 4 widths and features needed, got {self}")
        if min(self.input_hw) < 16:
            raise FrontendError(f"FrontendConfig: input_hw {self.input_hw} is too small (>= 16 x 16)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrontendConfig:
        d = dict(d)
        for key in ("widths", "pooled_hw", "input_hw"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        try:
            return cls(**d)
        except TypeError as exc:
            raise FrontendError(f"FrontendConfig: {exc}") from exc


#: Small configuration of the shipped models: widths / 4, a 3 x 4 pooled grid, 256 features, 90 x 120 input.
SMALL: dict[str, Any] = {"widths": (16, 32, 64, 64), "pooled_hw": (3, 4), "hidden": 256, "features": 256,
                         "input_hw": (90, 120)}


@dataclass
class FrontendOutput:
    """Features ``[B, F]`` of a batch of frames and the operations each frame cost (``[B]``)."""

    features: torch.Tensor
    macs: torch.Tensor
    acs: torch.Tensor
    extra: dict[str, Any] = field(default_factory=dict)


def _conv_stack(cfg: FrontendConfig) -> list[tuple[int, int, int, int, int]]:
    w = cfg.widths
    # (in, out, kernel, stride, padding): 3/3/1, then stride 2, 2, 1 (DESIGN.md section 7)
    return [(cfg.in_channels, w[0], 3, 3, 1), (w[0], w[1], 3, 2, 1), (w[1], w[2], 3, 2, 1), (w[2], w[3], 3, 1, 1)]


def dense_macs(cfg: FrontendConfig) -> int:
    """Multiply-accumulates of one frame's forward pass counting every tap of every layer (conv and FC), the work a
    dense GEMM does: what training FLOP/s are measured against (``2 x`` this per frame forward)."""
    h, w = cfg.input_hw
    total = 0
    for i, o, k, s, p in _conv_stack(cfg):
        h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        total += h * w * o * i * k * k
    ph, pw = _pooled_size(cfg)
    return total + cfg.widths[3] * ph * pw * cfg.hidden + cfg.hidden * cfg.features


class _RectSpike(torch.autograd.Function):
    """``H(x - th)`` forward and the RECT surrogate derivative backward, first order only: the values and gradients
    of ``model.spike(x - th, Surrogate(RECT, width))`` (tested) in three elementwise kernels instead of about ten.
    Front-end pretraining spends much of its time in these; the HSTNN keeps ``model.spike`` (twice differentiable,
    which the Selection stage needs)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, th: float, width: float) -> torch.Tensor:
        d = x - th
        ctx.save_for_backward(d.abs() < width)
        ctx.scale = 1.0 / (2.0 * width)
        return (d >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (inside,) = ctx.saved_tensors
        return grad * inside * ctx.scale, None, None


def _pooled_size(cfg: FrontendConfig) -> tuple[int, int]:
    if cfg.pooled_hw is not None:
        return cfg.pooled_hw
    h, w = cfg.input_hw
    for _, _, k, s, p in _conv_stack(cfg):
        h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return h // 2, w // 2


class Frontend(nn.Module):
    """A frozen-able per-frame feature extractor (:class:`SCNN`, :class:`RGBCNN`): ``extract(frames)`` gives
    ``feature_size`` features per frame and the operations they cost."""

    kind = ""
    spiking = False
    norms: nn.ModuleList  #: the BatchNorm2d layers, set by each subclass

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__()
        self.config = config
        self.feature_size = config.features
        ph, pw = _pooled_size(config)
        self._flat = config.widths[3] * ph * pw

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.pooled_hw is None:
            return F.avg_pool2d(x, 2)
        return F.adaptive_avg_pool2d(x, self.config.pooled_hw)

    def _norm(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """``self.norms[i](x)``; in eval mode the same kernel called directly (the module's Python costs more than
        the normalisation of one frame)."""
        bn = self.norms[i]
        assert isinstance(bn, nn.BatchNorm2d)  # for the type checker: a ModuleList yields plain Modules
        if self.training or not bn.track_running_stats:
            return bn(x)
        return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)

    def _check(self, x: torch.Tensor) -> None:
        c, (h, w) = self.config.in_channels, self.config.input_hw
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, h, w):
            raise FrontendError(f"{type(self).__name__} expects frames [B, {c}, {h}, {w}], got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.extract(x, count=False).features

    def extract(self, x: torch.Tensor, count: bool = True) -> FrontendOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_component(self) -> Component:
        state = {k: v.detach().clone() for k, v in self.state_dict().items()}
        return Component(self.kind, self.config.to_dict(), state)


class SCNN(Frontend):
    """Spiking CNN on event frames ``[B, 2, H, W]``: four LIF conv layers (BatchNorm before conv 2-4), average
    pooling, two LIF FC layers; one step from rest, so the feature (``features`` binary spikes) depends on this frame
    only. Ops: every layer is driven by sparse input, so taps on non-zero inputs are ACs (the input of conv 1 is event
    counts; inputs of later layers are spikes, BatchNorm being foldable into the next convolution); the first FC layer
    sees pooled spike rates and costs MACs on its non-zero inputs."""

    kind = SCNN_KIND
    spiking = True

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__(config)
        sur = Surrogate()
        self.convs = nn.ModuleList(
            ConvLIF(i, o, k, s, p, decay=config.decay, v_th=config.v_th, surrogate=sur)
            for i, o, k, s, p in _conv_stack(config)
        )
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) for c in config.widths[:3])
        self.fc1 = nn.Linear(self._flat, config.hidden, bias=False)
        self.fc2 = nn.Linear(config.hidden, config.features, bias=False)
        self.surrogate = sur

    @property
    def conv_layers(self) -> list[ConvLIF]:
        """``convs`` typed (a ModuleList yields plain Modules)."""
        return [c for c in self.convs if isinstance(c, ConvLIF)]

    def extract(self, x: torch.Tensor, count: bool = True) -> FrontendOutput:
        self._check(x)
        b = x.shape[0]
        macs = torch.zeros(b, dtype=torch.float64)
        acs = torch.zeros(b, dtype=torch.float64)
        h = x
        rates = []
        for i, conv in enumerate(self.conv_layers):
            inp = h if i == 0 else self._norm(i - 1, h)
            if count:
                # spiking input: ACs only where the (pre-norm) input is non-zero
                _, a = count_conv_ops(conv.conv, h, spiking_input=True)
                acs += a.to(torch.float64)
            # ConvLIF.step from rest, without the zero state: u = drive, s = H(u - v_th) (same values and gradient)
            h = self._fire(conv.conv(inp), conv.v_th, conv.surrogate)
            rates.append(h.detach().mean())
        pooled = self._pool(h).flatten(1)
        if count:
            macs += (pooled != 0).sum(1).to(torch.float64).cpu() * self.fc1.out_features
        s1 = self._fire(self.fc1(pooled), self.config.v_th, self.surrogate)
        if count:
            acs += (s1 != 0).sum(1).to(torch.float64).cpu() * self.fc2.out_features
        s2 = self._fire(self.fc2(s1), self.config.v_th, self.surrogate)
        return FrontendOutput(s2, macs, acs, {"spike_rates": torch.stack(rates).tolist()})

    def _fire(self, drive: torch.Tensor, th: float, surrogate: Surrogate) -> torch.Tensor:
        """Spikes of ``drive`` at threshold ``th``: in training the first-order ``_RectSpike`` (same values and
        gradients, fewer kernels), else ``model.spike``."""
        if self.training and drive.requires_grad and torch.is_grad_enabled() and surrogate.kind is SurrogateKind.RECT:
            return _RectSpike.apply(drive, th, surrogate.width)
        return spike(drive - th, surrogate)


class RGBCNN(Frontend):
    """CNN on RGB(-D) frames ``[B, 3|4, H, W]``: four ReLU conv layers (BatchNorm after conv 1-3), average pooling,
    two FC layers; real-valued ``features``-d output. Every multiply is a MAC."""

    kind = CNN_KIND

    def __init__(self, config: FrontendConfig) -> None:
        super().__init__(config)
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, s, p, bias=False) for i, o, k, s, p in _conv_stack(config))
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) for c in config.widths[:3])
        self.fc1 = nn.Linear(self._flat, config.hidden)
        self.fc2 = nn.Linear(config.hidden, config.features)
        self._macs_per_frame: dict[tuple[int, ...], float] = {}

    @property
    def conv_layers(self) -> list[nn.Conv2d]:
        """``convs`` typed (a ModuleList yields plain Modules)."""
        return [c for c in self.convs if isinstance(c, nn.Conv2d)]

    def extract(self, x: torch.Tensor, count: bool = True) -> FrontendOutput:
        self._check(x)
        b = x.shape[0]
        # Real-valued input: every in-bounds tap is a MAC whatever the pixel values, so a frame's MACs depend on
        # its size only; counted on the first frame of a size, then reused (the count cost ~1/3 of the forward).
        per_frame = self._macs_per_frame.get(tuple(x.shape[2:])) if count else 0.0
        conv_macs = 0.0
        h = x
        for i, conv in enumerate(self.conv_layers):
            if per_frame is None:
                conv_macs += float(count_conv_ops(conv, h[:1], spiking_input=False)[0][0])
            h = conv(h)
            h = F.relu(self._norm(i, h) if i < 3 else h)
        pooled = self._pool(h).flatten(1)
        if per_frame is None:
            per_frame = conv_macs + float(self.fc1.in_features * self.fc1.out_features
                                          + self.fc2.in_features * self.fc2.out_features)
            self._macs_per_frame[tuple(x.shape[2:])] = per_frame
        out = F.relu(self.fc2(F.relu(self.fc1(pooled))))
        zero = torch.zeros(b, dtype=torch.float64)
        return FrontendOutput(out, zero + per_frame, zero)


def build_frontend(component: Component) -> Frontend:
    """The front-end module stored in a bundle component (``scnn`` or ``cnn``), in eval mode."""
    cfg = FrontendConfig.from_dict(component.config)
    cls = {SCNN_KIND: SCNN, CNN_KIND: RGBCNN}.get(component.kind)
    if cls is None:
        raise FrontendError(f"unknown front-end kind {component.kind!r} (expected {SCNN_KIND!r} or {CNN_KIND!r})")
    module = cls(cfg)
    try:
        module.load_state_dict(component.state)
    except RuntimeError as exc:
        raise FrontendError(f"front-end {component.kind!r}: weights do not match its config ({exc})") from exc
    return module.eval()


#: How ``Bundle.build`` makes front-ends from their stored components (passed explicitly by the loaders).
BUILDERS: dict[str, Callable[[Component], nn.Module]] = {SCNN_KIND: build_frontend, CNN_KIND: build_frontend}
