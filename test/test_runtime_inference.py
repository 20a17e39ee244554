"""The engine's HSTNN fast path equals the model core: logits, spikes (via their rates) and Eq. 23-25 op counts."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.model import HSTNN, HSTNNConfig, LayerSpec, count_ops
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.inference import FastHstnn
from hstnn_ros.runtime.loading import HstnnClassifier

torch.set_num_threads(1)

layers = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)).filter(lambda t: t[0] + t[1] > 0),
                  min_size=1, max_size=3)


configs = st.fixed_dictionaries({
    "hidden": layers, "input_spiking": st.integers(0, 10), "decoder": st.sampled_from(["rate", "last"]),
    "bias": st.booleans(), "v_th": st.sampled_from([0.5, 0.15, 0.05])})


@settings(max_examples=60, deadline=None)
@given(net=configs, batch=st.integers(1, 3), steps=st.integers(1, 9), seed=st.integers(0, 2**16),
       real_steps=st.lists(st.booleans(), min_size=9, max_size=9))
def test_fast_path_equals_model_run_and_count_ops(net: dict, batch: int, steps: int, seed: int,
                                                  real_steps: list[bool]) -> None:
    """Exact equality holds by construction, on any CPU: the fast path issues the model core's kernels on the same
    shapes and layouts (the input GEMM on the same time-major ``[T, B, F]`` view with a freshly allocated fused
    weight; the recurrent GEMV and the sigmoid on fresh contiguous ``[B, n]`` tensors; ``decay * u`` then a
    multiplication by ``1 - s`` in {0, 1}, which is exact, as the masked fill is; the rate decoder's mean of 0/1
    spikes is an exact count divided once), so every rounding happens identically in both."""
    torch.manual_seed(seed)
    spiking = net["input_spiking"]
    cfg = HSTNNConfig(input_size=16, num_classes=4, **{**net, "hidden": tuple(LayerSpec(*h) for h in net["hidden"])})
    model = HSTNN(cfg).eval()
    with torch.no_grad():  # scale weights up so that layers actually spike
        for p in model.parameters():
            p.mul_(3.0)
    x = torch.randn(batch, steps, cfg.input_size)
    x[..., :spiking] = (torch.rand(batch, steps, spiking) < 0.4).float()
    x[:, [t for t in range(steps) if not real_steps[t]], spiking:] = 0.0  # e.g. the RGB block between RGB frames
    with torch.no_grad():
        record = model.run(x)
        ref = count_ops(model, x, record)
        fast = FastHstnn(model)
        logits, macs, acs, rates = fast.run(x)
    assert torch.equal(logits, record.logits)
    assert acs.tolist() == ref.acs.double().tolist()
    assert macs.tolist() == ref.macs.double().tolist()
    assert rates == pytest.approx([r for r in ref.spike_rates if r is not None], abs=1e-6)


def test_classifier_uses_fast_path_and_sees_weight_changes() -> None:
    torch.manual_seed(0)
    cfg = HSTNNConfig(input_size=8, hidden=(LayerSpec(5, 3), LayerSpec(4, 4)), num_classes=3, input_spiking=4)
    clf = HstnnClassifier(HSTNN(cfg)).eval()
    assert clf._fast is not None
    x = torch.rand(2, 9, 8)
    with torch.inference_mode():
        before = clf(x).logits.clone()
    with torch.no_grad():
        clf.model.layers[0].rnn.fc_in.weight.add_(1.0)
    with torch.inference_mode():
        after = clf(x)
        assert torch.equal(after.logits, clf.model.run(x).logits)
    assert not torch.equal(before, after.logits)


def test_other_neuron_kinds_fall_back_to_the_model_core() -> None:
    cfg = HSTNNConfig(input_size=8, hidden=(LayerSpec(5, 3),), num_classes=3, input_spiking=4, spiking_kind="alif",
                      nonspiking_kind="lstm")
    clf = HstnnClassifier(HSTNN(cfg)).eval()
    assert clf._fast is None
    x = torch.rand(1, 9, 8)
    with torch.no_grad():
        out = clf(x)
        assert torch.equal(out.logits, clf.model.run(x).logits)
        assert out.macs == float(count_ops(clf.model, x, clf.model.run(x)).macs.sum())


def test_engine_counts_the_rgb_block_only_at_the_windows_rgb_steps() -> None:
    """A window as the engine assembles it (``assemble_window``: the RGB feature at ``rgb_steps``, zeros elsewhere):
    the classifier's MACs for the RGB block are those of the RGB steps only, equal to ``count_ops``, and the pure
    SNN's whole MAC count is that block (its layers have no real-valued operand)."""
    from hstnn_ros.perception.window import WindowSpec, assemble_window

    spec = WindowSpec()
    n_ev, n_rgb, T = 6, 5, spec.event_frames
    g = torch.Generator().manual_seed(0)
    x = assemble_window(spec, (torch.rand(2, T, n_ev, generator=g) < 0.3).float(),
                        torch.rand(2, spec.rgb_frames, n_rgb, generator=g) + 0.1)
    for hidden, expect in (((LayerSpec(4, 0), LayerSpec(3, 0)), len(spec.rgb_steps) * n_rgb * 4),
                           ((LayerSpec(4, 3), LayerSpec(2, 2)),
                            len(spec.rgb_steps) * n_rgb * 7 + (T - 1) * 3 * 3 + T * 3 * 4 + (T - 1) * 2 * 2 + 2 * 3)):
        torch.manual_seed(1)
        model = HSTNN(HSTNNConfig(input_size=n_ev + n_rgb, hidden=hidden, num_classes=3, input_spiking=n_ev)).eval()
        with torch.inference_mode():
            out = HstnnClassifier(model)(x)
        assert out.macs == 2 * expect == float(count_ops(model, x, model.run(x)).macs.sum())


@pytest.mark.parametrize(("kinds", "named"),
                         [({"spiking_kind": "alif"}, "ALIF"), ({"nonspiking_kind": "lstm"}, "LSTM")])
def test_fast_path_refuses_networks_it_does_not_implement(kinds: dict, named: str) -> None:
    """ALIF thresholds and LSTM gates are not in the fast path: it refuses them rather than run them as LIF + RNN."""
    model = HSTNN(HSTNNConfig(input_size=8, hidden=(LayerSpec(4, 4),), num_classes=3, **kinds))
    assert not FastHstnn.supports(model)
    with pytest.raises(RuntimeEngineError, match=named):
        FastHstnn(model)
