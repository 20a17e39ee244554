"""BPTT training (Adam, gradient-norm clipping, early stopping and checkpoint choice on the validation split) and
evaluation (top-1, top-5, recall@1 within a place tolerance). Generic over any ``nn.Module`` mapping
``x[B, T, F]`` to ``logits[B, C]``: the same recipe serves Adaptation, Restoration and the baselines."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from hstnn_ros.learning.config import OptimConfig
from hstnn_ros.learning.data import Split, iter_batches
from hstnn_ros.learning.errors import LearningError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metrics:
    """Classification metrics of one model on one split."""

    top1: float
    top5: float
    recall: float  #: recall@1 within the place tolerance: ``|pred - label| <= tolerance``
    loss: float
    n: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class FitResult:
    """Outcome of :func:`fit`: the best validation metrics and the per-epoch history."""

    best_epoch: int
    best_val: Metrics
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"best_epoch": self.best_epoch, "best_val": self.best_val.to_dict(), "epochs_run": self.epochs_run,
                "stopped_early": self.stopped_early, "history": self.history}


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, *, tolerance: int = 0, batch_size: int = 256) -> Metrics:
    """Top-1, top-5, recall@1 within ``tolerance`` places and mean cross-entropy of ``model`` on ``split``."""
    if len(split) == 0:
        raise LearningError("cannot evaluate on an empty split; give the feature set windows in every split")
    was_training = model.training
    model.eval()
    c1 = c5 = cr = 0
    loss = 0.0
    device = _device(model)
    for xb, yb in iter_batches(split, batch_size, shuffle=False):
        x, y = xb.to(device), yb.to(device)
        logits = model(x)
        loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        k = min(5, logits.shape[1])
        top = logits.topk(k, dim=1).indices
        c1 += int((top[:, 0] == y).sum())
        c5 += int((top == y[:, None]).any(dim=1).sum())
        cr += int(((top[:, 0] - y).abs() <= tolerance).sum())
    model.train(was_training)
    n = len(split)
    return Metrics(top1=c1 / n, top5=c5 / n, recall=cr / n, loss=loss / n, n=n)


def make_optimizer(params: list[nn.Parameter], optim: OptimConfig) -> torch.optim.Adam:
    """Adam over ``params``: the fused implementation (one kernel over all tensors instead of a handful per tensor)
    where every parameter is a floating-point CPU tensor, torch's default elsewhere; the same update rule."""
    fused = all(p.device.type == "cpu" and p.is_floating_point() for p in params) or None
    return torch.optim.Adam(params, lr=optim.lr, weight_decay=optim.weight_decay, fused=fused)


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, *,
               params: list[nn.Parameter], clip: float) -> torch.Tensor:
    """One BPTT step: cross-entropy of ``model(x)`` against ``y``, backward, gradient-norm clipping to ``clip``,
    the optimiser's step; returns the loss (detached; checked finite by the caller)."""
    opt.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    if not torch.isfinite(loss):
        return loss.detach()  # no step on a non-finite loss
    loss.backward()
    nn.utils.clip_grad_norm_(params, clip, foreach=True)
    opt.step()
    return loss.detach()


def fit(model: nn.Module, train: Split, val: Split, optim: OptimConfig, *, epochs: int, patience: int, seed: int,
        tolerance: int = 0, desc: str = "train") -> FitResult:
    """Train ``model`` in place with BPTT + Adam + gradient-norm clipping; keep the weights of the epoch with the
    best validation top-1 (ties: lower val loss) and stop after ``patience`` epochs without improvement.

    The test split is never seen here. Returns the validation history; ``model`` ends with the best weights.
    """
    gen = torch.Generator().manual_seed(seed)
    device = _device(model)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise LearningError(f"{desc}: the model has no trainable parameters")
    opt = make_optimizer(params, optim)
    best_key = (-1.0, math.inf)
    best_state = copy.deepcopy(model.state_dict())
    best_val: Metrics | None = None
    best_epoch, since = 0, 0
    history: list[dict[str, float]] = []
    bar = tqdm(range(1, epochs + 1), desc=desc, leave=False, unit="epoch")
    epoch = 0
    for epoch in bar:
        model.train()
        total, n = 0.0, 0
        for xb, yb in iter_batches(train, optim.batch_size, generator=gen):
            x, y = xb.to(device), yb.to(device)
            loss = train_step(model, x, y, opt, params=params, clip=optim.clip)
            if not torch.isfinite(loss):
                raise LearningError(f"{desc}: training loss became {float(loss)} at epoch {epoch}; "
                                    f"lower optim.lr (now {optim.lr}) or check the features")
            total += float(loss) * len(y)
            n += len(y)
        m = evaluate(model, val, tolerance=tolerance)
        history.append({"epoch": epoch, "train_loss": total / n, "val_top1": m.top1, "val_loss": m.loss})
        bar.set_postfix(loss=f"{total / n:.3f}", val=f"{m.top1:.3f}")
        key = (m.top1, -m.loss)
        if key > (best_key[0], -best_key[1]):
            best_key = (m.top1, m.loss)
            best_state = copy.deepcopy(model.state_dict())
            best_val, best_epoch, since = m, epoch, 0
        else:
            since += 1
            if since >= patience:
                log.info("%s: early stop at epoch %d (best val top-1 %.4f at epoch %d)", desc, epoch, best_key[0],
                         best_epoch)
                break
    model.load_state_dict(best_state)
    assert best_val is not None
    return FitResult(best_epoch=best_epoch, best_val=best_val, epochs_run=epoch,
                     stopped_early=epoch < epochs, history=history)
