"""Inference-only HSTNN forward pass for the online engine: the model core's batch run (``HSTNN.run``) and its
Eq. 23-25 op count (``count_ops``) in one pass with few tensor ops per step.

One decision runs the HSTNN on a 9-step window; at these sizes the time goes into per-op dispatch, not arithmetic,
so this path fuses the two populations' input weights once (not per call), updates LIF states with in-place ops,
writes each layer's outputs straight into the next layer's input, and counts ACs from the spikes and MACs from the
operand blocks it already holds (``active_blocks``: an all-zero block, such as the RGB feature outside the window's
RGB steps or the zero state before the first step, is skipped, as ``count_ops`` skips it). The arithmetic is the
model core's, op for op, so logits and spikes equal ``HSTNN.run`` exactly (tested); networks other than LIF +
vanilla RNN fall back to the model core.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hstnn_ros.model import HSTNN, LIF, RNN, Decoder, NonSpikingKind, SpikingKind, active_blocks
from hstnn_ros.model.network import HybridLayer
from hstnn_ros.runtime.errors import RuntimeEngineError


def _lif_rnn(layer: HybridLayer) -> tuple[HybridLayer, LIF, RNN]:
    """A layer and its two populations, typed as the kinds :meth:`FastHstnn.supports` admits."""
    snn, rnn = layer.snn, layer.rnn
    if type(snn) is not LIF or type(rnn) is not RNN:
        raise RuntimeEngineError(f"FastHstnn needs LIF + vanilla RNN layers, got {type(snn).__name__} + "
                                 f"{type(rnn).__name__}")
    return layer, snn, rnn


class FastHstnn:
    """``run(x[B, T, F]) -> (logits[B, C], macs[B], acs[B], spike rates per layer)`` for a LIF + RNN
    :class:`HSTNN`. Fused weights are rebuilt when a parameter changes (``load_state_dict``, ``.to``)."""

    def __init__(self, model: HSTNN) -> None:
        if not self.supports(model):
            cfg = model.config
            raise RuntimeEngineError(f"FastHstnn runs LIF + vanilla RNN networks, this one is {cfg.spiking_kind.name} "
                                     f"+ {cfg.nonspiking_kind.name}: run it through HSTNN.run and count_ops")
        self.model = model
        self._layers = [_lif_rnn(layer) for layer in model.hybrid_layers]
        self._params = list(model.parameters())  # same objects for life: .to() and load_state_dict change data
        self._key: tuple | None = None
        self._weights: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]] = []

    @staticmethod
    def supports(model: HSTNN) -> bool:
        """True for the network kinds this path implements (LIF + vanilla RNN)."""
        cfg = model.config
        return cfg.spiking_kind is SpikingKind.LIF and cfg.nonspiking_kind is NonSpikingKind.RNN

    def _fused(self) -> list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]]:
        key = tuple((p.data_ptr(), p._version, p.dtype) for p in self._params)
        if key != self._key:
            with torch.no_grad():  # torch.cat: a new tensor, not a view of the parameters
                self._weights = [(*layer.fused_input_weight(), rnn.fc_rec.weight) for layer, _, rnn in self._layers]
            self._key = key
        return self._weights

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[float, ...]]:
        """Logits, MACs and ACs per sample (float64) and the mean spike rate of each non-empty SNN population."""
        return self.run_readout(x)[:4]

    @torch.no_grad()
    def run_readout(self, x: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[float, ...], torch.Tensor]:
        """``run`` plus the readout's input ``[B, n]`` (``RunRecord.readout_input``)."""
        model, cfg = self.model, self.model.config
        model._check_input(x)
        B, T, _ = x.shape
        y = x.transpose(0, 1)  # time-major [T, B, F], as HSTNN.run
        acs = torch.zeros(B, dtype=torch.float64, device=x.device)
        macs = torch.zeros(B, dtype=torch.float64, device=x.device)
        nnz_in = (x[..., : cfg.input_spiking] != 0).sum((1, 2)).to(torch.float64)  # spikes into layer 1
        real_in = y[..., cfg.input_spiking :]  # [T, B, n_real]: its all-zero steps are skipped
        rates: list[float] = []
        s_f = y
        for (layer, lif, _), (w, b, w_rec) in zip(self._layers, self._fused(), strict=True):
            n_s, n_r = layer.spec.n_snn, layer.spec.n_rnn
            acs += nnz_in * (n_s + n_r)
            macs += active_blocks(real_in).sum(0) * float(real_in.shape[-1] * (n_s + n_r))
            drive = F.linear(y, w, b)
            out = x.new_empty(T, B, n_s + n_r)
            if n_s:  # per-step views made once: tensor indexing costs more than the arithmetic here
                d_s = drive[..., :n_s].unbind(0)
                fired = torch.empty(T, B, n_s, dtype=torch.bool, device=x.device)
                f_t = fired.unbind(0)
                u = d_s[0].clone()  # from rest: decay * 0 * (1 - 0) + drive
                torch.ge(u, lif.v_th, out=f_t[0])  # u - v_th >= 0 (spike()) for finite u
                for t in range(1, T):
                    u.mul_(lif.decay).masked_fill_(f_t[t - 1], 0.0).add_(d_s[t])  # decay * u * (1 - s) + drive
                    torch.ge(u, lif.v_th, out=f_t[t])
                out[..., :n_s] = fired
            if n_r:
                d_r, o_r = drive[..., n_s:].unbind(0), out[..., n_s:].unbind(0)
                # r_0 = 0: the recurrent term is exactly 0; contiguous, as the sum would be (SIMD sigmoid rounds apart)
                r = torch.sigmoid(d_r[0].contiguous())
                o_r[0].copy_(r)
                for t in range(1, T):  # r stays a fresh (aligned) tensor: the GEMV's rounding depends on alignment
                    r = torch.sigmoid(F.linear(r, w_rec).add_(d_r[t]))
                    o_r[t].copy_(r)
                macs += active_blocks(out[:-1, :, n_s:]).sum(0) * float(n_r * n_r)  # r_{t-1}, t >= 1
            s_f = out[..., :n_s]
            real_in = out[..., n_s:]
            nnz_in = s_f.sum((0, 2), dtype=torch.float64) if n_s else torch.zeros_like(acs)
            if n_s:
                rates.append(float(nnz_in.sum()) / (T * B * n_s))
            y = out
        C = cfg.num_classes
        if cfg.decoder is Decoder.RATE:
            dec = s_f.mean(0)
            acs += nnz_in * C
        else:
            dec = s_f[-1]
            acs += s_f[-1].sum(-1, dtype=torch.float64) * C
        r_last = y[-1, :, cfg.hidden[-1].n_snn :]
        macs += active_blocks(r_last) * float(r_last.shape[-1] * C)
        feat = torch.cat([dec, r_last], dim=-1)
        return model.readout(feat), macs, acs, tuple(rates), feat
