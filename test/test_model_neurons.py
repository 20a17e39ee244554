"""Neuron populations and surrogate gradients: hand-computed dynamics, equivalence with torch cells, and
twice-differentiable spike functions."""

from __future__ import annotations

import math

import pytest
import torch
from fpbounds import U64, linear_bound
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.model import ALIF, LIF, LSTM, RNN, ConvLIF, ConvRNN, ModelError, Surrogate, SurrogateKind, spike
from hstnn_ros.model.neurons import lif_step

torch.set_num_threads(1)
D = torch.float64
SURROGATES = [Surrogate(SurrogateKind.RECT, width=0.5), Surrogate(SurrogateKind.SIGMOID, slope=4.0),
              Surrogate(SurrogateKind.MULTI_GAUSSIAN)]


def _run(pop, drive):
    state = pop.init_state(drive.shape[0], dtype=D)
    outs, states = [], []
    for t in range(drive.shape[1]):
        o, state = pop.step(drive[:, t], state)
        outs.append(o)
        states.append(state)
    return torch.stack(outs, 1), states


def test_lif_hand_computed_trace():
    pop = LIF(1, 1, decay=0.5, v_th=1.0).double()
    with torch.no_grad():
        pop.fc.weight.fill_(1.0)
    x = torch.tensor([[0.6, 0.6, 0.6, 0.0, 1.2]], dtype=D)[..., None]
    s, states = _run(pop, x)
    u = torch.stack([st_[0][0, 0] for st_ in states])
    # u0=0.6; u1=0.5*0.6+0.6=0.9; u2=0.45+0.6=1.05 -> spike; reset: u3=0; u4=1.2 -> spike
    assert torch.allclose(u, torch.tensor([0.6, 0.9, 1.05, 0.0, 1.2], dtype=D))
    assert s[0, :, 0].tolist() == [0.0, 0.0, 1.0, 0.0, 1.0]


def test_alif_hand_computed_trace_differs_from_lif():
    pop = ALIF(1, 1, decay=0.5, v_th=1.0, adapt=1.0, tau_adp=-1.0 / math.log(0.5)).double()
    with torch.no_grad():
        pop.fc.weight.fill_(1.0)
    x = torch.full((1, 4, 1), 1.2, dtype=D)
    s, states = _run(pop, x)
    u = torch.stack([st_[0][0, 0] for st_ in states])
    b = torch.stack([st_[2][0, 0] for st_ in states])
    # b_t = 0.5 b + 0.5 s_{t-1}; threshold 1 + b; u = 0.5 u (1 - s) + 1.2
    assert torch.allclose(b, torch.tensor([0.0, 0.5, 0.25, 0.625], dtype=D))
    assert torch.allclose(u, torch.tensor([1.2, 1.2, 1.8, 1.2], dtype=D))
    assert s[0, :, 0].tolist() == [1.0, 0.0, 1.0, 0.0]
    lif = LIF(1, 1, decay=0.5, v_th=1.0).double()
    with torch.no_grad():
        lif.fc.weight.fill_(1.0)
    assert _run(lif, x)[0][0, :, 0].tolist() == [1.0, 1.0, 1.0, 1.0]


def test_alif_time_constants_learn():
    torch.manual_seed(0)
    pop = ALIF(3, 4, decay=0.6, v_th=0.3).double()
    s, _ = _run(pop, torch.rand(2, 6, 3, dtype=D))
    (s.sum()).backward()
    assert pop.tau_m.grad is not None and pop.tau_adp.grad is not None
    assert pop.per_neuron(pop.afferent_parameters()).shape == (4, 3 + 2)


def test_rnn_equals_tanh_rnncell_through_sigmoid_identity():
    """sigmoid(z) = (1 + tanh(z/2)) / 2, so with g = 2r - 1 our sigmoid RNN is a tanh RNNCell with W/2, U/4 and
    bias U.1/4 started from g = -1: the maths coincide exactly over the whole sequence."""
    torch.manual_seed(1)
    pop = RNN(5, 4).double()
    cell = torch.nn.RNNCell(5, 4, nonlinearity="tanh").double()
    W, U = pop.fc_in.weight.detach(), pop.fc_rec.weight.detach()
    with torch.no_grad():
        cell.weight_ih.copy_(W / 2)
        cell.weight_hh.copy_(U / 4)
        cell.bias_ih.copy_(U.sum(1) / 4)
        cell.bias_hh.zero_()
    x = torch.randn(3, 7, 5, dtype=D)
    r, _ = _run(pop, x)
    g = -torch.ones(3, 4, dtype=D)
    for t in range(7):
        g = cell(x[:, t], g)
        assert torch.allclose(r[:, t], (g + 1) / 2, atol=1e-12)


def test_lstm_equals_lstmcell_with_copied_weights():
    torch.manual_seed(2)
    pop = LSTM(5, 4, bias=True).double()
    cell = torch.nn.LSTMCell(5, 4).double()
    with torch.no_grad():
        cell.weight_ih.copy_(pop.fc_in.weight)
        cell.weight_hh.copy_(pop.fc_rec.weight)
        cell.bias_ih.copy_(pop.fc_in.bias)
        cell.bias_hh.zero_()
    x = torch.randn(3, 6, 5, dtype=D)
    h, _ = _run(pop, x)
    hc = (torch.zeros(3, 4, dtype=D), torch.zeros(3, 4, dtype=D))
    for t in range(6):
        hc = cell(x[:, t], hc)
        assert torch.allclose(h[:, t], hc[0], atol=1e-12)


def test_per_neuron_groups_each_units_rows():
    pop = LSTM(3, 2)
    marks = [torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape) for p in pop.afferent_parameters()]
    view = pop.per_neuron(marks)
    assert view.shape == (2, 4 * 3 + 4 * 2)
    # unit 1 owns rows 1, 3, 5, 7 of the input matrix (gates i, f, g, o)
    assert view[1, :3].tolist() == marks[0][1].tolist()
    assert view[1, 3:6].tolist() == marks[0][3].tolist()
    rnn = RNN(3, 2, bias=True)
    assert rnn.per_neuron(rnn.afferent_parameters()).shape == (2, 3 + 2 + 1)


@pytest.mark.parametrize("sur", SURROGATES, ids=lambda s: s.kind.value)
def test_surrogate_twice_differentiable(sur):
    # stay away from the rect edges |x| = a where its derivative jumps
    x = torch.tensor([-1.3, -0.71, -0.2, 0.05, 0.3, 0.9, 1.7], dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: spike(v, sur) * 0 + sur.primitive(v), (x,))
    assert torch.autograd.gradgradcheck(lambda v: spike(v, sur), (x,))
    # through a smooth function of the spike's input too (as the membrane is in a network)
    assert torch.autograd.gradgradcheck(lambda v: spike(torch.sin(v) - 0.2, sur), (x,))


@pytest.mark.parametrize("sur", SURROGATES, ids=lambda s: s.kind.value)
def test_fused_lif_step_equals_op_by_op_form_to_second_order(sur):
    """The training path's one-node LIF step (lif_step) against Eq. 6 written with spike(): same membrane and
    spikes bit for bit, same gradients and Hessian-vector products (the Selection stage) up to rounding."""
    gen = torch.Generator().manual_seed(3)
    u0 = torch.randn(6, 9, dtype=D, generator=gen).requires_grad_()
    s0 = (torch.rand(6, 9, dtype=D, generator=gen) > 0.6).to(D).requires_grad_()
    d0 = torch.randn(6, 9, dtype=D, generator=gen).requires_grad_()
    w = torch.randn(6, 9, dtype=D, generator=gen)
    v = [torch.randn(6, 9, dtype=D, generator=gen) for _ in range(3)]

    def op_by_op(u, s, d):
        u = 0.7 * u * (1 - s) + d
        return u, spike(u - 0.4, sur)

    def fused(u, s, d):
        return lif_step(u, s, d, decay=0.7, v_th=0.4, surrogate=sur)

    results = []
    for step in (op_by_op, fused):
        u1, s1 = step(u0, s0, d0)
        u2, s2 = step(u1, s1, torch.sin(d0))  # two steps: gradients also flow through the reset
        loss = (s2 * w).sum() + (u2 ** 2).sum() + (s1 * u1).sum()
        grads = torch.autograd.grad(loss, (u0, s0, d0), create_graph=True)
        hvp = torch.autograd.grad(sum((g * vi).sum() for g, vi in zip(grads, v, strict=True)), (u0, s0, d0))
        results.append((u2.detach(), s2.detach(), grads, hvp))
    (u_a, s_a, g_a, h_a), (u_b, s_b, g_b, h_b) = results
    assert torch.equal(u_a, u_b) and torch.equal(s_a, s_b)
    for a, b in zip((*g_a, *h_a), (*g_b, *h_b), strict=True):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=20),
       st.sampled_from(SURROGATES))
def test_spike_is_heaviside_forward_and_surrogate_backward(values, sur):
    x = torch.tensor(values, dtype=D, requires_grad=True)
    s = spike(x, sur)
    assert torch.equal(s.detach(), (x >= 0).to(D).detach())
    (g,) = torch.autograd.grad(s.sum(), x)
    assert torch.allclose(g, sur.derivative(x.detach()), atol=1e-12)


def test_multi_gaussian_shape_has_negative_flanks():
    sur = Surrogate(SurrogateKind.MULTI_GAUSSIAN)
    d = sur.derivative(torch.tensor([0.0, 1.5], dtype=D))
    assert d[0] > 0 > d[1]  # SRNN Eq. 1: negative side lobes
    assert math.isclose(float(d[0]), 1.15 / (0.5 * math.sqrt(2 * math.pi))
                        - 2 * 0.15 * math.exp(-0.5 / 36) / (3 * math.sqrt(2 * math.pi)), rel_tol=1e-9)


def test_conv_lif_matches_dense_lif_on_1x1():
    torch.manual_seed(3)
    conv = ConvLIF(3, 4, 1, 1, 0, decay=0.4, v_th=0.3).double()
    dense = LIF(3, 4, decay=0.4, v_th=0.3).double()
    with torch.no_grad():
        dense.fc.weight.copy_(conv.conv.weight.reshape(4, 3))
    x = torch.rand(2, 5, 3, dtype=D)
    s_dense, states = _run(dense, x)
    # A convolution and a GEMM may sum the 3 products in different orders: each membrane is within E of the exact
    # one (fpbounds: gamma_4 of the drive's magnitude, carried through the leak), so the spikes must agree exactly
    # as every membrane is further than 2 E from the threshold (checked).
    e_u = torch.zeros(2, 4, dtype=D)
    s_prev = torch.zeros(2, 4, dtype=D)
    for t in range(5):
        e_u = 0.4 * e_u * (1 - s_prev) + linear_bound(dense.fc.weight.detach(), None, x[:, t], 0.0, u=U64) \
            + 3 * U64 * states[t][0].abs()
        assert bool(((states[t][0] - 0.3).abs() > 2 * e_u).all())
        s_prev = states[t][1]
    state = None
    for t in range(5):
        s, state = conv.step(x[:, t, :, None, None], state)
        assert torch.equal(s[:, :, 0, 0], s_dense[:, t])


def test_conv_rnn_keeps_spatial_size_and_recurs():
    torch.manual_seed(4)
    pop = ConvRNN(2, 3, 3, 1, 1)
    x = torch.rand(1, 2, 6, 6)
    r1, st1 = pop.step(x)
    r2, _ = pop.step(x, st1)
    assert r1.shape == (1, 3, 6, 6)
    assert not torch.allclose(r1, r2)  # the recurrent convolution feeds back
    assert pop.per_neuron(pop.afferent_parameters()).shape == (3, 2 * 9 + 3 * 9)


def test_bad_population_arguments_raise():
    with pytest.raises(ModelError, match="decay"):
        LIF(3, 2, decay=1.5)
    with pytest.raises(ModelError, match="v_th"):
        LIF(3, 2, v_th=0.0)
    with pytest.raises(ModelError, match="ConvLIF"):
        ConvLIF(2, 0, 3)
    with pytest.raises(ModelError, match="expects x"):
        ConvLIF(2, 4, 3).step(torch.zeros(1, 3, 5, 5))
