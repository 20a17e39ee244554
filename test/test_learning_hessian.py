"""Hutchinson per-neuron Hessian traces against exact Hessian diagonal blocks, and the importance formula."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from hstnn_ros.learning import LearningError
from hstnn_ros.learning.config import SelectionConfig, TrainConfig
from hstnn_ros.learning.hessian import (
    NeuronGroup,
    estimate_importance,
    load_importance,
    neuron_importance,
    rank_reliability,
    save_importance,
    weights_hash,
)
from hstnn_ros.model.enums import Role

torch.set_num_threads(1)


class TinyRecurrent(nn.Module):
    """A 2-layer recurrent classifier (sigmoid RNN cells, no bias) small enough for an exact Hessian."""

    def __init__(self, f: int = 3, h: int = 4, c: int = 3) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w_in = nn.Parameter(torch.randn(h, f, generator=g))
        self.w_rec = nn.Parameter(torch.randn(h, h, generator=g) * 0.5)
        self.w2 = nn.Parameter(torch.randn(h, h, generator=g))
        self.w_out = nn.Parameter(torch.randn(c, 2 * h, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = torch.zeros(x.shape[0], self.w_rec.shape[0])
        outs = []
        for t in range(x.shape[1]):
            r = torch.sigmoid(x[:, t] @ self.w_in.T + r @ self.w_rec.T)
            outs.append(torch.tanh(r @ self.w2.T))
        return torch.cat([r, torch.stack(outs, 1).mean(1)], 1) @ self.w_out.T


def _rows(ts: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(t.shape[0], -1) for t in ts], dim=1)


def _groups(m: TinyRecurrent) -> list[NeuronGroup]:
    return [NeuronGroup(0, Role.RNN, [m.w_in, m.w_rec], _rows), NeuronGroup(1, Role.SNN, [m.w2], _rows)]


def _exact(model: nn.Module, groups: list[NeuronGroup], x: torch.Tensor, y: torch.Tensor) -> tuple[dict, dict]:
    """Exact per-neuron block traces Tr(H_cc) and the variance of one Rademacher probe's estimate v_c.(Hv)_c,
    from the full Hessian over every afferent parameter (torch.autograd.functional.hessian)."""
    name_of = {id(p): n for n, p in model.named_parameters()}
    names = list(dict.fromkeys(name_of[id(p)] for g in groups for p in g.params))
    params = dict(model.named_parameters())
    shapes = [params[n].shape for n in names]
    sizes = [math.prod(s) for s in shapes]
    offsets = dict(zip(names, [sum(sizes[:i]) for i in range(len(sizes))], strict=True))
    theta = torch.cat([params[n].detach().reshape(-1) for n in names])

    def loss(th: torch.Tensor) -> torch.Tensor:
        parts = dict(zip(names, (p.reshape(s) for p, s in zip(th.split(sizes), shapes, strict=True)), strict=True))
        return nn.functional.cross_entropy(functional_call(model, parts, (x,)), y)

    H = torch.autograd.functional.hessian(loss, theta).double()
    traces, variances = {}, {}
    for g in groups:
        # flat indices of each neuron's afferent entries, through the population's own per-neuron view
        idx = [(offsets[name_of[id(p)]] + torch.arange(p.numel(), dtype=torch.float64)).reshape(p.shape)
               for p in g.params]
        owners = g.per_neuron(idx).long()
        tr = torch.zeros(owners.shape[0], dtype=torch.float64)
        var = torch.zeros_like(tr)
        for c, sel in enumerate(owners):
            block = H[sel][:, sel]
            tr[c] = block.diagonal().sum()
            others = torch.ones(theta.numel(), dtype=torch.bool)
            others[sel] = False
            # X = sum_{i in c} sum_j H_ij v_i v_j; the diagonal terms are constant and the products v_i v_j of
            # distinct unordered pairs are uncorrelated with variance 1:
            # Var = sum_{i<j in c} (2 H_ij)^2 + sum_{i in c, j not in c} H_ij^2.
            off = block - torch.diag(block.diagonal())
            var[c] = (off**2).sum() * 2 + (H[sel][:, others] ** 2).sum()
        traces[g.key], variances[g.key] = tr, var
    return traces, variances


def _check_against_exact(model: nn.Module, groups: list[NeuronGroup], x: torch.Tensor, y: torch.Tensor) -> None:
    exact, var = _exact(model, groups, x, y)
    n_probes, batches = 50, 16  # 800 independent Rademacher probes on the same batch

    def loss_fn(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(model(xb), yb)

    imp = estimate_importance(loss_fn, [(x, y)] * batches, groups, probes=n_probes, min_batches=batches,
                              max_batches=batches, tolerance=0.0, seed=3)
    total = n_probes * batches
    z2 = []
    for key, tr in exact.items():
        est = imp.traces[key].double()
        se = (var[key] / total).sqrt()
        # The estimate is a mean of `total` i.i.d. draws with the variance above (CLT): 4.5 standard errors bound
        # every neuron with probability > 0.999 here; +1e-5 * scale covers float32 rounding where var ~ 0.
        assert torch.all((est - tr).abs() <= 4.5 * se + 1e-5 * tr.abs().max()), (key, est, tr, se)
        z2.append(((est - tr) / se.clamp_min(1e-12))[se > 1e-6 * tr.abs().max()] ** 2)
    # ... and the error is not suspiciously small either: mean squared z-score near 1 (chi-square / n).
    mz = float(torch.cat(z2).mean())
    assert 0.2 < mz < 3.0, mz


def test_hutchinson_matches_exact_block_traces() -> None:
    m = TinyRecurrent()
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 5, 3, generator=g), torch.randint(0, 3, (16,), generator=g)
    _check_against_exact(m, _groups(m), x, y)


def test_hutchinson_matches_exact_on_tiny_hstnn() -> None:
    from hstnn_ros.learning.network import neuron_groups
    from hstnn_ros.model.network import HSTNN, HSTNNConfig

    torch.manual_seed(0)
    m = HSTNN(HSTNNConfig.from_dict({"input_size": 3, "hidden": [[3, 3], [2, 2]], "num_classes": 3,
                                     "surrogate": "sigmoid", "v_th": 0.3}))
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(16, 4, 3, generator=g) * 2, torch.randint(0, 3, (16,), generator=g)
    groups = neuron_groups(m)
    assert {gr.key for gr in groups} == {"L0.snn", "L0.rnn", "L1.snn", "L1.rnn"}
    _check_against_exact(m, groups, x, y)


def test_importance_is_trace_times_mean_squared_weight() -> None:
    m = TinyRecurrent()
    groups = _groups(m)
    traces = {"L0.rnn": torch.tensor([1.0, 2.0, 0.0, -1.0]), "L1.snn": torch.ones(4)}
    imp = neuron_importance(groups, traces)
    w = torch.cat([m.w_in, m.w_rec], 1).detach()
    assert torch.allclose(imp["L0.rnn"], traces["L0.rnn"] * (w**2).sum(1) / w.shape[1])
    assert torch.allclose(imp["L1.snn"], (m.w2.detach() ** 2).mean(1))


def test_convergence_stops_early_and_cache_roundtrip(tmp_path) -> None:
    m = TinyRecurrent()
    g = torch.Generator().manual_seed(2)
    data = [(torch.randn(32, 5, 3, generator=g), torch.randint(0, 3, (32,), generator=g)) for _ in range(30)]

    def loss_fn(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(m(xb), yb)

    loose = estimate_importance(loss_fn, data, _groups(m), probes=4, min_batches=2, max_batches=30, tolerance=0.5)
    tight = estimate_importance(loss_fn, data, _groups(m), probes=4, min_batches=2, max_batches=30, tolerance=0.0)
    assert loose.converged and loose.batches < 30 and loose.rel_stderr <= 0.5
    assert not tight.converged and tight.batches == 30
    key = weights_hash(m)
    path = save_importance(tmp_path / "imp.safetensors", loose, key)
    back = load_importance(path, key)
    assert back is not None and back.batches == loose.batches
    assert all(torch.equal(back.scores[k], loose.scores[k]) for k in loose.scores)
    assert load_importance(path, "other-weights") is None
    with torch.no_grad():
        m.w2.add_(1e-3)
    assert weights_hash(m) != key


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(3, 40), scale=st.floats(0.01, 100.0))
def test_rank_reliability_sees_only_the_order_within_each_pool(seed: int, n: int, scale: float) -> None:
    """1 for equal orders, -1 for reversed ones, unchanged by any increasing transform of either half, and the
    worst pool decides; pools under 3 neurons are ignored."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(2 * n, generator=g, dtype=torch.float64)
    pools = [torch.arange(n), torch.arange(n, 2 * n)]
    assert rank_reliability(a, a, pools) == pytest.approx(1.0)
    assert rank_reliability(a, torch.exp(a) * scale + 3, pools) == pytest.approx(1.0)  # same order
    b = a.clone()
    b[n:] = -a[n:]  # second pool reversed: r = -1 there
    assert rank_reliability(a, b, pools) == pytest.approx(-1.0)
    assert rank_reliability(a, b, [pools[0], torch.tensor([n, n + 1])]) == pytest.approx(1.0)
    noisy = a + torch.randn(2 * n, generator=g, dtype=torch.float64) * 0.3
    rel = rank_reliability(a, noisy, pools)
    assert -1.0 <= rel <= 1.0 and rel == pytest.approx(min(rank_reliability(a, noisy, [p]) for p in pools))


def test_rank_reliability_can_stop_selection_and_is_recorded(tmp_path) -> None:
    """With the standard-error rule unreachable (tolerance 0), a rank target stops the estimate early once the
    split-half reliability reaches it; without one it runs to max_batches, recording the reliability anyway."""
    m = TinyRecurrent()
    g = torch.Generator().manual_seed(2)
    data = [(torch.randn(32, 5, 3, generator=g), torch.randint(0, 3, (32,), generator=g)) for _ in range(30)]

    def loss_fn(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(m(xb), yb)

    by_rank = estimate_importance(loss_fn, data, _groups(m), probes=4, min_batches=2, max_batches=30, tolerance=0.0,
                                  rank_target=0.5)
    assert by_rank.converged and 4 <= by_rank.batches < 30 and by_rank.rank_reliability >= 0.5
    assert by_rank.rel_stderr > 0.0
    full = estimate_importance(loss_fn, data, _groups(m), probes=4, min_batches=2, max_batches=30, tolerance=0.0)
    assert not full.converged and full.batches == 30 and -1.0 <= full.rank_reliability <= 1.0
    assert [h["batch"] for h in full.log if not math.isnan(h["rank_reliability"])] == list(range(4, 31))
    back = load_importance(save_importance(tmp_path / "imp.safetensors", full, "k"), "k")
    assert back is not None and back.rank_reliability == full.rank_reliability


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, math.nan])
def test_impossible_rank_reliability_is_refused_at_start(bad: float) -> None:
    with pytest.raises(LearningError, match=r"selection\.rank_reliability"):
        TrainConfig(selection=SelectionConfig(rank_reliability=bad))


def test_rank_reliability_from_yaml_values() -> None:
    from hstnn_ros.learning.config import config_from_dict

    assert config_from_dict({"selection": {"rank_reliability": 0.9}}).selection.rank_reliability == 0.9
    assert config_from_dict({"selection": {"rank_reliability": None}}).selection.rank_reliability is None
    for bad in (True, "high", 2):
        with pytest.raises(LearningError, match=r"selection\.rank_reliability"):
            config_from_dict({"selection": {"rank_reliability": bad}})


def _tiny_hstnn():
    from hstnn_ros.model.network import HSTNN, HSTNNConfig

    torch.manual_seed(0)
    return HSTNN(HSTNNConfig.from_dict({"input_size": 3, "hidden": [[3, 3], [2, 2]], "num_classes": 3,
                                        "surrogate": "sigmoid", "v_th": 0.3}))


def test_removal_saliency_matches_exact_gate_derivatives() -> None:
    """The removal saliency's gradient is exact and its curvature estimate (Rademacher probes over per-sample gates)
    is unbiased for d2L/da_c2 with the variance of the per-sample Hessians' off-diagonal terms: checked against
    the exact Hessians (torch.autograd.functional.hessian per sample) with the CLT bound of the estimate."""
    from hstnn_ros.learning.hessian import removal_saliency

    m = _tiny_hstnn()
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(6, 4, 3, generator=g) * 2, torch.randint(0, 3, (6,), generator=g)
    sizes = [(sp.n_snn, sp.n_rnn) for sp in m.config.hidden]
    n = sum(s + r for s, r in sizes)

    def split(a: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        parts, out = a.split([k for s, r in sizes for k in (s, r)], dim=-1), []
        for i in range(len(sizes)):
            out.append((parts[2 * i], parts[2 * i + 1]))
        return out

    def loss_of(xb: torch.Tensor, yb: torch.Tensor, a: torch.Tensor) -> torch.Tensor:  # shared gates, flat
        return nn.functional.cross_entropy(m.run(xb, gates=split(a)).logits, yb)

    ones = torch.ones(n)
    grad_exact = torch.autograd.functional.jacobian(lambda a: loss_of(x, y, a), ones).double()
    hess = [torch.autograd.functional.hessian(lambda a, i=i: loss_of(x[i:i + 1], y[i:i + 1], a), ones).double()
            / len(y) for i in range(len(y))]  # sample i's share of the mean loss
    diag = sum(h.diagonal() for h in hess)
    var = sum((h**2).sum(1) - h.diagonal() ** 2 for h in hess)  # one probe: sum_b sum_{d != c} H_b[c, d]^2
    assert torch.allclose(diag, torch.autograd.functional.hessian(lambda a: loss_of(x, y, a), ones).double()
                          .diagonal(), atol=1e-6)  # per-sample gates change nothing in expectation

    def loss_fn(xb: torch.Tensor, yb: torch.Tensor, gates: list) -> torch.Tensor:
        return nn.functional.cross_entropy(m.run(xb, gates=gates).logits, yb)

    alive = [(torch.ones(s, dtype=torch.bool), torch.ones(r, dtype=torch.bool)) for s, r in sizes]
    probes = 400
    grad, curv = removal_saliency(loss_fn, x, y, alive, probes=probes, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(grad, grad_exact, atol=1e-6)
    se = (var / probes).sqrt()
    assert bool(((curv - diag).abs() <= 4.5 * se + 1e-6).all()), (curv, diag, se)
    z2 = ((curv - diag) / se.clamp_min(1e-12))[se > 1e-6] ** 2
    assert 0.2 < float(z2.mean()) < 3.0


def test_fisher_curvature_equals_the_gate_hessian_in_expectation_over_the_models_labels() -> None:
    """``removal_saliency_fisher``: the gradient is exact, and the curvature (per-sample gate gradients squared) is
    the gates' Hessian diagonal in expectation over labels drawn from the model's own softmax (the log-loss identity
    E_y[grad grad^T] = E_y[Hessian], which holds for any parameters of the logits): computed exactly per sample by
    weighting every label with its probability, against exact per-sample Hessians."""
    from hstnn_ros.learning.hessian import removal_saliency_fisher

    m = _tiny_hstnn().double()
    g = torch.Generator().manual_seed(4)
    x = torch.rand(3, 4, 3, generator=g, dtype=torch.float64) * 2
    sizes = [(sp.n_snn, sp.n_rnn) for sp in m.config.hidden]
    n = sum(s + r for s, r in sizes)

    def split(a: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        parts = a.split([k for s, r in sizes for k in (s, r)], dim=-1)
        return [(parts[2 * i], parts[2 * i + 1]) for i in range(len(sizes))]

    def loss_fn(xb: torch.Tensor, yb: torch.Tensor, gates: list) -> torch.Tensor:
        return nn.functional.cross_entropy(m.run(xb, gates=gates).logits, yb)

    alive = [(torch.ones(s, dtype=torch.bool), torch.ones(r, dtype=torch.bool)) for s, r in sizes]
    ones = torch.ones(n, dtype=torch.float64)
    for b in range(len(x)):
        xb = x[b:b + 1]
        with torch.no_grad():
            prob = torch.softmax(m(xb), -1)[0]
        fisher = torch.zeros(n, dtype=torch.float64)
        hessian = torch.zeros(n, dtype=torch.float64)
        for c in range(len(prob)):
            yb = torch.tensor([c])
            grad, curv = removal_saliency_fisher(loss_fn, xb, yb, alive)
            exact_grad = torch.autograd.functional.jacobian(lambda a, xb=xb, yb=yb: loss_fn(xb, yb, split(a)), ones)
            assert torch.allclose(grad, exact_grad, atol=1e-12)
            fisher += prob[c] * curv
            hessian += prob[c] * torch.autograd.functional.hessian(
                lambda a, xb=xb, yb=yb: loss_fn(xb, yb, split(a)), ones).diagonal()
        assert torch.allclose(fisher, hessian, rtol=1e-9, atol=1e-12), (fisher, hessian)
        assert bool((fisher >= 0).all()) and bool(fisher.sum() > 0)
    # a batch's curvature is that of its mean loss: the mean of its samples' own
    y = torch.tensor([0, 2, 1])
    batch = removal_saliency_fisher(loss_fn, x, y, alive)[1]
    single = torch.stack([removal_saliency_fisher(loss_fn, x[b:b + 1], y[b:b + 1], alive)[1] for b in range(3)])
    assert torch.allclose(batch, single.mean(0), rtol=1e-9, atol=1e-12)


def test_removal_saliency_of_removed_neurons_is_zero_and_not_ranked(tmp_path) -> None:
    """Neurons already removed (gate 0) get score 0 and stay out of the reliability pools; the others are scored on
    the network without them."""
    from hstnn_ros.learning.hessian import GateGroup, estimate_removal_saliency

    m = _tiny_hstnn()
    g = torch.Generator().manual_seed(2)
    data = [(torch.rand(16, 4, 3, generator=g) * 2, torch.randint(0, 3, (16,), generator=g)) for _ in range(8)]
    groups = [GateGroup(i, kind, n) for i, sp in enumerate(m.config.hidden)
              for kind, n in ((Role.SNN, sp.n_snn), (Role.RNN, sp.n_rnn))]
    alive = [(torch.tensor([True, False, True]), torch.tensor([True, True, False])),
             (torch.tensor([True, True]), torch.tensor([False, True]))]

    def loss_fn(xb: torch.Tensor, yb: torch.Tensor, gates: list) -> torch.Tensor:
        return nn.functional.cross_entropy(m.run(xb, gates=gates).logits, yb)

    imp = estimate_removal_saliency(loss_fn, data, groups, alive, probes=2, min_batches=8, max_batches=8,
                                    tolerance=0.0)
    assert imp.batches == 8 and not math.isnan(imp.rank_reliability)
    assert imp.scores["L0.snn"][1] == 0 and imp.scores["L0.rnn"][2] == 0 and imp.scores["L1.rnn"][0] == 0
    assert bool((imp.scores["L0.snn"][[0, 2]] != 0).all())
    back = load_importance(save_importance(tmp_path / "imp.safetensors", imp, "k"), "k")
    assert back is not None and torch.equal(back.scores["L1.snn"], imp.scores["L1.snn"])
