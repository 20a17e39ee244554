"""Front-end pretraining throughput (the ``frontends`` stage of ``hstnn-fit-route``) against the machine's GEMM peak.

Training steps of the shipped small SCNN and CNN (90 x 120 input, linear place head over 20 places, Adam, gradient
clipping) on synthetic frames shaped like a dataset's (Poisson event counts, uniform RGB), in two recipes measured
interleaved in one run:

- ``before``: the recipe of ``hstnn-frontends`` before issue 13 (batch 32, default memory layout, the twice
  differentiable ``model.spike`` in training, unfused Adam);
- ``after``: ``PretrainConfig()`` as ``pretrain_frontend`` runs it (batch 128, channels-last, the first-order
  ``_RectSpike``, fused Adam).

FLOP/s count the dense work of each step (``perception.frontends.dense_macs``: forward 2 x MACs, input and weight
gradients 4 x MACs, no input gradient for the first convolution), the same count ``pretrain_frontend`` records. The
GEMM peak is ``frontend_training.gemm_peak_flops`` (fp32 ``torch.mm``, what ``pretrain_frontend`` records too) at
the same thread count, measured at every round. Printed: min / median / max over rounds of each recipe's GFLOP/s,
the median of its share of that round's peak, and the after/before ratio per round. Frames are real-looking sparse
event counts (Poisson 0.03 per pixel and bin); denormals are flushed in both recipes as pretraining does.
``HSTNN_BENCH_QUICK=1``: fewer rounds.
"""

from __future__ import annotations

import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from hstnn_ros.datasets.frontend_training import PretrainConfig, gemm_peak_flops
from hstnn_ros.model import spike
from hstnn_ros.perception.frontends import RGBCNN, SCNN, SMALL, FrontendConfig, dense_macs

QUICK = os.environ.get("HSTNN_BENCH_QUICK", "") not in ("", "0")
PLACES = 20


class _SpikeSCNN(SCNN):
    """The SCNN as pretrained before: ``model.spike`` (F(x) - F(x).detach()) in training too."""

    def _fire(self, drive: torch.Tensor, th: float, surrogate: object) -> torch.Tensor:
        return spike(drive - th, surrogate)  # type: ignore[arg-type]


def _flops_per_frame(cfg: FrontendConfig) -> float:
    h, w = cfg.input_hw
    conv1 = cfg.in_channels * cfg.widths[0] * 9 * ((h - 1) // 3 + 1) * ((w - 1) // 3 + 1)
    return 6.0 * dense_macs(cfg) - 2.0 * conv1


def _make(kind: str, *, batch: int, fast: bool) -> tuple:
    torch.manual_seed(0)
    cfg = FrontendConfig(in_channels=2 if kind == "scnn" else 3, **SMALL)
    model = (SCNN if fast else _SpikeSCNN)(cfg) if kind == "scnn" else RGBCNN(cfg)
    head = nn.Linear(cfg.features, PLACES)
    x = torch.poisson(torch.full((batch, 2, *cfg.input_hw), 0.03)) if kind == "scnn" else \
        torch.rand(batch, 3, *cfg.input_hw)
    if fast:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    params = [*model.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, **({"fused": True} if fast else {}))
    y = torch.randint(0, PLACES, (batch,))

    def step() -> None:
        loss = F.cross_entropy(head(model(x)), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    model.train()
    step()
    step()
    return step, _flops_per_frame(cfg) * batch


def main() -> dict:
    """Measure and print; returns the numbers for ``python -m bench``."""
    rounds, steps = (3, 2) if QUICK else (7, 4)
    torch.set_flush_denormal(True)  # as pretrain_frontend runs
    after = PretrainConfig()
    variants = {f"{kind}_{name}": _make(kind, batch=b, fast=fast)
                for kind in ("scnn", "cnn")
                for name, b, fast in (("before", 32, False), ("after", after.batch, True))}
    rates: dict[str, list[float]] = {k: [] for k in variants}
    peaks = []
    for _ in range(rounds):
        peaks.append(gemm_peak_flops())
        for name, (step, flops) in variants.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            rates[name].append(flops * steps / (time.perf_counter() - t0))
    torch.set_flush_denormal(False)
    res: dict[str, object] = {"threads": torch.get_num_threads(),
                              "gemm_peak_gflops_min_med_max": tuple(round(v / 1e9, 1) for v in (
                                  min(peaks), statistics.median(peaks), max(peaks))), "rounds": rounds}
    for name, r in rates.items():
        res[f"{name}_gflops_min_med_max"] = tuple(round(v / 1e9, 2) for v in (min(r), statistics.median(r), max(r)))
        res[f"{name}_share_of_round_peak_median"] = statistics.median(v / p for v, p in zip(r, peaks, strict=True))
    for kind in ("scnn", "cnn"):
        res[f"{kind}_after_over_before_median"] = statistics.median(
            a / b for a, b in zip(rates[f"{kind}_after"], rates[f"{kind}_before"], strict=True))
    for k, v in res.items():
        print(f"{k:>40}: {v:.4g}" if isinstance(v, float) else f"{k:>40}: {v}")
    return res


if __name__ == "__main__":
    main()
