"""Feature sets: the ``[N, T, F]`` tensors (plus labels and splits) that the HSTNN trains and evaluates on.

The contract between the front-end feature cache (producer) and ``hstnn-train`` (consumer). Stored as one
safetensors file (arrays) with a JSON header in the safetensors metadata; never pickled. A loaded set's features are
memory-mapped from its file (``datasets.chunked``): the windows a user selects are copied when selected (training's
splits), so loading and splitting hold them once, not twice. Files are replaced atomically, so a set still mapped
keeps reading the file it was loaded from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from hstnn_ros.datasets.chunked import memmap_safetensors
from hstnn_ros.datasets.errors import DatasetError

FORMAT = "hstnn_ros.feature_set"
FORMAT_VERSION = 1

#: Split codes stored in ``FeatureSet.split``.
SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST = 0, 1, 2
SPLIT_NAMES = {SPLIT_TRAIN: "train", SPLIT_VAL: "val", SPLIT_TEST: "test"}


@dataclass(frozen=True)
class FeatureSet:
    """Windows of per-step features with place labels.

    Attributes:
        features: ``[N, T, F]`` float32. The first ``input_spiking`` features of every step are binary spikes
            (counted as ACs), the rest are real-valued (counted as MACs).
        labels: ``[N]`` int64 place ids in ``0 .. num_classes - 1``.
        split: ``[N]`` int8, one of ``SPLIT_TRAIN``, ``SPLIT_VAL``, ``SPLIT_TEST``.
        group: ``[N]`` int32 traversal id (splits are made by traversal, never by window).
        env: ``[N]`` int8 lighting environment index into ``env_names``.
        num_classes: number of places.
        input_spiking: how many leading features per step are spikes.
        env_names: names of the environments (``env1``...).
        meta: free JSON-serialisable provenance (source dataset fingerprint, front-end bundle, ...).
    """

    features: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    group: np.ndarray
    env: np.ndarray
    num_classes: int
    input_spiking: int = 0
    env_names: tuple[str, ...] = ("env",)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        f = self.features
        if f.ndim != 3:
            raise DatasetError(f"features must be [N, T, F], got shape {tuple(f.shape)}")
        n = f.shape[0]
        for name in ("labels", "split", "group", "env"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise DatasetError(f"{name} must have shape ({n},) to match features, got {tuple(arr.shape)}")
        if n and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise DatasetError(
                f"labels must lie in 0..{self.num_classes - 1}, found {self.labels.min()}..{self.labels.max()}"
            )
        if not 0 <= self.input_spiking <= f.shape[2]:
            raise DatasetError(f"input_spiking={self.input_spiking} must lie in 0..{f.shape[2]} (feature size)")
        if n and self.env.max() >= len(self.env_names):
            raise DatasetError(f"env index {self.env.max()} has no name in env_names={self.env_names}")

    @property
    def num_steps(self) -> int:
        return int(self.features.shape[1])

    @property
    def feature_size(self) -> int:
        return int(self.features.shape[2])

    def subset(self, mask: np.ndarray) -> FeatureSet:
        """The windows selected by a boolean mask or index array, with the same metadata."""
        return FeatureSet(
            features=self.features[mask],
            labels=self.labels[mask],
            split=self.split[mask],
            group=self.group[mask],
            env=self.env[mask],
            num_classes=self.num_classes,
            input_spiking=self.input_spiking,
            env_names=self.env_names,
            meta=dict(self.meta),
        )

    def without_rgb(self) -> FeatureSet:
        """The windows with the RGB block of every step zeroed (features after the leading ``input_spiking`` SCNN
        block): what an events-only model sees at run time (the engine feeds zeros where RGB features would be)."""
        feats = self.features.copy()
        feats[..., self.input_spiking:] = 0.0
        return dataclasses.replace(self, features=feats, meta={**self.meta, "events_only": True})

    def split_set(self, code: int) -> FeatureSet:
        """Windows of one split (``SPLIT_TRAIN``, ``SPLIT_VAL`` or ``SPLIT_TEST``)."""
        return self.subset(self.split == code)

    def fingerprint(self) -> str:
        """SHA-256 over the arrays: identifies the exact data a model was trained on."""
        h = hashlib.sha256()
        for arr in (self.features, self.labels, self.split, self.group, self.env):
            h.update(np.ascontiguousarray(arr).data)  # the bytes, without a copy of a contiguous (mapped) array
        return h.hexdigest()


def save_feature_set(path: Path | str, fs: FeatureSet) -> Path:
    """Write ``fs`` to ``path`` (``.safetensors``) and return the path. The file is written beside it and then
    renamed over it: a feature set loaded (memory-mapped) from the old file keeps its data."""
    path = Path(path)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "num_classes": fs.num_classes,
        "input_spiking": fs.input_spiking,
        "env_names": list(fs.env_names),
        "fingerprint": fs.fingerprint(),
        "meta": fs.meta,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(
            {
                "features": np.ascontiguousarray(fs.features, dtype=np.float32),
                "labels": np.ascontiguousarray(fs.labels, dtype=np.int64),
                "split": np.ascontiguousarray(fs.split, dtype=np.int8),
                "group": np.ascontiguousarray(fs.group, dtype=np.int32),
                "env": np.ascontiguousarray(fs.env, dtype=np.int8),
            },
            str(tmp),
            metadata={"hstnn_ros": json.dumps(header)},
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # a failed write leaves nothing behind
    return path


def load_feature_set(path: Path | str) -> FeatureSet:
    """Read a feature set written by :func:`save_feature_set`, checking format and fingerprint. Its features are a
    read-only memory map of the file (index them to copy windows into memory)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such feature set file (build one with `hstnn-frontends cache`)")
    try:
        with safe_open(str(path), framework="numpy") as fh:
            header_txt = (fh.metadata() or {}).get("hstnn_ros")
    except (SafetensorError, OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable safetensors feature set ({exc})") from exc
    if header_txt is None:
        raise DatasetError(f"{path}: safetensors file without hstnn_ros metadata; not a feature set")
    header = json.loads(header_txt)
    if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
        raise DatasetError(
            f"{path}: format {header.get('format')} v{header.get('format_version')}, "
            f"expected {FORMAT} v{FORMAT_VERSION}"
        )
    arrays = memmap_safetensors(path, fix="rebuild the feature cache (`hstnn-frontends cache`)")
    missing = {"features", "labels", "split", "group", "env"} - set(arrays)
    if missing:
        raise DatasetError(f"{path}: missing arrays {sorted(missing)}")
    fs = FeatureSet(
        features=np.asarray(arrays["features"]),  # mapped: read when used (page cache, not process memory)
        labels=np.array(arrays["labels"]),
        split=np.array(arrays["split"]),
        group=np.array(arrays["group"]),
        env=np.array(arrays["env"]),
        num_classes=int(header["num_classes"]),
        input_spiking=int(header["input_spiking"]),
        env_names=tuple(header["env_names"]),
        meta=header.get("meta", {}),
    )
    if fs.fingerprint() != header["fingerprint"]:
        raise DatasetError(f"{path}: fingerprint mismatch, the file is corrupt or was modified")
    return fs
