"""Training data: the train/val/test splits of a :class:`~hstnn_ros.datasets.features.FeatureSet` as tensors,
checked before training starts, and a seeded shuffling batch iterator (no per-sample Python objects)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from hstnn_ros.datasets.features import SPLIT_NAMES, SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL, FeatureSet
from hstnn_ros.learning.errors import LearningError


@dataclass(frozen=True)
class Split:
    """One split: ``x[N, T, F]`` float32 and ``y[N]`` int64 tensors."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class TrainData:
    """The three splits plus what the model must match."""

    train: Split
    val: Split
    test: Split
    num_classes: int
    input_spiking: int
    fingerprint: str

    @property
    def num_steps(self) -> int:
        return int(self.train.x.shape[1])

    @property
    def feature_size(self) -> int:
        return int(self.train.x.shape[2])


def prepare_data(fs: FeatureSet, *, name: str = "feature set", input_size: int | None = None,
                 num_classes: int | None = None) -> TrainData:
    """Split ``fs`` and refuse what cannot be trained on, naming the input and the fix.

    Refused: an empty train, val or test split; labels outside ``0..num_classes-1``; a feature size or class count
    different from the model's (``input_size``/``num_classes`` when given, e.g. from an existing bundle); NaN/inf.
    """
    classes = fs.num_classes if num_classes is None else num_classes
    if fs.labels.size and (fs.labels.min() < 0 or fs.labels.max() >= classes):
        raise LearningError(
            f"{name}: label ids {int(fs.labels.min())}..{int(fs.labels.max())} do not fit the model's {classes} "
            f"classes; relabel places to 0..{classes - 1} or build the model for more places"
        )
    if input_size is not None and fs.feature_size != input_size:
        raise LearningError(
            f"{name}: feature size {fs.feature_size} does not match the model input size {input_size}; "
            f"use features from the same front-ends or set the model's input_size to {fs.feature_size}"
        )
    codes = {SPLIT_TRAIN: None, SPLIT_VAL: None, SPLIT_TEST: None}
    for code in codes:
        n = int(np.count_nonzero(fs.split == code))
        if n == 0:
            raise LearningError(
                f"{name}: the {SPLIT_NAMES[code]} split is empty; assign some traversals to {SPLIT_NAMES[code]} "
                f"(split code {code}) when building the feature set (validation picks checkpoints, test reports)"
            )
    block = 4096  # windows per finiteness check: no mask the size of the (memory-mapped) features
    if not all(np.isfinite(fs.features[i:i + block]).all() for i in range(0, len(fs.labels), block)):
        raise LearningError(f"{name}: features contain NaN or inf; rebuild the feature cache")

    def make(code: int) -> Split:
        m = fs.split == code
        return Split(torch.from_numpy(np.ascontiguousarray(fs.features[m], dtype=np.float32)),
                     torch.from_numpy(np.ascontiguousarray(fs.labels[m], dtype=np.int64)))

    return TrainData(train=make(SPLIT_TRAIN), val=make(SPLIT_VAL), test=make(SPLIT_TEST), num_classes=classes,
                     input_spiking=fs.input_spiking, fingerprint=fs.fingerprint())


def iter_batches(split: Split, batch_size: int, *, generator: torch.Generator | None = None,
                 shuffle: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` mini-batches; shuffled by ``generator`` (reproducible) unless ``shuffle`` is false."""
    n = len(split)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for i in range(0, n, batch_size):
        idx = order[i:i + batch_size]
        yield split.x[idx], split.y[idx]
