"""Benchmark of the HSTNN model core: training step (forward + backward) of the paper's redundant hybrid network
[1024-500-500-100] (500 SNN + 500 RNN per layer, T = 9, batch 64), the share of CPU time spent inside matrix
products (torch.profiler self time), the speed-up of the layer-by-layer batched run over a step-by-step loop (the two
timed in interleaved pairs, see bench/timing.py), and the measured Eq. 23-25 op counts per window (random weights:
trends, not a trained model's numbers)."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from bench.timing import compare
from hstnn_ros.model import HSTNN, HSTNNConfig, count_ops

MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::baddbmm"}


def _setup(batch: int, steps: int) -> tuple[HSTNN, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    cfg = HSTNNConfig.from_dict({"input_size": 1024, "hidden": [[500, 500], [500, 500]], "num_classes": 100,
                                 "input_spiking": 512, "decay": 0.5, "v_th": 0.3})
    model = HSTNN(cfg)
    x = torch.rand(batch, steps, 1024)
    x[..., :512] = (x[..., :512] > 0.9).float()  # sparse event half, dense RGB half
    y = torch.randint(0, 100, (batch,))
    return model, x, y


def _train_step(model: HSTNN, x: torch.Tensor, y: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()


def _stream_train_step(model: HSTNN, x: torch.Tensor, y: torch.Tensor) -> None:
    model.zero_grad(set_to_none=True)
    state = model.init_state(x.shape[0])
    for t in range(x.shape[1]):
        logits, state = model.step(x[:, t], state)
    F.cross_entropy(logits, y).backward()


def main() -> dict:
    quick = os.environ.get("HSTNN_BENCH_QUICK") == "1"
    pairs = 5 if quick else 15
    model, x, y = _setup(64, 9)
    out: dict = {"quick": quick, "threads": torch.get_num_threads(), "network": "1024-(500+500)-(500+500)-100",
                 "batch": 64, "steps": 9}
    cmp = compare(lambda: _stream_train_step(model, x, y), lambda: _train_step(model, x, y), pairs=pairs,
                  name_a="step-by-step loop", name_b="batched run")
    out["train_step"] = cmp.to_dict()
    out["train_step_ms_median"] = cmp.b.median * 1e3
    out["stream_train_step_ms_median"] = cmp.a.median * 1e3
    out["batched_speedup_over_stepwise"] = {"min": cmp.ratio.min, "median": cmp.ratio.median, "max": cmp.ratio.max}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(2 if quick else 5):
            _train_step(model, x, y)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    mm = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS)
    out["matmul_share_of_cpu_time"] = mm / total
    out["top_ops_self_cpu_share"] = {e.key: round(e.self_cpu_time_total / total, 3)
                                     for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:6]}
    with torch.no_grad():
        rec = model.run(x)
    ops = count_ops(model, x, rec)
    out["mac_per_window"] = ops.mac_per_sample
    out["ac_per_window"] = ops.ac_per_sample
    out["spike_rates"] = ops.spike_rates
    print("train step (forward + backward), batch 64, T = 9:")
    print(cmp.report())
    print(f"  -> the batched run is {cmp.ratio.fmt('x')} faster than the step-by-step loop")
    print(f"matrix products: {out['matmul_share_of_cpu_time']:.2f} of profiled CPU time (goal >= 0.50)")
    print(f"ops per window: {ops.mac_per_sample:.3g} MAC, {ops.ac_per_sample:.3g} AC; spike rates {ops.spike_rates}")
    return out


if __name__ == "__main__":
    main()
