"""The hybrid spatiotemporal network (HSTNN, paper Eqs. 1-2): hybrid layers of an SNN and an RNN population fed by
the concatenated outputs of the layer below, and a readout on ``concat(d(s_1..T), r_T)``.

Batch mode runs layer by layer (valid: no top-down connections): each layer's input projection for both populations
and all time steps is ONE matrix product, then a short time loop does the recurrence. Streaming mode
(``init_state``/``step``) advances all layers one step; after T steps it equals the batch result.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from hstnn_ros.model import sequence
from hstnn_ros.model.component import HSTNN_KIND, Component
from hstnn_ros.model.enums import Decoder, NonSpikingKind, Role, SpikingKind, SurrogateKind
from hstnn_ros.model.errors import ModelError
from hstnn_ros.model.neurons import ALIF, LIF, LSTM, RNN, Population, State
from hstnn_ros.model.sequence import lif_sequence, rnn_sequence
from hstnn_ros.model.surrogate import Surrogate


@dataclass(frozen=True)
class LayerSpec:
    """Population sizes of one hybrid layer; either may be 0, not both."""

    n_snn: int
    n_rnn: int

    def __post_init__(self) -> None:
        for name in ("n_snn", "n_rnn"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ModelError(f"LayerSpec.{name} must be an int >= 0, got {v!r}")
        if self.n_snn + self.n_rnn == 0:
            raise ModelError("a hybrid layer needs at least one neuron (n_snn + n_rnn > 0), got 0 + 0")

    @property
    def size(self) -> int:
        """Output width of the layer (``n_snn + n_rnn``)."""
        return self.n_snn + self.n_rnn


_E = TypeVar("_E", bound=Enum)


def _enum(cls: type[_E], value: Any, name: str) -> _E:
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        for member in cls:
            if value.lower() in (member.value, member.name.lower()):
                return member
    raise ModelError(f"HSTNNConfig.{name} must be one of {[m.value for m in cls]}, got {value!r}")


@dataclass(frozen=True)
class HSTNNConfig:
    """Architecture and neuron constants of an HSTNN.

    Attributes:
        input_size: features per time step.
        hidden: one :class:`LayerSpec` per hybrid layer (at least one).
        num_classes: readout width (places).
        input_spiking: how many LEADING input features are spikes (0/1); they are counted as ACs, the rest as MACs.
        spiking_kind, nonspiking_kind: population dynamics.
        decay, v_th: LIF membrane decay and threshold (ALIF: initial decay and base threshold).
        surrogate, surrogate_width: surrogate gradient and its RECT half-width ``a``.
        decoder: readout decoding of the last layer's spikes.
        bias: biases in the hybrid layers (the paper has none).
        readout_bias: bias in the readout.
        alif_adapt, alif_tau_adp: ALIF adaptation strength and initial adaptation time constant (steps).
    """

    input_size: int
    hidden: tuple[LayerSpec, ...]
    num_classes: int
    input_spiking: int = 0
    spiking_kind: SpikingKind = SpikingKind.LIF
    nonspiking_kind: NonSpikingKind = NonSpikingKind.RNN
    decay: float = 0.5
    v_th: float = 0.5
    surrogate: SurrogateKind = SurrogateKind.RECT
    surrogate_width: float = 0.5
    decoder: Decoder = Decoder.RATE
    bias: bool = False
    readout_bias: bool = True
    alif_adapt: float = 0.2
    alif_tau_adp: float = 20.0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "hidden", tuple(h if isinstance(h, LayerSpec) else _spec(h) for h in self.hidden))
        set_(self, "spiking_kind", _enum(SpikingKind, self.spiking_kind, "spiking_kind"))
        set_(self, "nonspiking_kind", _enum(NonSpikingKind, self.nonspiking_kind, "nonspiking_kind"))
        set_(self, "surrogate", _enum(SurrogateKind, self.surrogate, "surrogate"))
        set_(self, "decoder", _enum(Decoder, self.decoder, "decoder"))
        for name in ("input_size", "num_classes", "input_spiking"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ModelError(f"HSTNNConfig.{name} must be an int, got {v!r}")
        if self.input_size < 1 or self.num_classes < 1:
            raise ModelError(f"HSTNNConfig needs input_size >= 1 and num_classes >= 1, got "
                             f"{self.input_size} and {self.num_classes}")
        if not 0 <= self.input_spiking <= self.input_size:
            raise ModelError(f"HSTNNConfig.input_spiking must be in [0, input_size={self.input_size}], "
                             f"got {self.input_spiking}")
        if not self.hidden:
            raise ModelError("HSTNNConfig.hidden needs at least one hybrid layer")
        for name in ("decay", "v_th", "surrogate_width", "alif_adapt", "alif_tau_adp"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ModelError(f"HSTNNConfig.{name} must be a finite number, got {v!r}")
        if not 0 <= self.decay <= 1 or self.v_th <= 0 or self.surrogate_width <= 0:
            raise ModelError(f"HSTNNConfig needs 0 <= decay <= 1, v_th > 0, surrogate_width > 0; got "
                             f"decay={self.decay}, v_th={self.v_th}, surrogate_width={self.surrogate_width}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (enums by value); :meth:`from_dict` inverts it."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "hidden":
                v = [{"n_snn": h.n_snn, "n_rnn": h.n_rnn} for h in v]
            elif hasattr(v, "value"):
                v = v.value
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> HSTNNConfig:
        """Build from a dict (e.g. YAML/JSON); enums by value or name, ``hidden`` as dicts or ``[n_snn, n_rnn]``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ModelError(f"unknown HSTNNConfig keys {unknown}; expected some of {sorted(known)}")
        missing = sorted({"input_size", "hidden", "num_classes"} - set(raw))
        if missing:
            raise ModelError(f"HSTNNConfig needs keys {missing}")
        kw = dict(raw)
        if isinstance(kw["hidden"], str | bytes) or not isinstance(kw["hidden"], Sequence):
            raise ModelError(f"HSTNNConfig.hidden must be a list of layers, got {kw['hidden']!r}")
        kw["hidden"] = tuple(_spec(h) for h in kw["hidden"])
        return cls(**kw)

    def make_surrogate(self) -> Surrogate:
        """The configured surrogate gradient."""
        return Surrogate(kind=self.surrogate, width=float(self.surrogate_width))


def _spec(h: Any) -> LayerSpec:
    if isinstance(h, LayerSpec):
        return h
    if isinstance(h, Mapping) and set(h) == {"n_snn", "n_rnn"}:
        return LayerSpec(h["n_snn"], h["n_rnn"])
    if isinstance(h, Sequence) and not isinstance(h, str) and len(h) == 2:
        return LayerSpec(h[0], h[1])
    raise ModelError(f"a hidden layer must be {{'n_snn': int, 'n_rnn': int}} or [n_snn, n_rnn], got {h!r}")


@dataclass
class RunRecord:
    """Everything a batch run produced: logits, per-layer traces (``[B, T, n]``, empty ``n`` allowed) and the
    readout's input ``[B, n_snn + n_rnn]`` (decoded last-layer spikes + last RNN state: the window's representation,
    what ``model.unknown_place`` measures novelty on)."""

    logits: torch.Tensor
    spikes: list[torch.Tensor]
    rnn_out: list[torch.Tensor]
    readout_input: torch.Tensor | None = None


@dataclass
class NetState:
    """Streaming state: per layer ``(snn state, rnn state)``, the running spike sum of the last layer, steps done."""

    layers: list[tuple[State, State]]
    spike_sum: torch.Tensor
    steps: int = 0


class HybridLayer(nn.Module):
    """One hybrid layer: an SNN and an RNN population on the same input; output ``concat(s_t, r_t)``."""

    def __init__(self, in_features: int, spec: LayerSpec, cfg: HSTNNConfig) -> None:
        super().__init__()
        self.in_features, self.spec = int(in_features), spec
        sur = cfg.make_surrogate()
        if cfg.spiking_kind is SpikingKind.LIF:
            self.snn: Population = LIF(in_features, spec.n_snn, decay=cfg.decay, v_th=cfg.v_th, surrogate=sur,
                                       bias=cfg.bias)
        else:
            self.snn = ALIF(in_features, spec.n_snn, decay=cfg.decay, v_th=cfg.v_th, surrogate=sur, bias=cfg.bias,
                            adapt=cfg.alif_adapt, tau_adp=cfg.alif_tau_adp)
        rnn_cls = RNN if cfg.nonspiking_kind is NonSpikingKind.RNN else LSTM
        self.rnn: Population = rnn_cls(in_features, spec.n_rnn, bias=cfg.bias)

    def fused_input_weight(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Input weights of both populations stacked (SNN rows first) so one GEMM drives the whole layer."""
        ws, bs = self.snn.input_weight()
        wr, br = self.rnn.input_weight()
        w = torch.cat([ws, wr], dim=0)
        b = None if bs is None and br is None else torch.cat([
            bs if bs is not None else ws.new_zeros(ws.shape[0]), br if br is not None else wr.new_zeros(wr.shape[0])])
        return w, b

    def init_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> tuple[State, State]:
        """Zero state of both populations."""
        return self.snn.init_state(batch, device, dtype), self.rnn.init_state(batch, device, dtype)

    def advance(self, drive: torch.Tensor, state: tuple[State, State],
                masks: tuple[torch.Tensor, torch.Tensor] | None) -> tuple[torch.Tensor, torch.Tensor,
                                                                          tuple[State, State]]:
        """One step from the fused drive ``[B, rows]``: ``(s_t, r_t, new state)`` with masks applied."""
        d_s, d_r = drive.split([self.spec.n_snn, drive.shape[-1] - self.spec.n_snn], dim=-1)
        s, st_s = self.snn.advance(d_s, state[0])
        r, st_r = self.rnn.advance(d_r, state[1])
        if masks is not None:
            s, r = s * masks[0], r * masks[1]
            st_r = self.rnn.masked_state(st_r, masks[1])
        return s, r, (st_s, st_r)

    def run(self, y: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor] | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """All steps of a TIME-MAJOR input ``y[T, B, in]`` -> ``(s[T, B, n_snn], r[T, B, n_rnn])``.

        Time-major keeps each step's drive a contiguous block and lets autograd undo the per-step slicing with one
        ``stack`` instead of one full-size zero tensor per step.
        """
        B = y.shape[1]
        w, b = self.fused_input_weight()
        drive = F.linear(y, w, b)  # one GEMM over T*B rows for both populations
        d_s, d_r = drive.split([self.spec.n_snn, drive.shape[-1] - self.spec.n_snn], dim=-1)
        if type(self.snn) is LIF and type(self.rnn) is RNN and torch.is_grad_enabled() and sequence.enabled() \
                and not torch.jit.is_tracing():
            # training: the recurrences as one autograd node each (model.sequence), same values, a cheaper backward
            # (not when tracing, e.g. the ONNX export: a tracer records the step-by-step form, not a custom node)
            snn = self.snn
            s_all = lif_sequence(d_s, decay=snn.decay, v_th=snn.v_th, surrogate=snn.surrogate)
            r_all = rnn_sequence(d_r, self.rnn.fc_rec.weight, None if masks is None else masks[1])
            return (s_all, r_all) if masks is None else (s_all * masks[0], r_all)
        st_s, st_r = self.init_state(B, y.device, y.dtype)
        s_list, r_list = [], []
        for ds_t, dr_t in zip(d_s.unbind(0), d_r.unbind(0), strict=True):
            s, st_s = self.snn.advance(ds_t, st_s)
            r, st_r = self.rnn.advance(dr_t, st_r)
            if masks is not None:
                s, r = s * masks[0], r * masks[1]
                st_r = self.rnn.masked_state(st_r, masks[1])
            s_list.append(s)
            r_list.append(r)
        return torch.stack(s_list, 0), torch.stack(r_list, 0)


@dataclass(frozen=True)
class KeptNeurons:
    """Indices of the kept neurons of one hybrid layer: sorted, unique ``LongTensor`` s (possibly empty)."""

    snn: torch.Tensor
    rnn: torch.Tensor

    def __post_init__(self) -> None:
        for name in ("snn", "rnn"):
            t = torch.as_tensor(getattr(self, name), dtype=torch.long).reshape(-1).cpu()
            if t.numel() > 1 and not bool((t[1:] > t[:-1]).all()):
                raise ModelError(f"KeptNeurons.{name} must be sorted and unique, got {t.tolist()}")
            object.__setattr__(self, name, t)

    @classmethod
    def all_of(cls, spec: LayerSpec) -> KeptNeurons:
        """Every neuron of a layer."""
        return cls(torch.arange(spec.n_snn), torch.arange(spec.n_rnn))


def check_kept(model: HSTNN, kept: Sequence[KeptNeurons]) -> None:
    """Raise :class:`ModelError` unless ``kept`` has one in-range entry per hidden layer and no layer ends empty."""
    if len(kept) != len(model.layers):
        raise ModelError(f"need one KeptNeurons per hidden layer ({len(model.layers)}), got {len(kept)}")
    for i, (k, spec) in enumerate(zip(kept, model.config.hidden, strict=True)):
        if not isinstance(k, KeptNeurons):
            raise ModelError(f"kept[{i}] must be KeptNeurons, got {type(k).__name__}")
        for name, n in (("snn", spec.n_snn), ("rnn", spec.n_rnn)):
            idx = getattr(k, name)
            if idx.numel() and (int(idx[0]) < 0 or int(idx[-1]) >= n):
                raise ModelError(f"kept[{i}].{name} indices must be in [0, {n}), got {idx.tolist()}")
        if k.snn.numel() + k.rnn.numel() == 0:
            raise ModelError(f"kept[{i}] keeps no neuron: a hybrid layer cannot be empty")


class HSTNN(nn.Module):
    """Hybrid spatiotemporal network of any depth (see module docstring)."""

    def __init__(self, config: HSTNNConfig) -> None:
        super().__init__()
        if not isinstance(config, HSTNNConfig):
            raise ModelError(f"HSTNN needs an HSTNNConfig, got {type(config).__name__} (use HSTNNConfig.from_dict)")
        self.config = config
        layers, n_in = [], config.input_size
        for spec in config.hidden:
            layers.append(HybridLayer(n_in, spec, config))
            n_in = spec.size
        self.layers = nn.ModuleList(layers)
        self.readout = nn.Linear(n_in, config.num_classes, bias=config.readout_bias)

    @property
    def hybrid_layers(self) -> list[HybridLayer]:
        """The hidden layers, bottom-up, typed (iterating ``layers``, an ``nn.ModuleList``, yields plain Modules)."""
        out = [layer for layer in self.layers if isinstance(layer, HybridLayer)]
        if len(out) != len(self.layers):
            raise ModelError(f"HSTNN.layers must hold only HybridLayers, got {[type(m).__name__ for m in self.layers]}")
        return out

    # ---------------------------------------------------------------- bundles
    def to_component(self) -> Component:
        """This network as a bundle component (kind ``"hstnn"``, JSON config, CPU state dict)."""
        return Component(kind=HSTNN_KIND, config=self.config.to_dict(),
                         state={k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()})

    # ---------------------------------------------------------------- introspection
    def populations(self) -> Iterator[tuple[int, Role, Population]]:
        """``(layer index, Role.SNN | Role.RNN, population)`` for every non-empty population, bottom-up."""
        for i, layer in enumerate(self.hybrid_layers):
            if layer.snn.size:
                yield i, Role.SNN, layer.snn
            if layer.rnn.size:
                yield i, Role.RNN, layer.rnn

    # ---------------------------------------------------------------- validation
    def _check_input(self, x: torch.Tensor, what: str = "x") -> None:
        F_ = self.config.input_size
        if not isinstance(x, torch.Tensor):
            raise ModelError(f"{what} must be a torch.Tensor [B, T, {F_}], got {type(x).__name__}")
        if x.dim() != 3 or x.shape[2] != F_ or x.shape[1] < 1:
            raise ModelError(f"{what} must be [B, T >= 1, {F_}] (batch, time steps, features), got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ModelError(f"{what} must be floating point, got {x.dtype}")
        w = self.readout.weight
        if x.dtype != w.dtype or x.device != w.device:
            raise ModelError(f"{what} is {x.dtype} on {x.device} but the model is {w.dtype} on {w.device}; "
                             f"convert one (e.g. x.to(model.readout.weight))")
        if not bool(torch.isfinite(x).all()):
            raise ModelError(f"{what} contains NaN or inf values; clean the features before the model")

    def _masks(self, keep: Sequence[KeptNeurons] | None, ref: torch.Tensor
               ) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        if keep is None:
            return [None] * len(self.layers)
        check_kept(self, keep)
        masks: list[tuple[torch.Tensor, torch.Tensor] | None] = []
        for layer, k in zip(self.hybrid_layers, keep, strict=True):
            ms = ref.new_zeros(layer.spec.n_snn)
            mr = ref.new_zeros(layer.spec.n_rnn)
            ms[k.snn] = 1
            mr[k.rnn] = 1
            masks.append((ms, mr))
        return masks

    def _check_gates(self, gates: Sequence[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor
                     ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if len(gates) != len(self.layers):
            raise ModelError(f"gates has {len(gates)} layers, the model {len(self.layers)}")
        for i, (layer, pair) in enumerate(zip(self.hybrid_layers, gates, strict=True)):
            for name, g, n in (("snn", pair[0], layer.spec.n_snn), ("rnn", pair[1], layer.spec.n_rnn)):
                if not isinstance(g, torch.Tensor) or g.dim() not in (1, 2) or g.shape[-1] != n or (
                        g.dim() == 2 and g.shape[0] not in (1, x.shape[0])):
                    got = tuple(g.shape) if isinstance(g, torch.Tensor) else type(g).__name__
                    raise ModelError(f"gates[{i}] {name} must be [{n}] or [B={x.shape[0]}, {n}], got {got}")
        return [(g_s, g_r) for g_s, g_r in gates]

    # ---------------------------------------------------------------- batch API
    def run(self, x: torch.Tensor, keep: Sequence[KeptNeurons] | None = None,
            gates: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None) -> RunRecord:
        """Batch run on ``x[B, T, F]``; ``keep`` masks every neuron not kept (outputs zero, as if removed).

        ``gates`` (instead of ``keep``): per hidden layer ``(g_snn, g_rnn)``, ``[n]`` or per sample ``[B, n]``,
        multiplying each neuron's output where the next layer, the readout and its own recurrence see it (1 = as
        trained, 0 = removed, as ``keep`` does). Differentiable: the Selection stage takes the loss's derivatives
        with respect to them (a neuron's removal saliency)."""
        self._check_input(x)
        if keep is not None and gates is not None:
            raise ModelError("run takes keep or gates, not both (a kept mask is gates of 0 and 1)")
        masks = self._masks(keep, x) if gates is None else self._check_gates(gates, x)
        spikes, rnn_out, y = [], [], x.transpose(0, 1)  # time-major inside: [T, B, F]
        for layer, m in zip(self.hybrid_layers, masks, strict=True):
            s, r = layer.run(y, m)
            spikes.append(s)
            rnn_out.append(r)
            y = torch.cat([s, r], dim=-1)
        dec = spikes[-1].mean(0) if self.config.decoder is Decoder.RATE else spikes[-1][-1]
        feat = torch.cat([dec, rnn_out[-1][-1]], dim=-1)
        return RunRecord(logits=self.readout(feat), spikes=[s.transpose(0, 1) for s in spikes],
                         rnn_out=[r.transpose(0, 1) for r in rnn_out], readout_input=feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C]`` for windows ``x[B, T, F]``."""
        return self.run(x).logits

    def masked_forward(self, x: torch.Tensor, keep: Sequence[KeptNeurons]) -> torch.Tensor:
        """Logits of the network with every neuron outside ``keep`` removed (equals ``shrink(self, keep)(x)``)."""
        return self.run(x, keep=keep).logits

    # ---------------------------------------------------------------- streaming API
    def init_state(self, batch: int, device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> NetState:
        """Zero state for ``batch`` streams."""
        if batch < 1:
            raise ModelError(f"init_state needs batch >= 1, got {batch}")
        w = self.readout.weight
        device, dtype = device or w.device, dtype or w.dtype
        return NetState(layers=[layer.init_state(batch, device, dtype) for layer in self.hybrid_layers],
                        spike_sum=torch.zeros(batch, self.config.hidden[-1].n_snn, device=device, dtype=dtype))

    def step(self, x_t: torch.Tensor, state: NetState) -> tuple[torch.Tensor, NetState]:
        """Advance one time step on ``x_t[B, F]``: logits as if the window ended here, and the new state."""
        if not isinstance(x_t, torch.Tensor) or x_t.dim() != 2:
            raise ModelError(f"step expects x_t[B, {self.config.input_size}], got "
                             f"{tuple(x_t.shape) if isinstance(x_t, torch.Tensor) else type(x_t).__name__}")
        self._check_input(x_t[:, None], "x_t")
        if not isinstance(state, NetState) or state.spike_sum.shape[0] != x_t.shape[0]:
            raise ModelError(f"step needs the NetState from init_state({x_t.shape[0]}) or a previous step")
        y, new_layers = x_t, []
        s = r = x_t
        for layer, st_in in zip(self.hybrid_layers, state.layers, strict=True):
            w, b = layer.fused_input_weight()
            s, r, st = layer.advance(F.linear(y, w, b), st_in, None)
            new_layers.append(st)
            y = torch.cat([s, r], dim=-1)
        spike_sum = state.spike_sum + s
        steps = state.steps + 1
        dec = spike_sum / steps if self.config.decoder is Decoder.RATE else s
        logits = self.readout(torch.cat([dec, r], dim=-1))
        return logits, NetState(layers=new_layers, spike_sum=spike_sum, steps=steps)
