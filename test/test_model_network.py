"""HSTNN network: batch == streaming, pure-RNN / pure-SNN equal hand-built networks, config round trip, validation,
and second-order derivatives through the whole network (what the Selection stage needs)."""

from __future__ import annotations

import math

import pytest
import torch
from fpbounds import U64, hstnn_bound
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.model import HSTNN, Decoder, HSTNNConfig, LayerSpec, ModelError, Role, SurrogateKind

torch.set_num_threads(1)
D = torch.float64


def _model(seed=0, **kw):
    raw = {"input_size": 6, "hidden": [[4, 3], [3, 5]], "num_classes": 4, "input_spiking": 2, "v_th": 0.2}
    raw.update(kw)
    torch.manual_seed(seed)
    return HSTNN(HSTNNConfig.from_dict(raw)).double()


def _x(B=3, T=7, F=6, spiking=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, T, F, generator=g, dtype=D)
    x[..., :spiking] = (x[..., :spiking] > 0.6).to(D)
    return x


@pytest.mark.parametrize("kinds", [("lif", "rnn"), ("alif", "lstm"), ("lif", "lstm"), ("alif", "rnn")])
@pytest.mark.parametrize("decoder", ["rate", "last"])
def test_batch_equals_streaming(kinds, decoder):
    """The batch run (one GEMM over all T*B rows per layer) and the streaming steps (B rows each) compute the same
    expressions, but a GEMM's rounding depends on its shape and the CPU's kernel (~3e-17 apart on an AVX-512 Xeon):
    equal within twice the float64 rounding bound of :mod:`fpbounds` (derived there from the GEMM sums' fan-in),
    and spikes exactly, because every membrane is further from its threshold than twice its bound (checked: so no
    kernel can put a spike on the other side)."""
    m = _model(spiking_kind=kinds[0], nonspiking_kind=kinds[1], decoder=decoder)
    x = _x()
    rec = m.run(x)
    assert sum(float(s.detach().sum()) for s in rec.spikes) > 0  # the comparison is not trivial
    bound = hstnn_bound(m, x, U64)
    assert bound.undecided == 0, "a membrane lies within the rounding bound of its threshold: pick other data"
    state = m.init_state(x.shape[0])
    with torch.no_grad():
        for t in range(x.shape[1]):
            logits, state = m.step(x[:, t], state)
            for i, (st_s, st_r) in enumerate(state.layers):
                assert torch.equal(st_s[1], rec.spikes[i][:, t])  # spikes of layer i at step t
                assert bool(((st_r[0] - rec.rnn_out[i][:, t]).abs() <= 2 * bound.rnn_out[i][:, t]).all())
    tol = 2 * bound.logits
    assert bool(((logits - rec.logits).abs() <= tol).all())
    assert float(tol.max()) < 1e-12  # the bound is tight enough to mean something


def test_ratio_zero_equals_hand_built_rnn():
    m = _model(hidden=[[0, 5], [0, 4]], input_spiking=0)
    x = _x(spiking=0)
    W1, U1 = m.layers[0].rnn.fc_in.weight, m.layers[0].rnn.fc_rec.weight
    W2, U2 = m.layers[1].rnn.fc_in.weight, m.layers[1].rnn.fc_rec.weight
    h1, h2 = torch.zeros(3, 5, dtype=D), torch.zeros(3, 4, dtype=D)
    for t in range(x.shape[1]):
        h1 = torch.sigmoid(x[:, t] @ W1.T + h1 @ U1.T)
        h2 = torch.sigmoid(h1 @ W2.T + h2 @ U2.T)
    ref = h2 @ m.readout.weight.T + m.readout.bias
    assert torch.allclose(m(x), ref, atol=1e-12)


@pytest.mark.parametrize("decoder", [Decoder.RATE, Decoder.LAST])
def test_ratio_one_equals_hand_built_snn(decoder):
    m = _model(hidden=[[6, 0], [5, 0]], decoder=decoder.value, decay=0.4, v_th=0.3)
    x = _x()
    W1, W2 = m.layers[0].snn.fc.weight, m.layers[1].snn.fc.weight
    u1, s1 = torch.zeros(3, 6, dtype=D), torch.zeros(3, 6, dtype=D)
    u2, s2 = torch.zeros(3, 5, dtype=D), torch.zeros(3, 5, dtype=D)
    total = torch.zeros(3, 5, dtype=D)
    for t in range(x.shape[1]):
        u1 = 0.4 * u1 * (1 - s1) + x[:, t] @ W1.T
        s1 = (u1 >= 0.3).to(D)
        u2 = 0.4 * u2 * (1 - s2) + s1 @ W2.T
        s2 = (u2 >= 0.3).to(D)
        total += s2
    assert total.sum() > 0
    d = total / x.shape[1] if decoder is Decoder.RATE else s2
    ref = d @ m.readout.weight.T + m.readout.bias
    assert torch.allclose(m(x), ref, atol=1e-12)


def test_populations_skip_empty_and_name_roles():
    m = _model(hidden=[[4, 0], [2, 3]])
    got = [(i, str(role), p.size) for i, role, p in m.populations()]
    assert got == [(0, "snn", 4), (1, "snn", 2), (1, "rnn", 3)]
    assert Role.SNN == "snn"


@settings(max_examples=30, deadline=None)
@given(hidden=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)).filter(lambda h: sum(h) > 0),
                       min_size=1, max_size=3),
       spk=st.sampled_from(["lif", "alif"]), rec=st.sampled_from(["rnn", "lstm"]),
       sur=st.sampled_from(list(SurrogateKind)), dec=st.sampled_from(list(Decoder)),
       bias=st.booleans(), input_spiking=st.integers(0, 4))
def test_config_round_trip(*, hidden, spk, rec, sur, dec, bias, input_spiking):
    cfg = HSTNNConfig.from_dict({"input_size": 4, "hidden": [list(h) for h in hidden], "num_classes": 3,
                                 "input_spiking": input_spiking, "spiking_kind": spk, "nonspiking_kind": rec,
                                 "surrogate": sur.name, "decoder": dec.value, "bias": bias})
    assert HSTNNConfig.from_dict(cfg.to_dict()) == cfg
    m = HSTNN(cfg)
    assert m(torch.rand(2, 3, 4)).shape == (2, 3)


@pytest.mark.parametrize(("raw", "match"), [
    ({"hidden": [[0, 0]]}, "at least one neuron"),
    ({"hidden": []}, "at least one hybrid layer"),
    ({"hidden": [[-1, 3]]}, "n_snn"),
    ({"input_spiking": 9}, "input_spiking"),
    ({"decay": 1.5}, "decay"),
    ({"v_th": float("nan")}, "v_th"),
    ({"spiking_kind": "izhikevich"}, "spiking_kind"),
    ({"hidden_sizes": [3]}, "unknown HSTNNConfig keys"),
    ({"num_classes": 0}, "num_classes"),
])
def test_impossible_configs_raise(raw, match):
    base = {"input_size": 6, "hidden": [[2, 2]], "num_classes": 3}
    with pytest.raises(ModelError, match=match):
        HSTNNConfig.from_dict({**base, **raw})


def test_bad_inputs_raise_with_expected_shape():
    m = _model()
    with pytest.raises(ModelError, match=r"\[B, T >= 1, 6\]"):
        m(torch.rand(3, 7, 5, dtype=D))
    with pytest.raises(ModelError, match=r"\[B, T >= 1, 6\]"):
        m(torch.rand(7, 6, dtype=D))
    with pytest.raises(ModelError, match="float32"):
        m(torch.rand(3, 7, 6))
    x = _x()
    x[1, 2, 3] = math.nan
    with pytest.raises(ModelError, match="NaN"):
        m(x)
    with pytest.raises(ModelError, match="x_t"):
        m.step(torch.rand(3, 5, dtype=D), m.init_state(3))
    with pytest.raises(ModelError, match="NetState"):
        m.step(torch.rand(2, 6, dtype=D), m.init_state(3))
    with pytest.raises(ModelError, match="HSTNNConfig"):
        HSTNN({"input_size": 6})
    assert LayerSpec(2, 0).size == 2


@pytest.mark.parametrize("sur", list(SurrogateKind))
def test_hessian_vector_products_through_network_are_symmetric(sur):
    """v1 . H v2 == v2 . H v1 for the loss Hessian w.r.t. the hidden weights: second derivatives flow through every
    surrogate, LIF/ALIF and RNN/LSTM, and are those of one scalar function."""
    for spk, rec in (("lif", "rnn"), ("alif", "lstm")):
        m = _model(surrogate=sur.name, spiking_kind=spk, nonspiking_kind=rec)
        x, y = _x(), torch.tensor([0, 1, 3])
        params = [p for _, _, pop in m.populations() for p in pop.afferent_parameters()]
        loss = torch.nn.functional.cross_entropy(m(x), y)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        g = torch.Generator().manual_seed(1)
        v1 = [torch.randn(p.shape, generator=g, dtype=D) for p in params]
        v2 = [torch.randn(p.shape, generator=g, dtype=D) for p in params]
        gv1 = sum((a * b).sum() for a, b in zip(grads, v1, strict=True))
        gv2 = sum((a * b).sum() for a, b in zip(grads, v2, strict=True))
        hv1 = torch.autograd.grad(gv1, params, retain_graph=True, allow_unused=True)
        hv2 = torch.autograd.grad(gv2, params, allow_unused=True)
        a = sum((h * v).sum() for h, v in zip(hv1, v2, strict=True) if h is not None)
        b = sum((h * v).sum() for h, v in zip(hv2, v1, strict=True) if h is not None)
        assert float(abs(a)) > 1e-8
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-12)


def test_hybrid_layers_are_the_layers_and_refuse_a_foreign_module() -> None:
    m = _model()
    assert m.hybrid_layers == list(m.layers)
    m.layers.append(torch.nn.Linear(2, 2))
    with pytest.raises(ModelError, match="only HybridLayers"):
        _ = m.hybrid_layers
