"""Feature-set files round-trip exactly and refuse corrupt or inconsistent content."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from hstnn_ros.datasets import DatasetError, FeatureSet, load_feature_set, save_feature_set


def _fs(n: int = 6) -> FeatureSet:
    rng = np.random.default_rng(0)
    return FeatureSet(
        features=rng.random((n, 9, 5), dtype=np.float32),
        labels=rng.integers(0, 4, n),
        split=np.array([0, 0, 0, 1, 2, 2][:n], dtype=np.int8),
        group=np.arange(n, dtype=np.int32),
        env=np.zeros(n, dtype=np.int8),
        num_classes=4,
        input_spiking=2,
        env_names=("env1",),
        meta={"source": "unit"},
    )


def test_round_trip(tmp_path):
    fs = _fs()
    back = load_feature_set(save_feature_set(tmp_path / "f.safetensors", fs))
    np.testing.assert_array_equal(back.features, fs.features)
    np.testing.assert_array_equal(back.labels, fs.labels)
    assert back.input_spiking == 2 and back.meta == {"source": "unit"}
    assert len(back.split_set(2).labels) == 2


def test_corrupt_file_names_path(tmp_path):
    p = save_feature_set(tmp_path / "f.safetensors", _fs())
    data = bytearray(p.read_bytes())
    data[-5] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=str(p)):
        load_feature_set(p)


def test_truncated_file_refused(tmp_path):
    p = save_feature_set(tmp_path / "f.safetensors", _fs())
    p.write_bytes(p.read_bytes()[:50])
    with pytest.raises(DatasetError, match=r"f\.safetensors"):
        load_feature_set(p)


def test_labels_out_of_range_refused():
    fs = _fs()
    with pytest.raises(DatasetError, match="labels must lie"):
        FeatureSet(fs.features, fs.labels + 10, fs.split, fs.group, fs.env, num_classes=4)


def test_loading_maps_the_features_instead_of_copying_them(tmp_path):
    """Training holds its splits; the loaded set must not hold a second copy (it is memory-mapped)."""
    n = 2000  # 2000 x 9 x 512 float32 = 35 MiB
    big = FeatureSet(features=np.ones((n, 9, 512), np.float32), labels=np.zeros(n, np.int64),
                     split=np.zeros(n, np.int8), group=np.zeros(n, np.int32), env=np.zeros(n, np.int8), num_classes=1)
    p = save_feature_set(tmp_path / "big.safetensors", big)
    tracemalloc.start()
    back = load_feature_set(p)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20, f"loading allocated {peak / 2**20:.1f} MiB"
    np.testing.assert_array_equal(back.features[::97], big.features[::97])


def test_overwriting_a_loaded_set_keeps_its_data(tmp_path):
    """A set still in use (mapped) keeps the data it was loaded with when its file is rewritten."""
    first, second = _fs(), _fs()
    second = FeatureSet(second.features + 1, second.labels, second.split, second.group, second.env, num_classes=4)
    p = save_feature_set(tmp_path / "f.safetensors", first)
    back = load_feature_set(p)
    save_feature_set(p, second)
    np.testing.assert_array_equal(back.features, first.features)
    np.testing.assert_array_equal(load_feature_set(p).features, second.features)
    assert [q.name for q in tmp_path.iterdir()] == ["f.safetensors"]  # no temporary file left
