"""Operation accounting (Eqs. 23-25): the formula-based counter equals a brute-force machine that performs every
product element by element and counts the multiplies an event-driven, block-skipping implementation actually does
(a spike input only when non-zero; a real-valued operand block only when not entirely zero)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.model import (
    HSTNN,
    ConvLIF,
    ConvRNN,
    HSTNNConfig,
    ModelError,
    count_conv_ops,
    count_ops,
)

torch.set_num_threads(1)
D = torch.float64


def _brute_matvec(W, y, spiking):
    """Element-wise ``W @ y``: returns (result, MACs, ACs); spiking inputs are only touched when non-zero, the block
    of real-valued inputs only when one of them is non-zero (an all-zero block contributes nothing: skipped)."""
    out = [0.0] * W.shape[0]
    macs = acs = 0
    real_block_live = any(y[j] != 0 for j in range(W.shape[1]) if not spiking[j])
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            if spiking[j]:
                if y[j] != 0:
                    out[i] += float(W[i, j]) * float(y[j])
                    acs += 1
            elif real_block_live:
                out[i] += float(W[i, j]) * float(y[j])
                macs += 1
    return torch.tensor(out, dtype=D), macs, acs


def _brute_force(m: HSTNN, x: torch.Tensor, rec):
    cfg = m.config
    B, T, _ = x.shape
    macs = torch.zeros(B, dtype=torch.long)
    acs = torch.zeros(B, dtype=torch.long)
    for b in range(B):
        for t in range(T):
            y = x[b, t]
            spk = [j < cfg.input_spiking for j in range(cfg.input_size)]
            for i, layer in enumerate(m.layers):
                w, bias = layer.fused_input_weight()
                drive, mc, ac = _brute_matvec(w.detach(), y, spk)
                if bias is not None:
                    drive = drive + bias.detach()
                ref = torch.nn.functional.linear(y, w.detach(), None if bias is None else bias.detach())
                assert torch.allclose(drive, ref, atol=1e-12)  # the machine really computes the layer
                macs[b] += mc
                acs[b] += ac
                n_r = layer.spec.n_rnn
                if n_r:
                    r_prev = rec.rnn_out[i][b, t - 1] if t else torch.zeros(n_r, dtype=D)
                    _, mc, _ = _brute_matvec(layer.rnn.fc_rec.weight.detach(), r_prev, [False] * n_r)
                    macs[b] += mc
                y = torch.cat([rec.spikes[i][b, t], rec.rnn_out[i][b, t]])
                spk = [True] * layer.spec.n_snn + [False] * n_r
            # readout: spikes accumulated at every step (rate) or the last (last), r_T once
            n_s = cfg.hidden[-1].n_snn
            W = m.readout.weight.detach()
            if cfg.decoder.value == "rate" or t == T - 1:
                _, _, ac = _brute_matvec(W[:, :n_s], rec.spikes[-1][b, t], [True] * n_s)
                acs[b] += ac
            if t == T - 1:
                _, mc, _ = _brute_matvec(W[:, n_s:], rec.rnn_out[-1][b, t], [False] * cfg.hidden[-1].n_rnn)
                macs[b] += mc
    return macs, acs


@settings(max_examples=12, deadline=None)
@given(hidden=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)).filter(lambda h: sum(h) > 0),
                       min_size=1, max_size=2),
       rec_kind=st.sampled_from(["rnn", "lstm"]), decoder=st.sampled_from(["rate", "last"]),
       input_spiking=st.integers(0, 5), seed=st.integers(0, 1000))
def test_formula_equals_brute_force(*, hidden, rec_kind, decoder, input_spiking, seed):
    torch.manual_seed(seed)
    m = HSTNN(HSTNNConfig.from_dict({"input_size": 5, "hidden": [list(h) for h in hidden], "num_classes": 3,
                                     "input_spiking": input_spiking, "nonspiking_kind": rec_kind,
                                     "decoder": decoder, "v_th": 0.1, "bias": seed % 2 == 0})).double()
    x = torch.rand(2, 4, 5, dtype=D)
    x[..., :input_spiking] = (x[..., :input_spiking] > 0.5).to(D)
    x[0, 1, input_spiking:] = 0  # a real-valued block absent at a step (as the RGB feature between RGB frames)
    x[1, ::2, input_spiking:] = 0
    with torch.no_grad():
        rec = m.run(x)
    report = count_ops(m, x, rec)
    macs, acs = _brute_force(m, x, rec)
    assert torch.equal(report.macs, macs)
    assert torch.equal(report.acs, acs)
    assert torch.equal(report.per_layer_step.sum((1, 2)), torch.stack([macs, acs], -1))


def test_acs_follow_measured_spikes_and_breakdown_is_per_layer_step():
    torch.manual_seed(0)
    m = HSTNN(HSTNNConfig.from_dict({"input_size": 4, "hidden": [[3, 2]], "num_classes": 2,
                                     "input_spiking": 4, "v_th": 0.1}))
    x = torch.zeros(2, 3, 4)
    x[0, 1, :2] = 1  # sample 0: two input spikes at step 1; sample 1: silent input
    with torch.no_grad():
        rec = m.run(x)
    rep = count_ops(m, x, rec)
    assert rep.per_layer_step_acs[0, 0].tolist() == [0, 2 * (3 + 2), 0]
    assert rep.per_layer_step_acs[1, 0].tolist() == [0, 0, 0]
    # recurrent only (no real inputs), and not at the first step, whose state r_0 is zero
    assert rep.per_layer_step_macs[:, 0].tolist() == [[0, 2 * 2, 2 * 2]] * 2
    assert rep.input_spike_rate == pytest.approx(2 / 24)
    assert rep.mac_per_sample == float(rep.macs.double().mean())
    with pytest.raises(ModelError, match="record"):
        count_ops(m, x[:, :2], rec)


def _brute_conv(conv, x, spiking):
    B, C, H, W = x.shape
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    macs = torch.zeros(B, dtype=torch.long)
    acs = torch.zeros(B, dtype=torch.long)
    for b in range(B):
        for _o in range(conv.out_channels):
            for oy in range(Ho):
                for ox in range(Wo):
                    for c in range(C):
                        for ky in range(k):
                            for kx in range(k):
                                iy, ix = oy * s - p + ky, ox * s - p + kx
                                if not (0 <= iy < H and 0 <= ix < W):
                                    continue  # padding: nothing to multiply
                                if not spiking:
                                    macs[b] += 1
                                elif x[b, c, iy, ix] != 0:
                                    acs[b] += 1
    return macs, acs


@pytest.mark.parametrize(("k", "stride", "pad"), [(3, 1, 1), (3, 2, 0), (2, 2, 1), (3, 3, 1), (1, 2, 0)])
@pytest.mark.parametrize("spiking", [True, False])
def test_conv_counts_equal_brute_force(k, stride, pad, spiking):
    g = torch.Generator().manual_seed(k + stride + pad)
    x = torch.rand(2, 2, 6, 5, generator=g)
    if spiking:
        x = (x > 0.7).float()
    pop = ConvLIF(2, 3, k, stride, pad)
    assert [t.tolist() for t in count_conv_ops(pop, x, spiking)] == [t.tolist() for t in _brute_conv(pop.conv, x,
                                                                                                        spiking)]


def test_conv_rnn_adds_recurrent_macs():
    pop = ConvRNN(2, 3, 3, 1, 1, rec_kernel_size=3)
    x = torch.rand(1, 2, 4, 4)
    macs, _ = count_conv_ops(pop, x, False)
    in_macs, _ = _brute_conv(pop.conv_in, x, False)
    rec_macs, _ = _brute_conv(pop.conv_rec, torch.ones(1, 3, 4, 4), False)
    assert macs.tolist() == (in_macs + rec_macs).tolist()
