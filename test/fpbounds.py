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
* sigmoid/tanh move by at most ``(f'(z) + max|f''| E_z) E_z`` for an input error ``E_z`` (mean value theorem; the
  local slope rather than the global 1/4 and 1, else saturated units would make the bound grow ~4x per step), and
  never by more than ``E_z / 4`` or 1 (sigmoid), ``E_z`` or 2 (tanh); each
  evaluation adds ``TRANSCENDENTAL_ULPS * u`` absolute (the values lie in [-1, 1]: SLEEF's and glibc's functions are
  within 1 ulp, ONNX Runtime's sigmoid and tanh within 2.8 u and 4.6 u, measured on 2 million points in [-40, 40]);
* products ``a b``: ``|a| E_b + |b| E_a + E_a E_b``.

A spike is decided when its membrane is further from the threshold than twice the bound (``margin > 2 E``): both
paths, each within E of the exact membrane, then fall on the same side and the spike is exact. An undecided spike
may be 0 on one path and 1 on the other: it enters every later bound as an input error of 1 (and a membrane that
may or may not have been reset), so the bounds hold whatever the undecided spikes do; comparisons of spikes are
made on the decided ones (:meth:`Bound.decided`), and :attr:`Bound.undecided` counts the others.
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
TRANSCENDENTAL_ULPS = 8.0
SIGMOID_CURVATURE = 0.0963  #: max |sigmoid''| = 1 / (6 sqrt 3) = 0.0962...
TANH_CURVATURE = 0.7699  #: max |tanh''| = 4 / (3 sqrt 3) = 0.7698...


def _sigmoid_err(z: torch.Tensor, e_z: torch.Tensor, u: float) -> tuple[torch.Tensor, torch.Tensor]:
    """sigmoid(z) and the bound on its error for an input known to within ``e_z``."""
    f = torch.sigmoid(z)
    moved = torch.minimum((f * (1 - f) + SIGMOID_CURVATURE * e_z) * e_z, (e_z / 4).clamp(max=1.0))
    return f, moved + TRANSCENDENTAL_ULPS * u


def _tanh_err(z: torch.Tensor, e_z: torch.Tensor, u: float) -> tuple[torch.Tensor, torch.Tensor]:
    """tanh(z) and the bound on its error for an input known to within ``e_z``."""
    f = torch.tanh(z)
    moved = torch.minimum((1 - f * f + TANH_CURVATURE * e_z) * e_z, e_z.clamp(max=2.0))
    return f, moved + TRANSCENDENTAL_ULPS * u


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
    """Membrane (and ALIF threshold) error after one step, and the margin ratio |u - thr| / (2 E). ``e["s"]`` is 1
    where the previous spike was undecided: that membrane may or may not have been reset."""
    tu = TRANSCENDENTAL_ULPS * u
    e_s = e.get("s", 0.0)
    if isinstance(pop, ALIF):
        u_old, sp_old, b_old = s_old
        u_new, _, b_new = s_new
        a = torch.exp(-1.0 / pop.tau_m.clamp(min=MIN_TAU))
        e_a = tu * a
        rho = torch.exp(-1.0 / pop.tau_adp.clamp(min=MIN_TAU))
        e_b = rho * e.get("b", 0.0) + (1 - rho) * e_s + b_old.abs() * tu * rho + sp_old * tu * rho \
            + 3 * u * b_new.abs()
        thr = pop.v_th + pop.adapt * b_new
        e_thr = pop.adapt * e_b + 2 * u * thr.abs()
    else:
        u_old, sp_old = s_old
        u_new, _ = s_new
        a, e_a, e_b = pop.decay, 0.0, None
        thr, e_thr = pop.v_th, u * pop.v_th  # the constants themselves round in float32
    e_u_old = e.get("u", 0.0)
    keep = 1 - sp_old  # a spike resets the membrane exactly (times 0)
    e_u = (keep + e_s) * (a * e_u_old + u_old.abs() * e_a + 2 * u * (a * u_old).abs()) \
        + e_s * a * u_old.abs() + e_drive + u * u_new.abs()
    out = {"u": e_u} if e_b is None else {"u": e_u, "b": e_b}
    return out, (u_new - thr).abs() / (2 * (e_u + e_thr))


def hstnn_bound(model: HSTNN, x: torch.Tensor, u: float, k_max: int = 0, e_x: torch.Tensor | None = None) -> Bound:  # noqa: PLR0915  one derivation, as the proof
    """Bounds for evaluating ``model`` on ``x[B, T, F]`` in a precision with unit roundoff ``u`` by any code path.

    The float64 reference runs the model's own streaming API on a float64 copy (weights and inputs convert
    exactly), so the states the bounds are built on are the model's, not a re-implementation; only the error
    recurrences are written here. ``k_max``: see :func:`linear_bound`. ``e_x[B, T, F]``: how far each path's input
    may be from ``x`` (e.g. features from another path's front-ends; 1 for a spike that may differ).
    """
    m = copy.deepcopy(model).double().eval()
    x = x.detach().double()
    B, T, _ = x.shape
    state = m.init_state(B)
    spikes_e_sum = torch.zeros(B, m.config.hidden[-1].n_snn, dtype=torch.float64)
    errs: list[dict] = [{} for _ in m.layers]
    margins: list[list[torch.Tensor]] = [[] for _ in m.layers]
    rnn_e: list[list[torch.Tensor]] = [[] for _ in m.layers]
    with torch.no_grad():
        for t in range(T):
            prev = state
            _, state = m.step(x[:, t], state)
            y = x[:, t]
            e_y = torch.zeros_like(y) if e_x is None else e_x[:, t].double()
            for i, layer in enumerate(m.layers):
                (s_old, r_old), (s_new, r_new) = prev.layers[i], state.layers[i]
                e = errs[i]
                w, b = layer.fused_input_weight()
                n_s = layer.spec.n_snn
                e_d = linear_bound(w, b, y, e_y, u=u, k_max=k_max)
                new_e, margin = _lif_errors(layer.snn, s_old, s_new, e, e_drive=e_d[:, :n_s], u=u)
                margins[i].append(margin)
                e_s = (margin <= 1).double()  # an undecided spike may differ by 1
                new_e["s"] = e_s
                w_rec = layer.rnn.fc_rec.weight
                h_prev = r_old[0]
                e_h = e.get("r", torch.zeros_like(h_prev))
                z = F.linear(y, w, b)[:, n_s:] + F.linear(h_prev, w_rec)
                e_z = e_d[:, n_s:] + linear_bound(w_rec, None, h_prev, e_h, u=u, k_max=k_max) + u * z.abs()
                if isinstance(layer.rnn, LSTM):
                    (zi, zf, zg, zo), (ei, ef, eg, eo) = z.chunk(4, -1), e_z.chunk(4, -1)
                    (gi, ei), (gf, ef), (go, eo) = _sigmoid_err(zi, ei, u), _sigmoid_err(zf, ef, u), \
                        _sigmoid_err(zo, eo, u)
                    gg, eg = _tanh_err(zg, eg, u)
                    c_prev, c = r_old[1], r_new[1]
                    e_cp = e.get("c", torch.zeros_like(c_prev))
                    e_c = (gf * e_cp + c_prev.abs() * ef + ef * e_cp + gi * eg + gg.abs() * ei + ei * eg
                           + 2 * u * ((gf * c_prev).abs() + (gi * gg).abs()))
                    tc, e_tc = _tanh_err(c, e_c, u)
                    e_r = go * e_tc + tc.abs() * eo + eo * e_tc + u * r_new[0].abs()
                    new_e["c"] = e_c
                else:
                    e_r = _sigmoid_err(z, e_z, u)[1]
                new_e["r"] = e_r
                errs[i] = new_e
                rnn_e[i].append(e_r)
                y = torch.cat([s_new[1], r_new[0]], dim=-1)
                e_y = torch.cat([e_s, e_r], dim=-1)
            spikes_e_sum = spikes_e_sum + errs[-1]["s"]
        # readout: spikes exact while decided, the rate divides an exact count once
        dec = state.spike_sum / state.steps if m.config.decoder is Decoder.RATE else state.layers[-1][0][1]
        feat = torch.cat([dec, state.layers[-1][1][0]], dim=-1)
        e_dec = spikes_e_sum / state.steps if m.config.decoder is Decoder.RATE else errs[-1]["s"]
        e_feat = torch.cat([e_dec + u * dec.abs(), rnn_e[-1][-1]], dim=-1)
        e_logits = linear_bound(m.readout.weight, m.readout.bias, feat, e_feat, u=u, k_max=k_max)
        reference = m.readout(feat)
    return Bound(
        logits=e_logits,
        spikes_margin=[torch.stack(ms, 1) for ms in margins],
        rnn_out=[torch.stack(es, 1) for es in rnn_e],
        reference=reference,
    )


# ----------------------------------------------------------------------------------------------- front-ends


@dataclass
class FrontendBound:
    """A front-end on a batch of frames: float64 reference features and each path's bound on them (for spiking
    features: 0 where the spike is decided, 1 where another path's rounding could flip it)."""

    features: torch.Tensor  #: [N, F]
    error: torch.Tensor  #: [N, F]


def _conv_abs(conv: torch.nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, conv.weight.abs(), None, conv.stride, conv.padding)


def _conv_bound(conv: torch.nn.Conv2d, x: torch.Tensor, e_x: torch.Tensor, u: float) -> torch.Tensor:
    """Per-path bound of ``conv(x)`` (any summation order: gamma of the kernel's fan-in, plus the input's error)."""
    k = conv.weight[0].numel() + (1 if conv.bias is not None else 0)
    return _conv_abs(conv, e_x) + gamma(k, u) * _conv_abs(conv, x.abs() + e_x)


def _batch_norm(bn: torch.nn.BatchNorm2d, x: torch.Tensor, e_x: torch.Tensor | float, u: float
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm and its bound: the scale moves the input's error, and a fused or unfused float
    evaluation rounds a handful of times on values no larger than ``|x s| + |mean s| + |beta|`` (8 u of that)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    c = (-1, 1, 1)
    y = (x - bn.running_mean.view(c)) * scale.view(c) + bn.bias.view(c)
    mag = x.abs() * scale.abs().view(c) + (bn.running_mean * scale).abs().view(c) + bn.bias.abs().view(c)
    return y, scale.abs().view(c) * e_x + 8 * u * mag


def _pool_terms(module, x: torch.Tensor) -> int:
    """Most inputs one (adaptive) average-pooling output sums."""
    if module.config.pooled_hw is None:
        return 4
    (h, w), (oh, ow) = x.shape[-2:], module.config.pooled_hw
    return (-(-h // oh) + 1) * (-(-w // ow) + 1)


def scnn_bound(scnn: torch.nn.Module, x: torch.Tensor, u: float) -> FrontendBound:
    """Bounds for ``hstnn_ros.perception.frontends.SCNN.extract`` on event frames ``x[N, 2, H, W]`` (counts, exact):
    each spiking layer's membrane error is its sum's own plus what undecided spikes below it may change, through the
    BatchNorm in front of convs 2-4, the average pooling and the two FC layers."""
    m = copy.deepcopy(scnn).double().eval()
    v_th = m.config.v_th

    def spikes(d: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (d >= v_th).double(), ((d - v_th).abs() <= 2 * (e + u * v_th)).double()

    with torch.no_grad():
        h = x.double()
        e_h = torch.zeros_like(h)
        for i, conv in enumerate(m.convs):
            y, e_y = (h, e_h) if i == 0 else _batch_norm(m.norms[i - 1], h, e_h, u)
            h, e_h = spikes(conv.conv(y), _conv_bound(conv.conv, y, e_y, u))
        p, e_pool = m._pool(h).flatten(1), m._pool(e_h).flatten(1)
        e_p = e_pool + (gamma(_pool_terms(m, h), u) + u) * (p + e_pool)  # spikes >= 0: terms bounded by the mean
        s1, e_s1 = spikes(m.fc1(p), linear_bound(m.fc1.weight, None, p, e_p, u=u))
        s2, e_s2 = spikes(m.fc2(s1), linear_bound(m.fc2.weight, None, s1, e_s1, u=u))
    return FrontendBound(s2, e_s2)


def cnn_bound(cnn: torch.nn.Module, x: torch.Tensor, u: float) -> FrontendBound:
    """Bounds for ``hstnn_ros.perception.frontends.RGBCNN.extract`` on frames ``x[N, C, H, W]`` (conv -> BatchNorm ->
    ReLU x 3, conv -> ReLU, average pooling, FC -> ReLU x 2; ReLU is 1-Lipschitz)."""
    m = copy.deepcopy(cnn).double().eval()
    with torch.no_grad():
        h = x.double()
        e = torch.zeros_like(h)
        for i, conv in enumerate(m.convs):
            d, e = conv(h), _conv_bound(conv, h, e, u)
            if i < 3:
                d, e = _batch_norm(m.norms[i], d, e, u)
            h = F.relu(d)
        p = m._pool(h).flatten(1)
        e_p = m._pool(e).flatten(1) + (gamma(_pool_terms(m, h), u) + u) * p
        f1 = F.relu(m.fc1(p))
        e1 = linear_bound(m.fc1.weight, m.fc1.bias, p, e_p, u=u)
        f2 = F.relu(m.fc2(f1))
        e2 = linear_bound(m.fc2.weight, m.fc2.bias, f1, e1, u=u)
    return FrontendBound(f2, e2)
