"""Whole-sequence LIF / RNN nodes (``hstnn_ros.model.sequence``) against the per-step autograd form."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from hstnn_ros.model import HSTNN, HSTNNConfig, sequence
from hstnn_ros.model.sequence import rnn_sequence

CASES = [
    # hidden [[snn, rnn], ...], T, surrogate
    ([[12, 9], [7, 11]], 9, "rect"),
    ([[12, 9], [7, 11]], 5, "sigmoid"),
    ([[10, 0], [0, 8]], 4, "multi_gaussian"),  # a population of size 0 on either side
    ([[6, 5]], 1, "sigmoid"),  # one step: no recurrence at all
]


def _model(hidden: list[list[int]], surrogate: str) -> HSTNN:
    torch.manual_seed(0)
    cfg = HSTNNConfig(input_size=16, hidden=hidden, num_classes=5, decay=0.6, v_th=0.2, surrogate=surrogate)
    return HSTNN(cfg).double()


def _loss(model: HSTNN, x: torch.Tensor, y: torch.Tensor, per_step: bool,
          gates: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    with sequence.per_step() if per_step else contextlib.nullcontext():
        logits = model.run(x, gates=gates).logits
    return logits, F.cross_entropy(logits, y)


@pytest.mark.parametrize(("hidden", "T", "surrogate"), CASES)
def test_values_equal_and_gradients_agree_with_the_per_step_form(hidden: list[list[int]], T: int,
                                                                  surrogate: str) -> None:
    model = _model(hidden, surrogate)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, T, 16, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(0, 5, (6,), generator=gen)
    params = list(model.parameters())
    lf, loss_f = _loss(model, x, y, per_step=False)
    lp, loss_p = _loss(model, x, y, per_step=True)
    assert torch.equal(lf, lp)  # the same kernels in the same order: equal by construction
    gf = torch.autograd.grad(loss_f, params, create_graph=True)
    gp = torch.autograd.grad(loss_p, params, create_graph=True)
    for a, b in zip(gf, gp, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # second order (what Hessian-aware selection takes): a Hessian-vector product through both forms
    vs = [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in params]
    for a, b in zip(_hvp(gf, params, vs), _hvp(gp, params, vs), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def _hvp(grads: tuple[torch.Tensor, ...], params: list[torch.Tensor], vs: list[torch.Tensor]) -> list[torch.Tensor]:
    """H v, zeros where a gradient does not depend on the parameters (e.g. a recurrent weight at T = 1)."""
    gv = sum((g * v).sum() for g, v in zip(grads, vs, strict=True) if g.requires_grad)
    if not isinstance(gv, torch.Tensor):
        return [torch.zeros_like(p) for p in params]
    hv = torch.autograd.grad(gv, params, allow_unused=True)
    return [torch.zeros_like(p) if h is None else h for h, p in zip(hv, params, strict=True)]


@pytest.mark.parametrize("per_sample", [False, True])
def test_gated_runs_agree_with_the_per_step_form_to_second_order(per_sample: bool) -> None:
    """Output gates (what Hessian-aware selection differentiates, twice): values equal, gradients with respect to
    weights and gates equal, and a Hessian-vector product over the gates equal."""
    model = _model([[12, 9], [7, 11]], "sigmoid")
    gen = torch.Generator().manual_seed(3)
    B = 6
    x = torch.randn(B, 7, 16, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(0, 5, (B,), generator=gen)

    def gates() -> list[tuple[torch.Tensor, torch.Tensor]]:
        g = torch.Generator().manual_seed(4)
        shape = (lambda n: (B, n)) if per_sample else (lambda n: (n,))
        return [(torch.rand(shape(h.n_snn), generator=g, dtype=torch.float64).requires_grad_(),
                 torch.rand(shape(h.n_rnn), generator=g, dtype=torch.float64).requires_grad_())
                for h in model.config.hidden]

    out = {}
    for per_step in (False, True):
        gs = gates()
        flat = [t for pair in gs for t in pair]
        params = [*model.parameters(), *flat]
        logits, loss = _loss(model, x, y, per_step, gs)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        vs = [torch.randn(t.shape, generator=torch.Generator().manual_seed(5 + i), dtype=torch.float64)
              for i, t in enumerate(flat)]
        hv = _hvp(grads[-len(flat):], flat, vs)
        out[per_step] = (logits, grads, hv)
    assert torch.equal(out[False][0], out[True][0])
    for a, b in zip([*out[False][1], *out[False][2]], [*out[True][1], *out[True][2]], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_rnn_sequence_gradients_match_finite_differences() -> None:
    gen = torch.Generator().manual_seed(2)
    d = torch.randn(4, 3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    w = (torch.randn(5, 5, generator=gen, dtype=torch.float64) * 0.5).requires_grad_()
    assert torch.autograd.gradcheck(rnn_sequence, (d, w))
    assert torch.autograd.gradgradcheck(rnn_sequence, (d, w))
    for gate_shape in ((5,), (3, 5)):
        m = torch.rand(gate_shape, generator=gen, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(rnn_sequence, (d, w, m))
        assert torch.autograd.gradgradcheck(rnn_sequence, (d, w, m))
