"""Front-end pretraining (a linear place head on each front-end, trained on the training split and chosen on the
validation split), the feature cache that turns a window dataset into a :class:`FeatureSet` for ``hstnn-train``,
and a nearest-neighbour baseline on raw downsampled frames.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from hstnn_ros.datasets.chunked import concat_frames, frames_of
from hstnn_ros.datasets.errors import DatasetError
from hstnn_ros.datasets.features import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, FeatureSet, save_feature_set
from hstnn_ros.datasets.windows import Traversal, WindowDataset, rgb_input
from hstnn_ros.model import Bundle, load_bundle, save_bundle
from hstnn_ros.perception.frontends import (
    BUILDERS,
    CNN_KIND,
    RGBCNN,
    SCNN,
    SCNN_KIND,
    SMALL,
    Frontend,
    FrontendConfig,
    dense_macs,
)
from hstnn_ros.perception.window import WindowSpec, assemble_window
from hstnn_ros.plotting import pyplot, save_figure

log = logging.getLogger(__name__)
SPLIT_CODES = {"train": SPLIT_TRAIN, "val": SPLIT_VAL, "test": SPLIT_TEST}


@dataclass(frozen=True)
class PretrainConfig:
    """Recipe of the front-end pretraining. ``batch`` frames per step (large batches keep the convolutions near the
    machine's GEMM throughput; ``lr`` is scaled for it), ``channels_last`` runs training convolutions in NHWC (the
    faster layout for CPU kernels; features are cached and run online in the default layout)."""

    epochs: int = 12
    batch: int = 128
    lr: float = 4e-3
    seed: int = 0
    device: str = "cpu"
    channels_last: bool = True
    #: Training that learned nothing restarts from the same initial weights at ``lr * lr_backoff`` (at most
    #: ``max_restarts`` times): judged once, at the end of the first epoch by which ``stall_steps`` steps have run, by
    #: the mean loss of the last quarter of those steps against ``stall_share * ln(places)`` (a uniform guess).
    #: 4e-3 suits the 8- and 20-place routes; on the 100-place default route the SCNN stayed at chance with it for 5
    #: epochs (loss ln 100), where 1e-3 learns from the first epoch. (Steps, not one epoch: an 8-place route has a
    #: dozen steps per epoch, too few to tell slow learning from none.)
    stall_share: float = 0.97
    stall_steps: int = 100
    lr_backoff: float = 0.25
    max_restarts: int = 2

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1 or not self.lr > 0 or self.stall_steps < 1:
            raise DatasetError(f"pretraining recipe {self}: epochs, batch, lr and stall_steps must be positive")
        if not 0 < self.lr_backoff < 1 or self.max_restarts < 0 or not 0 < self.stall_share <= 1:
            raise DatasetError(f"pretraining recipe {self}: use 0 < lr_backoff < 1, max_restarts >= 0 and "
                               "0 < stall_share <= 1")


def gemm_peak_flops(n: int = 1024, repeats: int = 5) -> float:
    """Best fp32 GEMM FLOP/s of ``torch.mm`` on ``n x n`` matrices at torch's current thread count: the machine's
    practical peak, measured beside the pretraining so that its throughput is judged in the same conditions (a
    shared machine's peak varies by 2x over minutes)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


@contextlib.contextmanager
def _flush_denormals() -> Iterator[None]:
    """Flush denormal floats to zero inside (process-wide in torch; back to torch's default afterwards)."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


class FrameInputs:
    """Front-end inputs of the frames of some traversals, read a batch at a time: ``x[idx]`` (an index array or a
    slice along frames) is the float32 batch; nothing else is held in memory (the traversals' frames stay
    memory-mapped, ``datasets.chunked``), so pretraining on a long route needs no more memory than on a short one.
    Event bins count one frame each (``scnn``); RGB(-D) frames are scaled as ``preprocess_rgbd`` does (``cnn``)."""

    def __init__(self, traversals: Sequence[Traversal], kind: str) -> None:
        self.kind = kind
        if kind == SCNN_KIND:
            self.events = concat_frames([frames_of(t.events).reshape_parts(*t.events.shape[2:]) for t in traversals])
            self.rgb = self.depth = None
        else:
            if any(t.rgb is None for t in traversals):
                bad = next(t for t in traversals if t.rgb is None)
                raise DatasetError(f"{bad.source or bad.name}: an events-only traversal has no RGB frames")
            self.rgb = concat_frames([t.rgb for t in traversals if t.rgb is not None])
            with_depth = [t.depth is not None for t in traversals]
            if any(with_depth) and not all(with_depth):
                raise DatasetError("front-end pretraining: some traversals have depth frames and some do not; "
                                   "rebuild the dataset with one --depth setting")
            self.depth = concat_frames([t.depth for t in traversals if t.depth is not None]) if all(with_depth) \
                else None

    def __len__(self) -> int:
        return len(self.events) if self.rgb is None else len(self.rgb)

    def __getitem__(self, idx: np.ndarray | slice) -> np.ndarray:
        if self.rgb is None:
            return np.asarray(self.events[idx], np.float32)
        return rgb_input(self.rgb[idx], None if self.depth is None else self.depth[idx])


def _frames(ds: WindowDataset, kind: str, split: str) -> tuple[FrameInputs, np.ndarray, np.ndarray]:
    """Inputs (read lazily), labels and environment index of every frame of ``split`` (event bins count one frame
    each)."""
    envs = sorted({t.env for t in ds.traversals})
    ts = [t for t in ds.traversals if t.split == split]
    if not ts:
        raise DatasetError(f"{ds.root}: no traversal in split {split!r}; at least 3 traversals per environment")
    bins = [t.events.shape[1] if kind == SCNN_KIND else 1 for t in ts]
    ys = np.concatenate([np.repeat(t.labels, b) for t, b in zip(ts, bins, strict=True)])
    es = np.concatenate([np.full(len(t) * b, envs.index(t.env)) for t, b in zip(ts, bins, strict=True)])
    return FrameInputs(ts, kind), ys, es


def _batch(x: FrameInputs, idx: np.ndarray | slice, device: str, channels_last: bool) -> torch.Tensor:
    xb = torch.from_numpy(x[idx]).to(device)
    return xb.contiguous(memory_format=torch.channels_last) if channels_last else xb


def _accuracy(model: nn.Module, head: nn.Module, x: FrameInputs, y: np.ndarray, *, batch: int, device: str,
              channels_last: bool = False) -> np.ndarray:
    """Per-frame correctness of ``head(model(x))``."""
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(x), batch * 4):
            out.append(head(model(_batch(x, slice(s, s + batch * 4), device, channels_last))).argmax(1).cpu().numpy())
    return np.concatenate(out) == y


def pretrain_frontend(ds: WindowDataset, kind: str, fe_config: FrontendConfig,
                      recipe: PretrainConfig = PretrainConfig(), progress: bool = True
                      ) -> tuple[Frontend, dict[str, Any]]:
    """Train front-end ``kind`` (``scnn`` or ``cnn``) with a linear place head on the training split; keep the
    epoch with the best validation accuracy; return the frozen module (eval mode) and per-environment accuracies.
    A run that learned nothing (``PretrainConfig.stall_steps``) restarts at a lower learning rate; the
    metrics say which rate was used (``lr``) and how many restarts it took (``restarts``).

    Progress: one bar over every training step from the first second on, with the loss and each epoch's validation
    top-1. The metrics record the training throughput: ``train_flops_per_s`` counts the dense forward and backward
    work of the convolutions and FC layers (``dense_macs``; the first layer needs no input gradient) over the time
    spent in training steps (validation excluded, ``val_seconds``); ``share_of_gemm_peak`` divides it by the best of
    two GEMM peak measurements taken just before and after (``gemm_peak_flops``)."""
    xtr, ytr, _ = _frames(ds, kind, "train")
    xva, yva, _ = _frames(ds, kind, "val")
    flops_per_frame = _train_flops_per_frame(fe_config)
    peaks = [gemm_peak_flops()]
    stall_loss = recipe.stall_share * math.log(max(ds.num_places, 2))
    lr, restarts = recipe.lr, 0
    while True:
        run = _Run(kind, fe_config, ds.num_places, recipe, lr)
        fit = run.fit(xtr, ytr, xva, yva, progress=progress, stall_loss=stall_loss if restarts < recipe.max_restarts
                      else None)
        if fit is not None:
            break
        log.warning("pretrain %s: the first steps at lr %.2g learned nothing (training loss above %.3f, a uniform "
                    "guess over %d places is %.3f); restarting at lr %.2g", kind, lr, stall_loss, ds.num_places,
                    math.log(ds.num_places), lr * recipe.lr_backoff)
        lr *= recipe.lr_backoff
        restarts += 1
    model, head, best_acc, history, t_train, t_val = fit
    peaks.append(gemm_peak_flops())
    epochs = len(history)
    metrics: dict[str, Any] = {
        "val_top1": best_acc, "per_env": {}, "history": history, "train_seconds": t_train, "val_seconds": t_val,
        "lr": lr, "restarts": restarts,
        "train_frames": len(xtr) * epochs, "train_flops": float(flops_per_frame) * len(xtr) * epochs,
        "train_flops_per_s": float(flops_per_frame) * len(xtr) * epochs / max(t_train, 1e-9),
        "threads": torch.get_num_threads(), "gemm_peak_flops_per_s": max(peaks), "gemm_peaks": peaks,
    }
    metrics["share_of_gemm_peak"] = metrics["train_flops_per_s"] / metrics["gemm_peak_flops_per_s"]
    metrics["per_env"] = _per_env_accuracy(ds, kind, model, head, recipe)
    model.eval()
    model.requires_grad_(False)
    return model.cpu(), metrics


class _Run:
    """One pretraining run at learning rate ``lr``: the front-end and head from the recipe's seed (so a restart
    begins from the same weights), Adam, and the best-validation checkpoint."""

    def __init__(self, kind: str, fe_config: FrontendConfig, num_places: int, recipe: PretrainConfig,
                 lr: float) -> None:
        torch.manual_seed(recipe.seed)
        self.kind, self.recipe, self.lr = kind, recipe, lr
        self.rng = np.random.default_rng(recipe.seed)
        self.model: Frontend = (SCNN if kind == SCNN_KIND else RGBCNN)(fe_config).to(recipe.device)
        self.head = nn.Linear(fe_config.features, num_places).to(recipe.device)
        if recipe.channels_last:
            # Module.to takes memory_format at run time; torch's overloads of it do not name the keyword
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.params = [*self.model.parameters(), *self.head.parameters()]
        self.opt = torch.optim.Adam(self.params, lr=lr, fused=True if recipe.device == "cpu" else None)

    def fit(self, xtr: FrameInputs, ytr: np.ndarray, xva: FrameInputs, yva: np.ndarray, *, progress: bool,
            stall_loss: float | None
            ) -> tuple[Frontend, nn.Module, float, list[dict[str, float]], float, float] | None:
        """Every epoch, keeping the best validation epoch; None when it learned nothing (``PretrainConfig``'s
        stall check against ``stall_loss``; None: no check)."""
        recipe, model, head, cl = self.recipe, self.model, self.head, self.recipe.channels_last
        steps = (len(xtr) + recipe.batch - 1) // recipe.batch
        best, best_acc = None, -1.0
        t_train = t_val = 0.0
        history: list[dict[str, float]] = []
        seen: list[float] = []  # step losses until the stall check has run
        pending = stall_loss is not None
        bar = tqdm(total=recipe.epochs * steps, desc=f"pretrain {self.kind} (lr {self.lr:.2g})", unit="step",
                   disable=not progress)
        # Denormal numbers (tiny gradients of the spiking layers) cost x86 cores tens of cycles each and slowed
        # training steps up to 3x; flushing them to zero changes nothing a 32-bit place classifier can resolve.
        # Process-wide in torch, so it is switched off again afterwards (torch's default).
        with _flush_denormals():
            for epoch in range(recipe.epochs):
                model.train()
                order = self.rng.permutation(len(xtr))
                t0 = time.perf_counter()
                total, step_losses = _train_epoch(
                    model, head, xtr, ytr, order, opt=self.opt, params=self.params, recipe=recipe, bar=bar,
                    epoch=epoch, last_val=f"{history[-1]['val_top1']:.3f}" if history else "-")
                if pending:
                    seen.extend(step_losses)
                t1 = time.perf_counter()
                t_train += t1 - t0
                if pending and len(seen) >= recipe.stall_steps:
                    pending = False  # judged once
                    late = float(np.mean(seen[len(seen) - max(1, len(seen) // 4):]))
                    if stall_loss is not None and not late <= stall_loss:  # NaN too
                        bar.close()
                        return None
                acc = float(_accuracy(model, head, xva, yva, batch=recipe.batch, device=recipe.device,
                                      channels_last=cl).mean())
                t_val += time.perf_counter() - t1
                history.append({"epoch": epoch + 1, "train_loss": total / len(xtr), "val_top1": acc})
                bar.set_postfix(epoch=epoch + 1, loss=f"{total / len(xtr):.3f}", val=f"{acc:.3f}")
                log.info("pretrain %s epoch %d: val top-1 %.3f", self.kind, epoch + 1, acc)
                if acc > best_acc:
                    best_acc, best = acc, (copy.deepcopy(model.state_dict()), copy.deepcopy(head.state_dict()))
        bar.close()
        assert best is not None
        model = model.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # as above
        model.load_state_dict(best[0])
        head.load_state_dict(best[1])
        return model, head, best_acc, history, t_train, t_val


def _train_epoch(model: nn.Module, head: nn.Module, xtr: FrameInputs, ytr: np.ndarray, order: np.ndarray, *,
                 opt: torch.optim.Optimizer, params: list[nn.Parameter], recipe: PretrainConfig, bar: tqdm,
                 epoch: int, last_val: str) -> tuple[float, list[float]]:
    """One pass over the training frames in ``order`` (batches of ``recipe.batch``); returns the summed loss and
    each step's loss."""
    total = 0.0
    losses: list[float] = []
    for s in range(0, len(order), recipe.batch):
        idx = np.sort(order[s:s + recipe.batch])  # sorted gathers read memory in order; same batches
        yb = torch.from_numpy(ytr[idx]).to(recipe.device)
        loss = F.cross_entropy(head(model(_batch(xtr, idx, recipe.device, recipe.channels_last))), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        total += losses[-1] * len(idx)
        bar.update(1)
        bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.3f}", val=last_val, refresh=False)
    return total, losses


def _train_flops_per_frame(cfg: FrontendConfig) -> int:
    """Dense FLOPs of one training step per frame: forward 2, weight and input gradients 4 per MAC, except the
    input gradient of conv 1 (nothing upstream needs it)."""
    first = cfg.in_channels * cfg.widths[0] * 9
    conv1 = first * ((cfg.input_hw[0] + 2 - 3) // 3 + 1) * ((cfg.input_hw[1] + 2 - 3) // 3 + 1)
    return 6 * dense_macs(cfg) - 2 * conv1


def _per_env_accuracy(ds: WindowDataset, kind: str, model: nn.Module, head: nn.Module, recipe: PretrainConfig
                      ) -> dict[str, dict[str, float | None]]:
    """Validation and test top-1 of ``model`` + ``head`` per environment (None: no frames of it in a split)."""
    per_env: dict[str, dict[str, float | None]] = {}
    envs = sorted({t.env for t in ds.traversals})
    for split in ("val", "test"):
        x, y, e = _frames(ds, kind, split)
        ok = _accuracy(model, head, x, y, batch=recipe.batch, device=recipe.device)
        for k, env in enumerate(envs):
            sel = e == k
            per_env.setdefault(env, {})[f"{split}_top1"] = float(ok[sel].mean()) if sel.any() else None
    return per_env


def _traversal_features(t: Traversal, scnn: Frontend, cnn: Frontend | None, batch: int = 128
                        ) -> tuple[np.ndarray, np.ndarray | None]:
    n, b = t.events.shape[:2]
    ev = []
    rgb = []
    with torch.no_grad():
        flat = frames_of(t.events).reshape_parts(*t.events.shape[2:])
        for s in range(0, len(flat), batch):
            ev.append(scnn(torch.from_numpy(flat[s:s + batch].astype(np.float32))).numpy())
        if cnn is not None and t.rgb is not None:
            for s in range(0, n, batch):
                rgb.append(cnn(torch.from_numpy(t.rgb_input(slice(s, s + batch)))).numpy())
    evf = np.concatenate(ev).reshape(n, b, -1)
    return evf, (np.concatenate(rgb) if rgb else None)


def traversal_windows(t: Traversal, spec: WindowSpec, scnn: Frontend, cnn: Frontend | None) -> np.ndarray:
    """The ``[N, T, F]`` float32 windows of one traversal (``N = len(t) - rgb_frames + 1``: a window ends at every
    frame from the ``rgb_frames``-th on, one decision each), through the frozen front-ends (see ``cache_features``)."""
    w = spec.rgb_frames
    evf, rgbf = _traversal_features(t, scnn, cnn)
    n, bins = evf.shape[:2]
    idx = np.arange(w - 1, n)
    frames = idx[:, None] - (w - 1) + np.arange(w)[None, :]  # [N, w] frame indices of each window
    ev_steps = evf[frames].reshape(len(idx), w * bins, -1)
    steps = assemble_window(spec, ev_steps, rgbf[frames] if rgbf is not None else None)
    return steps.astype(np.float32, copy=False)


def cache_features(ds: WindowDataset, scnn: Frontend, cnn: Frontend | None, progress: bool = True,
                   meta: dict[str, Any] | None = None) -> FeatureSet:
    """Run the frozen front-ends once per frame and assemble the ``[N, T, F]`` windows (``assemble_window``): step
    ``bins * j + k`` carries the event feature of bin ``k`` of the window's ``j``-th RGB frame, and the RGB feature of
    frame ``j`` enters at ``rgb_steps[j]`` (zeros elsewhere); ``F = event features + RGB features`` (event features
    only without ``cnn``: events-only). ``meta`` is added to the feature set's metadata (e.g. the front-end bundle
    the features came from, which trained bundles record)."""
    spec = ds.window
    envs = sorted({t.env for t in ds.traversals})
    w = spec.rgb_frames
    feats, labels, split, group, env = [], [], [], [], []
    for g, t in enumerate(tqdm(ds.traversals, desc="feature cache", disable=not progress)):
        if len(t) < w:
            continue
        feats.append(traversal_windows(t, spec, scnn, cnn))
        idx = np.arange(w - 1, len(t))
        labels.append(t.labels[idx])
        split.append(np.full(len(idx), SPLIT_CODES[t.split], np.int8))
        group.append(np.full(len(idx), g, np.int32))
        env.append(np.full(len(idx), envs.index(t.env), np.int8))
    if not feats:
        raise DatasetError(f"{ds.root}: no traversal has a full window")
    return FeatureSet(
        features=np.concatenate(feats), labels=np.concatenate(labels), split=np.concatenate(split),
        group=np.concatenate(group), env=np.concatenate(env), num_classes=ds.num_places,
        input_spiking=int(scnn.feature_size),
        env_names=tuple(envs), meta={"dataset": str(ds.root), "dataset_fingerprint": ds.manifest["fingerprint"],
                                     "rgb_steps": list(spec.rgb_steps), "window": spec.to_dict(),
                                     "events_only": cnn is None, **(meta or {})},
    )


def _thumb_source(t: Traversal, what: str, idx: slice) -> np.ndarray:
    """Grey images (``rgb``: channel mean) or event-count images (``events``: summed over bins and polarities)."""
    if what == "rgb":
        assert t.rgb is not None
        return t.rgb[idx].astype(np.float32).mean(1)
    return t.events[idx].astype(np.float32).sum((1, 2))


def nearest_neighbour_baseline(ds: WindowDataset, thumb_wh: tuple[int, int] = (16, 12)) -> dict[str, dict[str, float]]:
    """Per-environment top-1 of a cosine nearest neighbour on raw downsampled frames (grey RGB thumbnail, and
    event-count thumbnail), training traversals as the reference, test traversals as queries."""
    matrix = nearest_neighbour_matrix(ds, thumb_wh)
    return {env: matrix[env][env] for env in matrix}


def nearest_neighbour_matrix(ds: WindowDataset, thumb_wh: tuple[int, int] = (16, 12)
                             ) -> dict[str, dict[str, dict[str, float]]]:
    """``{reference env: {query env: {nn_rgb_top1, nn_events_top1}}}``: the nearest-neighbour baseline of
    :func:`nearest_neighbour_baseline` with one environment's training traversals as the reference and another's
    test traversals as queries (the cross-condition protocol; the diagonal is the per-environment one)."""
    cache: dict[tuple[str, str], np.ndarray] = {}

    def thumbs(t: Traversal, what: str) -> np.ndarray:
        if (t.name, what) in cache:
            return cache[t.name, what]
        if what == "rgb" and t.rgb is None:
            raise DatasetError(f"{ds.root}: traversal {t.name} has no colour frames but the dataset is not "
                               "events-only; rebuild it")
        # a block of frames at a time: a traversal's frames as float32 at once would grow with the route
        v = np.stack([cv2.resize(i, thumb_wh, interpolation=cv2.INTER_AREA).ravel()
                      for s in range(0, len(t), 256) for i in _thumb_source(t, what, slice(s, s + 256))])
        v -= v.mean(1, keepdims=True)
        cache[t.name, what] = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-9)
        return cache[t.name, what]

    envs = sorted({t.env for t in ds.traversals})
    out: dict[str, dict[str, dict[str, float]]] = {}
    for ref_env in envs:
        ref = [t for t in ds.traversals if t.env == ref_env and t.split == "train"]
        out[ref_env] = {}
        for qry_env in envs:
            qry = [t for t in ds.traversals if t.env == qry_env and t.split == "test"]
            res = {}
            for what in ("rgb", "events"):
                if (what == "rgb" and ds.events_only) or not ref or not qry:
                    continue
                R = np.concatenate([thumbs(t, what) for t in ref])
                RL = np.concatenate([t.labels for t in ref])
                Q = np.concatenate([thumbs(t, what) for t in qry])
                QL = np.concatenate([t.labels for t in qry])
                res[f"nn_{what}_top1"] = float((RL[(Q @ R.T).argmax(1)] == QL).mean())
            out[ref_env][qry_env] = res
    return out


def plot_frontend_report(report: dict[str, Any], path: Path | str) -> Path:
    """Grouped bars per environment: test top-1 of the SCNN and CNN linear heads and of the nearest-neighbour
    baselines (the evidence that the learned front-ends beat raw frames), saved as a PNG."""
    plt = pyplot()

    envs = sorted(report["scnn_head"]["per_env"])
    series = {
        "SCNN head": [report["scnn_head"]["per_env"][e].get("test_top1") for e in envs],
        "CNN head": [(report.get("cnn_head") or {}).get("per_env", {}).get(e, {}).get("test_top1") for e in envs],
        "NN events": [report["nearest_neighbour"].get(e, {}).get("nn_events_top1") for e in envs],
        "NN RGB": [report["nearest_neighbour"].get(e, {}).get("nn_rgb_top1") for e in envs],
    }
    series = {k: v for k, v in series.items() if any(x is not None for x in v)}
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(envs), 3.4))
    width = 0.8 / len(series)
    for k, (name, vals) in enumerate(series.items()):
        xs = np.arange(len(envs)) + (k - (len(series) - 1) / 2) * width
        ax.bar(xs, [np.nan if v is None else v for v in vals], width, label=name)
    ax.set_xticks(np.arange(len(envs)), envs)
    ax.set_ylim(0, 1.25)
    ax.set_ylabel("test top-1")
    ax.set_title("front-end linear heads vs nearest neighbour on raw frames")
    ax.legend(fontsize=7, ncol=len(series), loc="upper center")
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


#: Metadata keys of a front-end bundle (components ``scnn`` and ``cnn``); the runtime reads ``window`` back with
#: ``perception.window.window_from_metadata``.
FRONTEND_META_KEYS = ("window", "num_places", "dataset_fingerprint", "pretrain", "metrics")


def save_frontend_bundle(out: Path | str, scnn: Frontend, cnn: Frontend | None, window: WindowSpec, *,
                         num_places: int, dataset_fingerprint: str, pretrain: PretrainConfig,
                         metrics: dict[str, Any]) -> Path:
    """Write frozen front-ends as a bundle with the window they were trained on (the one front-end metadata
    schema: ``FRONTEND_META_KEYS``)."""
    comps = {SCNN_KIND: scnn, **({CNN_KIND: cnn} if cnn is not None else {})}
    meta = {"window": window.to_dict(), "num_places": int(num_places), "dataset_fingerprint": dataset_fingerprint,
            "pretrain": vars(pretrain), "metrics": metrics}
    return save_bundle(out, comps, meta)


@dataclass
class FrontendFit:
    """What ``fit_frontends`` produced: the frozen front-ends, their bundle, the cached features and the report
    (per-environment test top-1 of each linear head and of the nearest-neighbour baselines)."""

    scnn: Frontend
    cnn: Frontend | None  #: None: an events-only dataset (no colour frames)
    bundle: Path
    features: FeatureSet
    feature_files: dict[str, Path]
    report: dict[str, Any]


def pretrain_frontends(ds: WindowDataset, out: Path | str, *, full_size: bool = False,
                       recipe: PretrainConfig = PretrainConfig(), progress: bool = True
                       ) -> tuple[Frontend, Frontend | None, Path, dict[str, Any]]:
    """Pretrain the SCNN (events) and, unless ``ds`` is events-only, the CNN (RGB(-D)) with linear place heads on
    ``ds``'s training split and freeze them into a bundle at ``out`` with ``ds``'s window (plus
    ``pretrain_report.json``). ``full_size``: the paper's widths instead of ``SMALL``. Returns ``(scnn, cnn, bundle,
    report)``."""
    window = ds.window
    shape: dict[str, Any] = {"input_hw": window.input_hw} if full_size else {**SMALL, "input_hw": window.input_hw}
    scnn, m_ev = pretrain_frontend(ds, SCNN_KIND, FrontendConfig(in_channels=2, **shape), recipe, progress)
    cnn, m_rgb = None, None
    if not ds.events_only:
        cnn, m_rgb = pretrain_frontend(ds, CNN_KIND, FrontendConfig(in_channels=window.rgb_channels, **shape), recipe,
                                       progress)
    report = {"scnn_head": m_ev, "cnn_head": m_rgb, "nearest_neighbour": nearest_neighbour_baseline(ds)}
    bundle = save_frontend_bundle(out, scnn, cnn, window, num_places=ds.num_places,
                                  dataset_fingerprint=ds.manifest["fingerprint"], pretrain=recipe, metrics=report)
    (Path(out) / "pretrain_report.json").write_text(json.dumps(report, indent=1))
    return scnn, cnn, Path(bundle), report


def frozen_frontends(fe: Bundle) -> tuple[Frontend, Frontend | None]:
    """The SCNN and CNN (``None``: events-only) of the loaded front-end bundle ``fe``, as ``cache_features`` runs
    them."""
    return fe.build(SCNN_KIND, BUILDERS), (fe.build(CNN_KIND, BUILDERS) if CNN_KIND in fe.components else None)


def cache_feature_sets(ds: WindowDataset, frontends: Path | str, features_dir: Path | str, *,
                       progress: bool = True) -> tuple[FeatureSet, dict[str, Path]]:
    """The frozen front-ends of bundle ``frontends`` over every frame of ``ds``, as ``features_dir/all.safetensors``
    plus one feature set per environment. The feature sets record the front-end bundle (absolute path and weights
    digest), so that the HSTNN bundles trained on them name the front-ends they need."""
    fe = load_bundle(frontends)
    scnn, cnn = frozen_frontends(fe)
    fs = cache_features(ds, scnn, cnn, progress=progress, meta={
        "frontend_bundle": str(Path(frontends).resolve()), "frontend_sha256": fe.digest})
    features_dir = Path(features_dir)
    files = {"all": save_feature_set(features_dir / "all.safetensors", fs)}
    for k, env in enumerate(fs.env_names):
        files[env] = save_feature_set(features_dir / f"{env}.safetensors", fs.subset(fs.env == k))
    return fs, files


def fit_frontends(ds: WindowDataset, out: Path | str, features_dir: Path | str, *, full_size: bool = False,
                  recipe: PretrainConfig = PretrainConfig(), progress: bool = True) -> FrontendFit:
    """What ``hstnn-frontends`` runs: ``pretrain_frontends`` into the bundle ``out``, then ``cache_feature_sets``
    into ``features_dir``. An events-only dataset gets an SCNN alone (its bundle runs as an events-only model)."""
    scnn, cnn, bundle, report = pretrain_frontends(ds, out, full_size=full_size, recipe=recipe, progress=progress)
    fs, files = cache_feature_sets(ds, bundle, features_dir, progress=progress)
    return FrontendFit(scnn, cnn, bundle, fs, files, report)
