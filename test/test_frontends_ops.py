"""Front-end op counts and spikes against independent references (a window-sum convolution, ``ConvLIF.step``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.perception.frontends import RGBCNN, SCNN, FrontendConfig

torch.set_num_threads(1)

CFG = FrontendConfig(in_channels=2, widths=(4, 6, 8, 8), pooled_hw=(2, 2), hidden=16, features=12, input_hw=(20, 28))


def _taps_on_active(x: torch.Tensor, conv: torch.nn.Conv2d) -> torch.Tensor:
    """Reference: in-bounds kernel taps on non-zero inputs, by convolving the activity map with a ones kernel."""
    active = (x != 0).sum(1, keepdim=True, dtype=torch.float64)
    ones = torch.ones(1, 1, *conv.kernel_size, dtype=torch.float64)
    return F.conv2d(active, ones, stride=conv.stride, padding=conv.padding).sum((1, 2, 3)) * conv.out_channels


def _trained_norms(module: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters (fresh ones are the identity), eval mode."""
    with torch.no_grad():
        for bn in module.norms:
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.5, 0.5)
    return module.eval()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), density=st.floats(0.0, 1.0), batch=st.integers(1, 3))
def test_scnn_spikes_and_acs_equal_the_reference(seed: int, density: float, batch: int) -> None:
    torch.manual_seed(seed)
    scnn = _trained_norms(SCNN(CFG))
    x = torch.poisson(torch.full((batch, 2, *CFG.input_hw), density * 2)) * (torch.rand(batch, 1, 1, 1) < 0.9)
    with torch.no_grad():
        out = scnn.extract(x)
        h, acs = x, torch.zeros(batch, dtype=torch.float64)
        for i, conv in enumerate(scnn.convs):
            acs += _taps_on_active(h, conv.conv)
            h, _ = conv.step(h if i == 0 else scnn.norms[i - 1](h), None)
        pooled = scnn._pool(h).flatten(1)
    assert out.acs.tolist() == (acs + (scnn.fc1(pooled) >= CFG.v_th).sum(1) * CFG.features).tolist()
    assert out.macs.tolist() == ((pooled != 0).sum(1) * CFG.hidden).double().tolist()
    assert torch.equal(out.features, (scnn.fc2((scnn.fc1(pooled) >= CFG.v_th).float()) >= CFG.v_th).float())


def test_rgb_cnn_equals_its_modules_applied_in_order() -> None:
    torch.manual_seed(1)
    cnn = _trained_norms(RGBCNN(FrontendConfig(**{**CFG.to_dict(), "in_channels": 3})))
    x = torch.rand(2, 3, *CFG.input_hw)
    with torch.no_grad():
        out = cnn.extract(x)
        h = x
        for i, conv in enumerate(cnn.convs):
            h = F.relu(cnn.norms[i](conv(h)) if i < 3 else conv(h))
        ref = F.relu(cnn.fc2(F.relu(cnn.fc1(cnn._pool(h).flatten(1)))))
    assert torch.equal(out.features, ref)


def test_rgb_cnn_macs_are_every_in_bounds_tap_on_every_frame() -> None:
    """Real-valued input: each frame costs all in-bounds taps of every conv (zeros included: a dense CNN multiplies
    them anyway) plus the FC layers; the same on the first call and on later ones, for any batch and content."""
    torch.manual_seed(2)
    cnn = RGBCNN(FrontendConfig(**{**CFG.to_dict(), "in_channels": 3})).eval()
    want, h = 0.0, torch.ones(1, 3, *CFG.input_hw)
    with torch.no_grad():
        for i, conv in enumerate(cnn.convs):
            want += float(_taps_on_active(torch.ones_like(h), conv)[0])
            h = F.relu(cnn.norms[i](conv(h)) if i < 3 else conv(h))
    want += CFG.hidden * (cnn.fc1.in_features + CFG.features)
    with torch.no_grad():
        for x in (torch.rand(2, 3, *CFG.input_hw), torch.zeros(1, 3, *CFG.input_hw), torch.rand(3, 3, *CFG.input_hw)):
            out = cnn.extract(x)
            assert out.macs.tolist() == [want] * len(x) and out.acs.tolist() == [0.0] * len(x)
