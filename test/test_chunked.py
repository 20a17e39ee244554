"""Memory-mapped dataset chunks read as one array (``hstnn_ros.datasets.chunked``)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file, save_file

from hstnn_ros.datasets.chunked import ChunkedArray, concat_frames, memmap_safetensors
from hstnn_ros.datasets.errors import DatasetError


@st.composite
def chunked_and_index(draw: st.DrawFn) -> tuple[list[np.ndarray], object]:
    sizes = draw(st.lists(st.integers(0, 7), min_size=1, max_size=5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    parts = [rng.integers(0, 100, (n, 2, 3)).astype(np.float16) for n in sizes]
    n = sum(sizes)
    kind = draw(st.sampled_from(["int", "slice", "array", "mask", "tuple"]))
    if kind == "int" and n:
        index: object = draw(st.integers(-n, n - 1))
    elif kind == "slice":
        index = slice(draw(st.none() | st.integers(-n - 2, n + 2)), draw(st.none() | st.integers(-n - 2, n + 2)),
                      draw(st.none() | st.integers(-3, 3).filter(bool)))
    elif kind == "mask":
        index = np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    elif kind == "tuple" and n:
        index = (np.asarray(draw(st.lists(st.integers(-n, n - 1), max_size=6)), np.int64), 1,
                 slice(draw(st.integers(0, 2)), None))
    else:
        index = np.asarray(draw(st.lists(st.integers(-n, n - 1), max_size=9)) if n else [], np.int64)
    return parts, index


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunked_and_index())
def test_indexing_equals_the_concatenation(case: tuple[list[np.ndarray], object]) -> None:
    parts, index = case
    whole = np.concatenate(parts)
    arr = ChunkedArray(parts)
    assert arr.shape == whole.shape and len(arr) == len(whole) and arr.dtype == whole.dtype
    np.testing.assert_array_equal(arr[index], whole[index])
    np.testing.assert_array_equal(np.asarray(arr), whole)


def test_out_of_range_and_non_integer_indices_are_refused() -> None:
    arr = ChunkedArray([np.zeros((3, 2)), np.ones((2, 2))])
    for bad in (5, -6, np.array([0, 5]), np.array([-6])):
        with pytest.raises(IndexError):
            arr[bad]
    with pytest.raises(IndexError):
        arr[np.array([0.5])]
    with pytest.raises(ValueError, match="differ"):
        ChunkedArray([np.zeros((3, 2)), np.zeros((2, 3))])


def test_reshape_parts_and_concat_keep_frame_order() -> None:
    a = np.arange(4 * 3 * 2).reshape(4, 3, 2)
    b = np.arange(100, 100 + 2 * 3 * 2).reshape(2, 3, 2)
    bins = concat_frames([ChunkedArray([a[:1], a[1:]]), b]).reshape_parts(2)
    np.testing.assert_array_equal(np.asarray(bins), np.concatenate([a, b]).reshape(-1, 2))


def test_memmap_reads_what_safetensors_wrote(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {"events": rng.random((5, 3, 2, 4, 6)).astype(np.float16),
              "rgb": rng.integers(0, 255, (5, 3, 4, 6), dtype=np.uint8),
              "stamps_ns": np.arange(5, dtype=np.int64), "empty": np.zeros((0, 3), np.float32)}
    path = tmp_path / "c.safetensors"
    save_file(arrays, str(path))
    got, ref = memmap_safetensors(path), load_file(str(path))
    assert got.keys() == ref.keys()
    for k in ref:
        assert got[k].dtype == ref[k].dtype
        np.testing.assert_array_equal(got[k], ref[k])
    assert isinstance(got["events"], np.memmap) and not got["events"].flags.writeable


def test_a_broken_chunk_is_refused_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    save_file({"events": np.zeros((4, 8), np.float16)}, str(path))
    data = path.read_bytes()
    (path.parent / "trunc.safetensors").write_bytes(data[:-4])
    (path.parent / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    header = json.dumps({"events": {"dtype": "F16", "shape": [4, 9], "data_offsets": [0, 64]}}).encode()
    (path.parent / "lies.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + bytes(64))
    for name in ("trunc", "junk", "lies"):
        bad = path.parent / f"{name}.safetensors"
        with pytest.raises(DatasetError, match=str(bad)):
            memmap_safetensors(bad)
