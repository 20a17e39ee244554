"""Robustness evaluation (paper Fig. 3): accuracy of trained models under Gaussian or salt-and-pepper input noise
and under frame loss (random masking of whole time steps). Perturbations are vectorised and seeded."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from hstnn_ros.learning.data import Split
from hstnn_ros.learning.enums import Perturbation
from hstnn_ros.learning.errors import LearningError
from hstnn_ros.learning.trainer import evaluate
from hstnn_ros.plotting import pyplot, save_figure

log = logging.getLogger(__name__)

#: Default perturbation levels per kind (std in data-std units; fraction of entries; step-loss probability).
DEFAULT_LEVELS: dict[Perturbation, tuple[float, ...]] = {
    Perturbation.GAUSSIAN: (0.0, 0.1, 0.2, 0.4, 0.8),
    Perturbation.SALT_PEPPER: (0.0, 0.05, 0.1, 0.2, 0.3),
    Perturbation.FRAME_LOSS: (0.0, 0.1, 0.2, 0.4, 0.6),
}


def perturb(x: torch.Tensor, kind: Perturbation, level: float, generator: torch.Generator) -> torch.Tensor:
    """A perturbed copy of ``x[N, T, F]``.

    GAUSSIAN adds ``N(0, (level * std(x))^2)``; SALT_PEPPER sets a fraction ``level`` of entries to ``min(x)`` or
    ``max(x)`` with equal probability; FRAME_LOSS zeroes each time step of each window with probability ``level``.
    """
    if x.ndim != 3:
        raise LearningError(f"perturb expects windows [N, T, F], got shape {tuple(x.shape)}")
    if kind is Perturbation.GAUSSIAN:
        if level < 0:
            raise LearningError(f"Gaussian noise level {level} must be >= 0 (a standard deviation)")
        return x + torch.randn(x.shape, generator=generator) * (level * float(x.std()))
    if not 0.0 <= level <= 1.0:
        raise LearningError(f"{kind.value} level {level} must be a probability in [0, 1]")
    if kind is Perturbation.SALT_PEPPER:
        hit = torch.rand(x.shape, generator=generator) < level
        salt = torch.rand(x.shape, generator=generator) < 0.5
        lo, hi = float(x.min()), float(x.max())
        return torch.where(hit, torch.where(salt, torch.full_like(x, hi), torch.full_like(x, lo)), x)
    if kind is Perturbation.FRAME_LOSS:
        keep = (torch.rand(x.shape[:2], generator=generator) >= level).to(x.dtype)
        return x * keep[:, :, None]
    raise LearningError(f"unknown perturbation {kind!r}")


def evaluate_robustness(models: Mapping[str, nn.Module], split: Split, *,
                        kinds: Sequence[Perturbation] = tuple(Perturbation),
                        levels: Mapping[Perturbation, Sequence[float]] | None = None, seed: int = 0,
                        tolerance: int = 0, repeats: int = 1) -> dict[str, dict[str, list[dict[str, float]]]]:
    """Top-1/top-5/recall of every model under every perturbation level: ``{model: {kind: [{level, top1, ...}]}}``.

    Every model sees the same perturbed inputs (same seed per kind, level and repeat), so differences between
    models are not noise of the perturbation draw.
    """
    levels = levels or DEFAULT_LEVELS
    out: dict[str, dict[str, list[dict[str, float]]]] = {name: {} for name in models}
    total = sum(len(levels[k]) for k in kinds) * repeats
    bar = tqdm(total=total, desc="robustness", leave=False)
    for ki, kind in enumerate(kinds):
        for li, level in enumerate(levels[kind]):
            acc: dict[str, list[dict[str, float]]] = {name: [] for name in models}
            for rep in range(repeats):
                gen = torch.Generator().manual_seed(seed + 1000 * ki + 37 * li + rep)
                xp = perturb(split.x, kind, float(level), gen)
                for name, model in models.items():
                    acc[name].append(evaluate(model, Split(xp, split.y), tolerance=tolerance).to_dict())
                bar.update(1)
            for name in models:
                row = {"level": float(level)}
                for key in ("top1", "top5", "recall"):
                    row[key] = sum(a[key] for a in acc[name]) / repeats
                out[name].setdefault(kind.value, []).append(row)
    bar.close()
    return out


def plot_robustness(results: Mapping[str, Mapping[str, Sequence[Mapping[str, float]]]], path: Path | str) -> Path:
    """One panel per perturbation: top-1 accuracy versus level, one line per model (like paper Fig. 3c)."""
    plt = pyplot()

    kinds = sorted({k for per in results.values() for k in per})
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(4.5 * max(1, len(kinds)), 3.6), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=False):
        for name, per in results.items():
            rows = per.get(kind, [])
            ax.plot([r["level"] for r in rows], [r["top1"] for r in rows], marker="o", label=name)
        ax.set_title(kind.replace("_", " "))
        ax.set_xlabel("level")
        ax.set_ylabel("top-1 accuracy")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, path)
