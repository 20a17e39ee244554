"""Training step of the package's HSTNN against a straightforward per-step reference of the same network.

The reference is written here the way public HSTNN code is: per time step and per population an ``nn.Linear``, a
Heaviside spike with a rectangular surrogate as a custom autograd function, a sigmoid RNN cell, all layers advanced
together step by step. Before timing, both networks get the same weights and must give the same loss and gradients
(float tolerance). Then one full training step each (forward + backward + gradient-norm clipping + Adam) is timed in
interleaved pairs (bench/timing.py) on two workloads:

- ``smnist``: the Adaptation network of the paper's S-MNIST run, 28 -> 2 x (800 LIF + 800 RNN) -> 10, T = 28,
  batch 100 (rows of a 28 x 28 image, one per step);
- ``place``: the place-recognition network [512, 500+500, 500+500, 100], T = 9, batch 64 (256 sparse event
  features + 256 dense image features).

A torch.profiler pass over the package's step splits its time into matrix products, other operators (elementwise,
reductions, copies), the optimiser's operators and what lies outside any operator (Python, the autograd engine,
dispatch). Everything is measured twice: with torch's default threads, and with one thread, where no kernel waits
for a second (on a shared machine, busy) core, so the split shows the arithmetic itself.
"""

from __future__ import annotations

import os
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

from bench.timing import compare
from hstnn_ros.learning.config import OptimConfig
from hstnn_ros.learning.trainer import make_optimizer, train_step
from hstnn_ros.model import HSTNN, HSTNNConfig

MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::baddbmm",
              "aten::addmv", "aten::mv"}
CLIP = 1.0
LR = 1e-3

WORKLOADS = {
    "smnist": {"cfg": {"input_size": 28, "hidden": [[800, 800], [800, 800]], "num_classes": 10,
                       "decay": 0.5, "v_th": 0.5},
               "steps": 28, "batch": 100},
    "place": {"cfg": {"input_size": 512, "hidden": [[500, 500], [500, 500]], "num_classes": 100,
                      "input_spiking": 256, "decay": 0.5, "v_th": 0.3},
              "steps": 9, "batch": 64},
}


class _RectSpike(torch.autograd.Function):
    """Heaviside ``x >= 0`` forward, ``1[|x| < a] / (2a)`` backward (public HSTNN code's ``ActFun``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, a: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.a = a
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() < ctx.a).to(grad.dtype) / (2 * ctx.a), None


class RefLayer(nn.Module):
    """One hybrid layer, per population its own ``nn.Linear``s."""

    def __init__(self, n_in: int, n_snn: int, n_rnn: int) -> None:
        super().__init__()
        self.snn_fc = nn.Linear(n_in, n_snn, bias=False)
        self.rnn_in = nn.Linear(n_in, n_rnn, bias=False)
        self.rnn_rec = nn.Linear(n_rnn, n_rnn, bias=False)


class RefHSTNN(nn.Module):
    """Straightforward step-by-step HSTNN (LIF + sigmoid RNN layers, rate-decoded readout)."""

    def __init__(self, cfg: HSTNNConfig) -> None:
        super().__init__()
        self.decay, self.v_th, self.a = cfg.decay, cfg.v_th, cfg.surrogate_width
        n_in, layers = cfg.input_size, []
        for h in cfg.hidden:
            layers.append(RefLayer(n_in, h.n_snn, h.n_rnn))
            n_in = h.size
        self.layers = nn.ModuleList(layers)
        self.readout = nn.Linear(n_in, cfg.num_classes, bias=cfg.readout_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        mem = [x.new_zeros(B, la.snn_fc.out_features) for la in self.layers]
        spk = [m.clone() for m in mem]
        hid = [x.new_zeros(B, la.rnn_rec.out_features) for la in self.layers]
        spike_sum = 0
        for t in range(T):
            y = x[:, t]
            for i, la in enumerate(self.layers):
                mem[i] = mem[i] * self.decay * (1 - spk[i]) + la.snn_fc(y)
                spk[i] = _RectSpike.apply(mem[i] - self.v_th, self.a)
                hid[i] = torch.sigmoid(la.rnn_in(y) + la.rnn_rec(hid[i]))
                y = torch.cat([spk[i], hid[i]], dim=1)
            spike_sum = spike_sum + spk[-1]
        return self.readout(torch.cat([spike_sum / T, hid[-1]], dim=1))

    def load_from(self, model: HSTNN) -> None:
        """Copy the package model's weights (same network, different parameter layout)."""
        with torch.no_grad():
            for ref, layer in zip(self.layers, model.layers, strict=True):
                ref.snn_fc.weight.copy_(layer.snn.fc.weight)
                ref.rnn_in.weight.copy_(layer.rnn.fc_in.weight)
                ref.rnn_rec.weight.copy_(layer.rnn.fc_rec.weight)
            self.readout.load_state_dict(model.readout.state_dict())

    def grads_like(self, model: HSTNN) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """``(name, reference grad, package grad)`` for every weight."""
        out = []
        for i, (ref, layer) in enumerate(zip(self.layers, model.layers, strict=True)):
            out += [(f"layer{i}.snn", ref.snn_fc.weight.grad, layer.snn.fc.weight.grad),
                    (f"layer{i}.rnn_in", ref.rnn_in.weight.grad, layer.rnn.fc_in.weight.grad),
                    (f"layer{i}.rnn_rec", ref.rnn_rec.weight.grad, layer.rnn.fc_rec.weight.grad)]
        return [*out, ("readout", self.readout.weight.grad, model.readout.weight.grad)]


def _inputs(name: str, cfg: HSTNNConfig, batch: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(batch, steps, cfg.input_size, generator=g)
    if name == "place":
        x[..., : cfg.input_spiking] = (x[..., : cfg.input_spiking] > 0.9).float()
    y = torch.randint(0, cfg.num_classes, (batch,), generator=g)
    return x, y


def _package_trainer(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """The package's own training step (``learning.trainer.train_step`` with its optimiser, as ``fit`` runs it)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, OptimConfig(lr=LR, clip=CLIP))

    def step() -> float:
        return float(train_step(model, x, y, opt, params=params, clip=CLIP))

    return step


def _trainer(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """The reference's step, as public HSTNN code writes it: torch's default Adam, clipping, one loss."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=LR)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        return float(loss.detach())

    return step


def check_equal(model: HSTNN, ref: RefHSTNN, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Same loss and gradients on the same weights (raises if not); returns the largest relative gradient gap."""
    ref.load_from(model)
    model.zero_grad(set_to_none=True)
    ref.zero_grad(set_to_none=True)
    la = F.cross_entropy(model(x), y)
    lb = F.cross_entropy(ref(x), y)
    la.backward()
    lb.backward()
    if not torch.allclose(la, lb, rtol=1e-5, atol=1e-6):
        raise AssertionError(f"package loss {float(la)} != reference loss {float(lb)}")
    worst = 0.0
    for name, gr, gp in ref.grads_like(model):
        gap = float((gr - gp).norm() / gr.norm().clamp(min=1e-30))
        worst = max(worst, gap)
        if gap > 1e-3:
            raise AssertionError(f"gradient of {name} differs from the reference by {gap:.2e} (relative norm)")
    model.zero_grad(set_to_none=True)
    ref.zero_grad(set_to_none=True)
    la, lb = la.detach(), lb.detach()
    return {"loss": float(la), "loss_gap": abs(float(la) - float(lb)), "max_rel_grad_gap": worst}


def profile_split(step, reps: int) -> dict:
    """Shares of the wall time of ``reps`` steps: matrix products, other operators, optimiser, outside operators."""
    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        wall = time.perf_counter() - t0
    events = prof.key_averages()
    # self times of operators under the optimiser's record_function are not separable by key; count foreach ops
    total = sum(e.self_cpu_time_total for e in events if e.key.startswith("aten::")) / 1e6
    mm = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS) / 1e6
    optim = sum(e.self_cpu_time_total for e in events if e.key.startswith("aten::_foreach")) / 1e6
    top = sorted((e for e in events if e.key.startswith("aten::")), key=lambda e: -e.self_cpu_time_total)[:8]
    return {"wall_s_per_step": wall / reps, "gemm": mm / wall, "other_ops": (total - mm - optim) / wall,
            "optimizer_foreach": optim / wall, "outside_ops": max(0.0, 1 - total / wall),
            "top_ops": {e.key: round(e.self_cpu_time_total / 1e6 / wall, 3) for e in top}}


def run_workload(name: str, pairs: int) -> dict:
    spec = WORKLOADS[name]
    torch.manual_seed(0)
    cfg = HSTNNConfig.from_dict(spec["cfg"])
    model = HSTNN(cfg)
    ref = RefHSTNN(cfg)
    x, y = _inputs(name, cfg, spec["batch"], spec["steps"])
    eq = check_equal(model, ref, x, y)
    load = os.getloadavg()[0]
    cmp = compare(_trainer(ref, x, y), _package_trainer(model, x, y), pairs=pairs, name_a="per-step reference",
                  name_b="package HSTNN")
    split = profile_split(_package_trainer(model, x, y), reps=2)
    # one thread: no waiting for a second (busy) core at every parallel kernel, so what is left is the arithmetic
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cmp1 = compare(_trainer(ref, x, y), _package_trainer(model, x, y), pairs=pairs, name_a="per-step reference",
                       name_b="package HSTNN")
        split1 = profile_split(_package_trainer(model, x, y), reps=2)
    finally:
        torch.set_num_threads(threads)
    out = {"network": f"{cfg.input_size}-" + "-".join(f"({h.n_snn}+{h.n_rnn})" for h in cfg.hidden)
                      + f"-{cfg.num_classes}",
           "steps": spec["steps"], "batch": spec["batch"], "equality": eq, "timing": cmp.to_dict(),
           "speedup": {"min": cmp.ratio.min, "median": cmp.ratio.median, "max": cmp.ratio.max},
           "profile": split, "one_thread": {"timing": cmp1.to_dict(), "profile": split1},
           "speedup_one_thread": {"min": cmp1.ratio.min, "median": cmp1.ratio.median, "max": cmp1.ratio.max},
           "loadavg_1min": [load, os.getloadavg()[0]]}
    print(f"{name}: {out['network']}, T = {spec['steps']}, batch {spec['batch']}, train step "
          f"(forward + backward + clip + Adam); same loss as the reference within {eq['loss_gap']:.1e}, "
          f"gradients within {eq['max_rel_grad_gap']:.1e} (relative); load {load:.1f} -> {os.getloadavg()[0]:.1f}")
    for label, c, sp in ((f"{threads} threads", cmp, split), ("1 thread", cmp1, split1)):
        print(f" {label}:")
        print(c.report())
        print(f"  -> package speed-up over the reference {c.ratio.fmt('x')} (goal >= 1.5)")
        print(f"  package step {sp['wall_s_per_step'] * 1e3:.0f} ms: GEMM {sp['gemm']:.0%}, other operators "
              f"{sp['other_ops']:.0%}, optimiser {sp['optimizer_foreach']:.0%}, outside operators (Python, "
              f"autograd engine, dispatch) {sp['outside_ops']:.0%}; top {sp['top_ops']}")
    return out


def main() -> dict:
    quick = os.environ.get("HSTNN_BENCH_QUICK") == "1"
    pairs = 3 if quick else 9
    names = os.environ.get("HSTNN_BENCH_TRAIN_STEP", ",".join(WORKLOADS)).split(",")
    out: dict = {"quick": quick, "threads": torch.get_num_threads()}
    for name in names:
        out[name] = run_workload(name, pairs)
    return out


if __name__ == "__main__":
    main()
