"""Rounding-error bounds for tests that compare two float evaluations of the same HSTNN arithmetic.

Two code paths that compute the same expressions (batch vs streaming, a masked vs a shrunk network, one CPU's kernels
vs another's) still round differently: a GEMM sums its K products in an order that depends on the shapes and the
kernel (MKL, oneDNN, AVX2, AVX-512 or plain C++), and vectorised ``exp``/``sigmoid``/``tanh`` differ from the scalar
ones by an ulp. Exact equality is therefore not a property of the model; a bound is.

The bound used here is the classic forward error of a sum (Higham, *Accuracy and Stability of Numerical Algorithms*,
2nd ed., eq. 3.4 and Lemma 3.1): a dot product of K terms plus a bias, summed in ANY order in a precision with unit
roundoff ``u``, is within ``gamma(K + 1) * sum_i |a_i b_i| (+ |bias|)`` of the exact value, ``gamma(n) = n u / (1 -
n u)``. Each path is within that of the exact result, so two paths are within twice that. The errors are carried
forward through the network (per element, in float64, from the model's own float64 states):

* drive ``d = W y + b``: ``E_d = |W| E_y + gamma(K + 1) (|W| |y| + |b|)``;
* LIF ``u = decay u' (1 - s') + d``: ``E_u = (1 - s') decay E_u' + E_d`` plus one rounding per operation;
  ALIF also carries the error of its adaptive threshold;
* sigmoid/tanh are 1/4- and 1-Lipschitz; each transcendental adds ``TRANSCENDENTAL_ULPS`` ulps of its value (SLEEF's
  vectorised functions are within 1 ulp, glibc's within 1; 4 leaves room for ``1 / (1 + exp(-x))``'s own roundings);
* products ``a b``: ``|a| E_b + |b| E_a + E_a E_b``.

These bounds hold only while both paths produce the same spikes. A spike is decided when its membrane is further
from the threshold than twice the bound (``margin > 2 E``): then both paths, each within E of the exact membrane,
fall on the same side. By induction over steps and layers, if every unit is decided, all spikes agree exactly and the
bounds hold; :attr:`Bound.undecided` counts the units where this argument does not go through.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from hstnn_ros.model import HSTNN, Decoder
from hstnn_ros.model.neurons import ALIF, LSTM, MIN_TAU

U64 = 2.0**-53  #: unit roundoff of float64
U32 = 2.0**-24  #: unit roundoff of float32
TRANSCENDENTAL_ULPS = 4.0


def gamma(n: int, u: float) -> float:
    """Higham's gamma_n = n u / (1 - n u): relative bound of n roundings."""
    return n * u / (1 - n * u)


def linear_bound(w: torch.Tensor, b: torch.Tensor | None, y: torch.Tensor, e_y: torch.Tensor | float, *, u: float,
                 k_max: int = 0) -> torch.Tensor:
    """Bound on ``|fl(W y + b) - (W y + b)_exact|`` when ``y`` is known to within ``e_y`` (float64, ``[B, K]``).

    The sum has ``max(K, k_max)`` terms plus the bias: ``k_max`` covers a path whose sums have more terms (e.g. a
    masked network's exact zeros, which still move the kernel's blocking)."""
    k = max(w.shape[1], k_max) + 1
    aw = w.abs()
    e_y = torch.as_tensor(e_y, dtype=y.dtype).expand_as(y)
    mag = F.linear(y.abs() + e_y, aw) + (b.abs() if b is not None else 0.0)
    return F.linear(e_y, aw) + gamma(k, u) * mag


@dataclass
class Bound:
    """Per-path error bounds of one network evaluation (compare two paths with twice these)."""

    logits: torch.Tensor  #: [B, C]
    spikes_margin: list[torch.Tensor]  #: per layer [B, T, n_snn]: |u - threshold| / (2 E) (> 1: decided)
    rnn_out: list[torch.Tensor]  #: per layer [B, T, n_rnn]: bound on the RNN outputs
    reference: torch.Tensor  #: [B, C] float64 logits the bounds were computed around

    @property
    def undecided(self) -> int:
        """Spiking units (over samples, steps, layers) whose membrane is within twice the bound of the threshold."""
        return int(sum(int((m <= 1).sum()) for m in self.spikes_margin))

    def decided(self, layer: int) -> torch.Tensor:
        """``[B, T, n_snn]`` bool: spikes of ``layer`` that two paths must agree on."""
        return self.spikes_margin[layer] > 1

    def logits_decided(self) -> torch.Tensor:
        """``[B]`` bool: samples whose top-1 class two paths must agree on.

        Each path's logit c is within ``E_c`` of the exact one, so within ``2 E_c`` of the reference: the reference's
        top class stays on top if it beats every other class c by more than ``2 (E_top + E_c)``."""
        top = self.reference.argmax(1, keepdim=True)
        gap = self.reference.gather(1, top) - self.reference
        need = 2 * (self.logits.gather(1, top) + self.logits)
        ok = (gap > need) | (torch.arange(gap.shape[1]) == top)
        return ok.all(1)


def _lif_errors(pop, s_old, s_new, e: dict, *, e_drive: torch.Tensor, u: float) -> tuple[dict, torch.Tensor]:
    """Membrane (and ALIF threshold) error after one step, and the margin ratio |u - thr| / (2 E)."""
    tu = TRANSCENDENTAL_ULPS * u
    if isinstance(pop, ALIF):
        u_old, sp_old, b_old = s_old
        u_new, _, b_new = s_new
        a = torch.exp(-1.0 / pop.tau_m.clamp(min=MIN_TAU))
        e_a = tu * a
        rho = torch.exp(-1.0 / pop.tau_adp.clamp(min=MIN_TAU))
        e_b = rho * e.get("b", 0.0) + b_old.abs() * tu * rho + sp_old * tu * rho + 3 * u * b_new.abs()
        thr = pop.v_th + pop.adapt * b_new
        e_thr = pop.adapt * e_b + 2 * u * thr.abs()
    else:
        u_old, sp_old = s_old
        u_new, _ = s_new
        a, e_a, e_b = pop.decay, 0.0, None
        thr, e_thr = pop.v_th, u * pop.v_th  # the constants themselves round in float32
    keep = 1 - sp_old  # a spike resets the membrane exactly (times 0)
    e_u = keep * (a * e.get("u", 0.0) + u_old.abs() * e_a + 2 * u * (a * u_old).abs()) + e_drive + u * u_new.abs()
    out = {"u": e_u} if e_b is None else {"u": e_u, "b": e_b}
    return out, (u_new - thr).abs() / (2 * (e_u + e_thr))


def hstnn_bound(model: HSTNN, x: torch.Tensor, u: float, k_max: int = 0) -> Bound:
    """Bounds for evaluating ``model`` on ``x[B, T, F]`` in a precision with unit roundoff ``u`` by any code path.

    The float64 reference runs the model's own streaming API on a float64 copy (weights and inputs convert
    exactly), so the states the bounds are built on are the model's, not a re-implementation; only the error
    recurrences are written here. ``k_max``: see :func:`linear_bound`.
    """
    m = copy.deepcopy(model).double().eval()
    x = x.detach().double()
    B, T, _ = x.shape
    tu = TRANSCENDENTAL_ULPS * u
    state = m.init_state(B)
    errs: list[dict] = [{} for _ in m.layers]
    margins: list[list[torch.Tensor]] = [[] for _ in m.layers]
    rnn_e: list[list[torch.Tensor]] = [[] for _ in m.layers]
    with torch.no_grad():
        for t in range(T):
            prev = state
            _, state = m.step(x[:, t], state)
            y, e_y = x[:, t], torch.zeros_like(x[:, t])
            for i, layer in enumerate(m.layers):
                (s_old, r_old), (s_new, r_new) = prev.layers[i], state.layers[i]
                e = errs[i]
                w, b = layer.fused_input_weight()
                n_s = layer.spec.n_snn
                e_d = linear_bound(w, b, y, e_y, u=u, k_max=k_max)
                new_e, margin = _lif_errors(layer.snn, s_old, s_new, e, e_drive=e_d[:, :n_s], u=u)
                margins[i].append(margin)
                w_rec = layer.rnn.fc_rec.weight
                h_prev = r_old[0]
                e_h = e.get("r", torch.zeros_like(h_prev))
                z = F.linear(y, w, b)[:, n_s:] + F.linear(h_prev, w_rec)
                e_z = e_d[:, n_s:] + linear_bound(w_rec, None, h_prev, e_h, u=u, k_max=k_max) + u * z.abs()
                if isinstance(layer.rnn, LSTM):
                    (zi, zf, zg, zo), (ei, ef, eg, eo) = z.chunk(4, -1), e_z.chunk(4, -1)
                    gi, gf, go, gg = torch.sigmoid(zi), torch.sigmoid(zf), torch.sigmoid(zo), torch.tanh(zg)
                    ei, ef, eo = ei / 4 + tu * gi, ef / 4 + tu * gf, eo / 4 + tu * go  # sigmoid is 1/4-Lipschitz
                    eg = eg + tu * gg.abs()  # tanh is 1-Lipschitz
                    c_prev, c = r_old[1], r_new[1]
                    e_cp = e.get("c", torch.zeros_like(c_prev))
                    e_c = (gf * e_cp + c_prev.abs() * ef + ef * e_cp + gi * eg + gg.abs() * ei + ei * eg
                           + 2 * u * ((gf * c_prev).abs() + (gi * gg).abs()))
                    tc = torch.tanh(c)
                    e_tc = e_c + tu * tc.abs()
                    e_r = go * e_tc + tc.abs() * eo + eo * e_tc + u * r_new[0].abs()
                    new_e["c"] = e_c
                else:
                    e_r = e_z / 4 + tu * r_new[0].abs()
                new_e["r"] = e_r
                errs[i] = new_e
                rnn_e[i].append(e_r)
                y = torch.cat([s_new[1], r_new[0]], dim=-1)
                e_y = torch.cat([torch.zeros_like(s_new[1]), e_r], dim=-1)  # decided spikes are exact
        # readout: spikes exact while decided, the rate divides an exact count once
        dec = state.spike_sum / state.steps if m.config.decoder is Decoder.RATE else state.layers[-1][0][1]
        feat = torch.cat([dec, state.layers[-1][1][0]], dim=-1)
        e_feat = torch.cat([u * dec.abs(), rnn_e[-1][-1]], dim=-1)
        e_logits = linear_bound(m.readout.weight, m.readout.bias, feat, e_feat, u=u, k_max=k_max)
        reference = m.readout(feat)
    return Bound(
        logits=e_logits,
        spikes_margin=[torch.stack(ms, 1) for ms in margins],
        rnn_out=[torch.stack(es, 1) for es in rnn_e],
        reference=reference,
    )
