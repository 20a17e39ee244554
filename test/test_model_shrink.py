"""Neuron selection mechanics (Eqs. 14-17): the compact network equals the masked network on random networks."""

from __future__ import annotations

import pytest
import torch
from fpbounds import U64, hstnn_bound
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.model import HSTNN, HSTNNConfig, KeptNeurons, ModelError, shrink

torch.set_num_threads(1)
D = torch.float64


@st.composite
def _case(draw):
    n_layers = draw(st.integers(1, 3))
    hidden, kept = [], []
    for _ in range(n_layers):
        n_s, n_r = draw(st.integers(0, 6)), draw(st.integers(0, 6))
        if n_s + n_r == 0:
            n_s = 1
        ks = sorted(draw(st.sets(st.integers(0, n_s - 1), max_size=n_s))) if n_s else []
        kr = sorted(draw(st.sets(st.integers(0, n_r - 1), max_size=n_r))) if n_r else []
        if not ks and not kr:
            (ks if n_s else kr).append(0)
        hidden.append([n_s, n_r])
        kept.append(KeptNeurons(torch.tensor(ks, dtype=torch.long), torch.tensor(kr, dtype=torch.long)))
    raw = {"input_size": 5, "hidden": hidden, "num_classes": 3, "input_spiking": draw(st.integers(0, 5)),
           "spiking_kind": draw(st.sampled_from(["lif", "alif"])),
           "nonspiking_kind": draw(st.sampled_from(["rnn", "lstm"])),
           "decoder": draw(st.sampled_from(["rate", "last"])), "bias": draw(st.booleans()), "v_th": 0.15}
    return raw, kept, draw(st.integers(0, 2**16))


@settings(max_examples=40, deadline=None)
@given(_case())
def test_shrunk_equals_masked(case):
    raw, kept, seed = case
    torch.manual_seed(seed)
    m = HSTNN(HSTNNConfig.from_dict(raw)).double()
    x = torch.rand(4, 6, 5, dtype=D)
    x[..., : raw["input_spiking"]] = (x[..., : raw["input_spiking"]] > 0.5).to(D)
    small = shrink(m, kept)
    assert [(h.n_snn, h.n_rnn) for h in small.config.hidden] == [(k.snn.numel(), k.rnn.numel()) for k in kept]
    n_params = sum(p.numel() for p in small.parameters())
    assert n_params <= sum(p.numel() for p in m.parameters())
    masked = m.run(x, keep=kept)
    compact = small.run(x)
    # Same expressions, but the masked network's sums also hold exact zeros (dropped neurons), which changes how a
    # GEMM blocks and so how it rounds: equal within twice the float64 bound of a sum with the masked network's
    # fan-in (fpbounds), spikes exactly where no membrane lies within that bound of its threshold (checked).
    k_max = max([m.config.input_size, *(h.size for h in m.config.hidden)])
    bound = hstnn_bound(small, x, U64, k_max=k_max)
    assert bound.undecided == 0, "a membrane lies within the rounding bound of its threshold"
    for i, k in enumerate(kept):
        assert torch.equal(masked.spikes[i][..., k.snn], compact.spikes[i])
        assert bool(((masked.rnn_out[i][..., k.rnn] - compact.rnn_out[i]).abs() <= 2 * bound.rnn_out[i]).all())
    assert bool(((masked.logits - compact.logits).abs() <= 2 * bound.logits).all())


def test_shrink_keeps_trained_rows_and_drops_everything_else():
    torch.manual_seed(0)
    m = HSTNN(HSTNNConfig.from_dict({"input_size": 4, "hidden": [[3, 4], [2, 2]], "num_classes": 2,
                                     "nonspiking_kind": "lstm"}))
    kept = [KeptNeurons(torch.tensor([2]), torch.tensor([0, 3])), KeptNeurons(torch.tensor([1]), torch.tensor([]))]
    s = shrink(m, kept)
    assert torch.equal(s.layers[0].snn.fc.weight, m.layers[0].snn.fc.weight[[2]])
    # LSTM unit 3 keeps its four gate rows and only the recurrent columns of kept units 0 and 3
    rows = [0, 3, 4, 7, 8, 11, 12, 15]
    assert torch.equal(s.layers[0].rnn.fc_rec.weight, m.layers[0].rnn.fc_rec.weight[rows][:, [0, 3]])
    # layer 2 sees [snn 2, rnn 0, rnn 3] of layer 1 = columns 2, 3, 6
    assert torch.equal(s.layers[1].snn.fc.weight, m.layers[1].snn.fc.weight[[1]][:, [2, 3, 6]])
    assert torch.equal(s.readout.weight, m.readout.weight[:, [1]])


@pytest.mark.parametrize(("kept", "match"), [
    ([KeptNeurons(torch.tensor([0]), torch.tensor([]))], "one KeptNeurons per hidden layer"),
    ([KeptNeurons(torch.tensor([5]), torch.tensor([])), KeptNeurons(torch.tensor([0]), torch.tensor([]))],
     r"in \[0, 3\)"),
    ([KeptNeurons(torch.tensor([]), torch.tensor([])), KeptNeurons(torch.tensor([0]), torch.tensor([]))],
     "keeps no neuron"),
])
def test_bad_kept_sets_raise(kept, match):
    m = HSTNN(HSTNNConfig.from_dict({"input_size": 4, "hidden": [[3, 2], [2, 2]], "num_classes": 2}))
    with pytest.raises(ModelError, match=match):
        shrink(m, kept)
    with pytest.raises(ModelError, match="sorted and unique"):
        KeptNeurons(torch.tensor([2, 1]), torch.tensor([]))


def test_gates_of_zeros_and_ones_are_the_kept_mask_and_per_sample_gates_act_per_sample():
    """``run(x, gates=...)``: 0/1 gates give exactly the masked run; a per-sample gate changes only its sample; the
    loss is differentiable in the gates (the Selection stage's removal saliency); bad shapes are refused."""
    torch.manual_seed(0)
    m = HSTNN(HSTNNConfig.from_dict({"input_size": 5, "hidden": [[4, 3], [3, 2]], "num_classes": 3, "v_th": 0.2}))
    x = torch.rand(3, 4, 5) * 2
    kept = [KeptNeurons(snn=torch.tensor([0, 2]), rnn=torch.tensor([1, 2])),
            KeptNeurons(snn=torch.tensor([1]), rnn=torch.tensor([0, 1]))]
    gates = []
    for layer, k in zip(m.layers, kept, strict=True):
        g_s, g_r = torch.zeros(layer.spec.n_snn), torch.zeros(layer.spec.n_rnn)
        g_s[k.snn], g_r[k.rnn] = 1.0, 1.0
        gates.append((g_s, g_r))
    with torch.no_grad():
        assert torch.equal(m.run(x, gates=gates).logits, m.run(x, keep=kept).logits)
        per_sample = [(g_s.expand(3, -1).clone(), g_r.expand(3, -1).clone()) for g_s, g_r in gates]
        per_sample[0][1][1] = 1.0  # sample 1 keeps layer-0 RNN neuron 0
        ref = m.run(x, keep=kept).logits
        full = m.run(x).logits
        out = m.run(x, gates=per_sample).logits
        assert torch.equal(out[[0, 2]], ref[[0, 2]]) and not torch.equal(out[1], ref[1])
    ones = [(torch.ones(sp.n_snn, requires_grad=True), torch.ones(sp.n_rnn, requires_grad=True))
            for sp in m.config.hidden]
    logits = m.run(x, gates=ones).logits
    assert torch.equal(logits.detach(), full)
    grads = torch.autograd.grad(logits.sum(), [g for pair in ones for g in pair])
    assert all(g.shape == t.shape for g, t in zip(grads, [g for pair in ones for g in pair], strict=True))
    with pytest.raises(ModelError, match="gates"):
        m.run(x, gates=gates[:1])
    with pytest.raises(ModelError, match=r"gates\[0\] snn"):
        m.run(x, gates=[(torch.ones(2, 4), gates[0][1]), gates[1]])
    with pytest.raises(ModelError, match="keep or gates"):
        m.run(x, keep=kept, gates=gates)
