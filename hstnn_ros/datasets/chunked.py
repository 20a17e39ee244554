"""Frames of a traversal kept on disk: memory-mapped safetensors chunks behind one array-like per quantity.

A window dataset stores each traversal as chunk files of 256 frames (``windows.write_traversal``). Loading them by
concatenation held every frame in RAM: the 100-place default route (37,444 frames, float16 event counts at
90 x 120) took about 6 GB to load and twice that once front-end pretraining had concatenated its training split,
and both grow with the route. Here each chunk's tensors are memory-mapped where they lie in the file (the operating
system pages them in when read and may drop them again: page cache, not process memory), and ``ChunkedArray``
presents a traversal's chunks as one read-only array indexed along frames. Reading a batch of frames copies only
those frames.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hstnn_ros.datasets.errors import DatasetError

#: safetensors dtype names -> numpy dtypes (those a window dataset stores, and their neighbours).
_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "U8": np.uint8, "I8": np.int8,
           "I16": np.int16, "U16": np.uint16, "I32": np.int32, "U32": np.uint32, "I64": np.int64,
           "U64": np.uint64, "BOOL": np.bool_}
#: Largest header a chunk may declare (safetensors' own limit is 100 MB; ours hold a few tensors).
_MAX_HEADER = 1 << 20


def memmap_safetensors(path: Path | str, fix: str = "rebuild the dataset") -> dict[str, np.ndarray]:
    """Every tensor of safetensors file ``path`` as a read-only memory map (zero-dimensional and empty tensors as
    small arrays). A header that does not describe the file (truncated, overlapping, unknown dtype) is refused with
    the path and ``fix``."""
    path = Path(path)
    size = path.stat().st_size
    try:
        with path.open("rb") as f:
            head = f.read(8)
            (n,) = struct.unpack("<Q", head) if len(head) == 8 else (-1,)
            if not 2 <= n <= min(_MAX_HEADER, size - 8):
                raise ValueError(f"header length {n} does not fit the file's {size} bytes")
            header = json.loads(f.read(n))
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise DatasetError(f"{path}: not a safetensors file ({exc}); {fix}") from exc
    base = 8 + n
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = np.dtype(_DTYPES[info["dtype"]])
            shape = tuple(int(s) for s in info["shape"])
            start, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}: tensor {name!r} has an unreadable header entry ({exc!r}); {fix}") from exc
        if min(shape, default=0) < 0 or not 0 <= start <= end or base + end > size \
                or end - start != math.prod(shape) * dtype.itemsize:
            raise DatasetError(f"{path}: tensor {name!r} ({info['dtype']} {list(shape)} at bytes {start}-{end}) "
                               f"does not fit the file's {size} bytes; {fix}")
        if end == start or not shape:  # np.memmap refuses empty maps; a scalar is not worth one
            out[name] = np.fromfile(path, dtype=dtype, count=math.prod(shape), offset=base + start).reshape(shape)
        else:
            out[name] = np.memmap(path, dtype=dtype, mode="r", offset=base + start, shape=shape)
    return out


class ChunkedArray:
    """Arrays of equal trailing shape, read as their concatenation along axis 0 without making it.

    Indexing along frames (an int, a slice, an int array or a boolean mask, optionally followed by indices of the
    other axes) returns a new in-memory ``numpy`` array, exactly what the same index gives on the concatenation;
    ``np.asarray`` makes the whole concatenation (for small traversals and tests). ``parts`` are the chunks
    (memory maps, or any arrays)."""

    def __init__(self, parts: Sequence[np.ndarray]) -> None:
        if not parts:
            raise ValueError("ChunkedArray needs at least one part")
        tail, dtype = parts[0].shape[1:], parts[0].dtype
        for p in parts:
            if p.shape[1:] != tail or p.dtype != dtype:
                raise ValueError(f"ChunkedArray parts differ: {p.dtype} {p.shape} vs {dtype} (n, *{tail})")
        self.parts: tuple[np.ndarray, ...] = tuple(parts)
        self.starts = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self.starts[-1]), *self.parts[0].shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.parts[0].dtype

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.concatenate(self.parts)
        return out if dtype is None else out.astype(dtype, copy=False)

    def astype(self, dtype: Any) -> np.ndarray:
        """The whole concatenation as ``dtype`` (in memory, like ``ndarray.astype``)."""
        return np.asarray(self, dtype=dtype)

    def reshape_parts(self, *tail: int) -> ChunkedArray:
        """Each part reshaped to ``(-1, *tail)`` (views): e.g. ``[n, bins, 2, H, W]`` traversal event frames as
        ``[n * bins, 2, H, W]`` event bins."""
        return ChunkedArray([p.reshape(-1, *tail) for p in self.parts])

    def __getitem__(self, index: Any) -> np.ndarray:
        first, rest = (index[0], index[1:]) if isinstance(index, tuple) and index else (index, ())
        n = len(self)
        if isinstance(first, (int, np.integer)):
            i = int(first) + n if first < 0 else int(first)
            if not 0 <= i < n:
                raise IndexError(f"index {int(first)} is out of bounds for axis 0 with size {n}")
            c = int(np.searchsorted(self.starts, i, side="right")) - 1
            return np.array(self.parts[c][(i - int(self.starts[c]), *rest)])
        if isinstance(first, slice):
            start, stop, step = first.indices(n)
            if step == 1:
                return self._range(start, stop)[(slice(None), *rest)]
            idx = np.arange(start, stop, step)
        else:
            idx = np.asarray(first)
            if idx.dtype == np.bool_:
                if idx.shape != (n,):
                    raise IndexError(f"boolean index of shape {idx.shape} does not match axis 0 of size {n}")
                idx = np.flatnonzero(idx)
            elif not np.issubdtype(idx.dtype, np.integer):
                raise IndexError(f"ChunkedArray indices along frames must be integers or booleans, got {idx.dtype}")
        return self._take(idx.astype(np.int64, copy=False))[(slice(None), *rest)]

    def _range(self, start: int, stop: int) -> np.ndarray:
        if stop <= start:
            return np.empty((0, *self.shape[1:]), self.dtype)
        c0 = int(np.searchsorted(self.starts, start, side="right")) - 1
        c1 = int(np.searchsorted(self.starts, stop - 1, side="right")) - 1
        if c0 == c1:
            s = int(self.starts[c0])
            return np.array(self.parts[c0][start - s:stop - s])
        pieces = [self.parts[c][max(start - int(self.starts[c]), 0):stop - int(self.starts[c])]
                  for c in range(c0, c1 + 1)]
        return np.concatenate(pieces)

    def _take(self, idx: np.ndarray) -> np.ndarray:
        n = len(self)
        flat = idx.ravel()
        if flat.size and (flat.min() < -n or flat.max() >= n):
            bad = flat[(flat < -n) | (flat >= n)][0]
            raise IndexError(f"index {int(bad)} is out of bounds for axis 0 with size {n}")
        flat = np.where(flat < 0, flat + n, flat)
        out = np.empty((flat.size, *self.shape[1:]), self.dtype)
        chunk = np.searchsorted(self.starts, flat, side="right") - 1
        for c in np.unique(chunk):
            sel = np.flatnonzero(chunk == c)
            out[sel] = self.parts[c][flat[sel] - self.starts[c]]
        return out.reshape(*idx.shape, *self.shape[1:])


def frames_of(a: np.ndarray | ChunkedArray) -> ChunkedArray:
    """``a`` as a ``ChunkedArray`` (an in-memory array becomes a single part)."""
    return a if isinstance(a, ChunkedArray) else ChunkedArray([a])


def concat_frames(arrays: Sequence[np.ndarray | ChunkedArray]) -> ChunkedArray:
    """Several arrays (in memory or chunked) read as one, along frames, without copying."""
    return ChunkedArray([p for a in arrays for p in frames_of(a).parts])
