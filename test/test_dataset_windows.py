"""Window datasets from real (synthetic-route) bags, front-ends, pretraining and the feature cache."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from hstnn_ros import defaults
from hstnn_ros.bags import BagReader, BagWriter
from hstnn_ros.datasets import DatasetError
from hstnn_ros.datasets.frontend_training import (
    PretrainConfig,
    cache_features,
    nearest_neighbour_baseline,
    nearest_neighbour_matrix,
    plot_frontend_report,
    pretrain_frontend,
)
from hstnn_ros.datasets.sidecar import route_bags
from hstnn_ros.datasets.synth.config import preset_config
from hstnn_ros.datasets.synth.route import generate_route_set
from hstnn_ros.datasets.windows import (
    FrameSample,
    Labelling,
    Topics,
    build_dataset,
    load_dataset,
    place_labels,
    read_traversal,
    write_manifest,
    write_traversal,
)
from hstnn_ros.enums import Environment
from hstnn_ros.model import load_bundle, save_bundle
from hstnn_ros.perception.events.framing import events_to_frames, split_interval
from hstnn_ros.perception.events.stream import StreamDecoder
from hstnn_ros.perception.frontends import BUILDERS, RGBCNN, SCNN, SMALL, FrontendConfig, FrontendError
from hstnn_ros.perception.window import WindowSpec

HW = (45, 60)


@pytest.fixture(scope="module")
def route(tmp_path_factory) -> Path:
    cfg = preset_config("demo")
    cfg = dataclasses.replace(cfg, world=dataclasses.replace(cfg.world, path_length_m=1.5, num_places=3))
    out = tmp_path_factory.mktemp("route")
    generate_route_set(out, cfg, envs=(Environment.ENV1,), traversals=3, seed=3, progress=False)
    return out


@pytest.fixture(scope="module")
def dataset(route, tmp_path_factory):
    return build_dataset(route_bags(route), tmp_path_factory.mktemp("ds"), window=WindowSpec(input_hw=HW),
                         progress=False)


def test_frames_equal_engine_framing_of_all_events(route, dataset):
    """Streaming window (events dropped as frames are emitted) equals window the whole decoded stream at once."""
    bag = route_bags(route)[0][0]
    trav = next(t for t in dataset.traversals if t.name == bag.name)
    dec = StreamDecoder()
    with BagReader(bag) as r:
        batches = [dec.decode(m.msgtype, m.data) for m in r.messages(topics={"/dvs/events"})]
    from hstnn_ros.perception.events.batch import EventBatch

    allev = EventBatch.concat([b for b in batches if len(b)])
    for i in (0, len(trav) // 2, len(trav) - 1):
        s = int(trav.stamps_ns[i])
        ref = events_to_frames(allev, split_interval(s - 21_000_000, s, 3), (HW[1], HW[0]))
        np.testing.assert_array_equal(trav.events[i].astype(np.float32), ref)
    assert trav.events.astype(np.float64).sum() > 0


def test_labels_splits_and_manifest(route, dataset):
    assert dataset.num_places == 3
    assert [t.split for t in dataset.traversals] == ["train", "val", "test"]
    for t in dataset.traversals:
        assert np.all(np.diff(t.labels) >= 0), "the robot moves forward: place ids never decrease"
        assert t.labels[0] == 0 and t.labels[-1] == 2
        meta = json.loads((Path(t.source) / "route.json").read_text())
        enters = [x for x in meta["place_enter_ns"] if x is not None]
        # a frame stamped after entering place k carries label >= k
        for k, te in enumerate(enters):
            assert np.all(t.labels[t.stamps_ns >= te] >= k)
    again = load_dataset(dataset.root)
    assert again.manifest["fingerprint"] == dataset.manifest["fingerprint"]


def test_time_labelling_covers_all_places(route):
    trav = read_traversal(route_bags(route)[0][0], env="env1", window=WindowSpec(input_hw=HW),
                          labelling=Labelling.TIME, places=5, progress=False)
    assert set(trav.labels.tolist()) == set(range(5))


def test_missing_topic_lists_what_the_bag_has(route):
    with pytest.raises(DatasetError, match=r"missing topic.*/camera/color/image_raw"):
        read_traversal(route_bags(route)[0][0], env="env1", topics=Topics(events="/nope"), progress=False)


def test_corrupt_chunk_is_refused_with_its_path(dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(dataset.root, root)
    chunk = root / dataset.manifest["traversals"][0]["chunks"][0]["file"]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=str(chunk)):
        load_dataset(root)


def test_too_few_traversals_refused(route, tmp_path):
    with pytest.raises(DatasetError, match="at least 3"):
        build_dataset(route_bags(route)[:2], tmp_path / "x", window=WindowSpec(input_hw=HW), progress=False)


def test_frontend_shapes_ops_and_bundle_round_trip(tmp_path):
    torch.manual_seed(0)
    scnn = SCNN(FrontendConfig(in_channels=2, **{**SMALL, "input_hw": HW})).eval()
    cnn = RGBCNN(FrontendConfig(in_channels=3, **{**SMALL, "input_hw": HW})).eval()
    x = torch.poisson(torch.full((3, 2, *HW), 0.2))
    out = scnn.extract(x)
    assert out.features.shape == (3, 256) and set(out.features.unique().tolist()) <= {0.0, 1.0}
    # a frame without events costs no ACs in conv 1, and more events cost more
    empty = scnn.extract(torch.zeros(1, 2, *HW))
    assert float(empty.acs[0]) < float(out.acs.min())
    assert float(cnn.extract(torch.rand(1, 3, *HW)).acs[0]) == 0.0
    save_bundle(tmp_path / "fe", {"scnn": scnn, "cnn": cnn}, {"input_hw": list(HW)})
    back = load_bundle(tmp_path / "fe")
    torch.testing.assert_close(back.build("scnn", BUILDERS)(x), scnn(x), rtol=0, atol=0)
    with pytest.raises(FrontendError, match="expects frames"):
        scnn.extract(torch.zeros(1, 3, *HW))


def test_pretrain_and_feature_cache_layout(dataset):
    torch.manual_seed(0)
    shape = {**SMALL, "input_hw": HW, "features": 32, "hidden": 32}
    recipe = PretrainConfig(epochs=2, batch=16)
    scnn, m_ev = pretrain_frontend(dataset, "scnn", FrontendConfig(in_channels=2, **shape), recipe, progress=False)
    cnn, m_rgb = pretrain_frontend(dataset, "cnn", FrontendConfig(in_channels=3, **shape), recipe, progress=False)
    assert 0.0 <= m_rgb["per_env"]["env1"]["test_top1"] <= 1.0 and 0.0 <= m_ev["val_top1"] <= 1.0
    fs = cache_features(dataset, scnn, cnn, progress=False)
    n_windows = sum(len(t) - 2 for t in dataset.traversals)
    assert fs.features.shape == (n_windows, 9, 64) and fs.input_spiking == 32
    # window 0 of traversal 0: step 3j+k = event feature of bin k of frame j; RGB at RGB_STEPS only
    t = dataset.traversals[0]
    with torch.no_grad():
        ev = scnn(torch.from_numpy(t.events[:3].reshape(9, 2, *HW).astype(np.float32))).numpy()
        rgb = cnn(torch.from_numpy(t.rgb_input(slice(0, 3)))).numpy()
    np.testing.assert_allclose(fs.features[0, :, :32], ev, atol=0)
    for j, step in enumerate(defaults.RGB_STEPS):
        np.testing.assert_allclose(fs.features[0, step, 32:], rgb[j], rtol=1e-5, atol=1e-6)  # batch-size rounding
    others = [s for s in range(9) if s not in defaults.RGB_STEPS]
    assert not fs.features[:, others, 32:].any()
    assert fs.labels[0] == t.labels[2]
    base = nearest_neighbour_baseline(dataset)
    assert set(base["env1"]) == {"nn_rgb_top1", "nn_events_top1"}
    matrix = nearest_neighbour_matrix(dataset)  # cross-condition: reference env x query env; diagonal = per env
    assert set(matrix) == set(base) and all(matrix[e][e] == base[e] for e in base)
    assert all(set(row) == set(base) and all(set(c) == {"nn_rgb_top1", "nn_events_top1"} for c in row.values())
               for row in matrix.values())
    png = plot_frontend_report({"scnn_head": m_ev, "cnn_head": m_rgb, "nearest_neighbour": base},
                               dataset.root / "report.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_pretrain_restarts_at_a_lower_rate_when_the_first_epoch_learns_nothing(dataset, caplog):
    """A learning rate far too high leaves the first epoch's loss above a uniform guess: training restarts from the
    same weights at a backed-off rate, and the metrics say so; an impossible recipe fails at construction."""
    shape = {**SMALL, "input_hw": HW, "features": 32, "hidden": 32}
    recipe = PretrainConfig(epochs=1, batch=16, lr=1e3, lr_backoff=1e-3, max_restarts=1, stall_steps=1)
    with caplog.at_level("WARNING"):
        _, m = pretrain_frontend(dataset, "cnn", FrontendConfig(in_channels=3, **shape), recipe, progress=False)
    assert m["restarts"] == 1 and m["lr"] == pytest.approx(1.0)
    assert "learned nothing" in caplog.text
    assert len(m["history"]) == 1  # the restarted run's epochs only
    _, m0 = pretrain_frontend(dataset, "cnn", FrontendConfig(in_channels=3, **shape),
                              PretrainConfig(epochs=1, batch=16, lr=1e3, max_restarts=0, stall_steps=1), progress=False)
    assert m0["restarts"] == 0 and m0["lr"] == 1e3  # no restart allowed: the run is kept as it is
    with pytest.raises(DatasetError, match="lr_backoff"):
        PretrainConfig(lr_backoff=1.5)


class _CountingSource:
    """A frame source that records, as each frame is requested, how many chunk files are already on disk."""

    def __init__(self, root: Path, n: int, hw: tuple[int, int]) -> None:
        self.path, self.root, self.n, self.hw = root / "synthetic_t1", root, n, hw
        self.chunks_seen: list[int] = []
        self.rng = np.random.default_rng(0)

    def __iter__(self):
        for i in range(self.n):
            self.chunks_seen.append(len(list(self.root.glob("*_c*.safetensors"))))
            yield FrameSample(10**9 + i * 33_000_000, self.rng.poisson(0.5, (3, 2, *self.hw)).astype(np.float32),
                              self.rng.integers(0, 256, (*self.hw, 3), dtype=np.uint8))

    def labels(self, mode, stamps, places):
        return place_labels(self.path, mode, stamps, np.zeros((0, 3)), places)


def test_traversals_stream_to_disk_one_chunk_at_a_time(tmp_path):
    """Memory is bounded by the chunk size: every full chunk is on disk before the next frame is asked for, and
    what was streamed reads back unchanged (labels, which need the whole traversal, from the labels file)."""
    window = WindowSpec(input_hw=(6, 8))
    src = _CountingSource(tmp_path, 23, (6, 8))
    entry, n = write_traversal(tmp_path, "t", src, window=window, labelling=Labelling.TIME, places=4,
                               chunk_frames=5)
    assert src.chunks_seen == [i // 5 for i in range(23)]
    assert [c["frames"] for c in entry["chunks"]] == [5, 5, 5, 5, 3] and n == 4
    write_manifest(tmp_path, [{**entry, "env": "e", "split": "test"}], window=window, labelling=Labelling.TIME,
                   num_places=n)
    ds = load_dataset(tmp_path)
    replay = _CountingSource(tmp_path / "other", 23, (6, 8))
    want = np.stack([s.events for s in replay]).astype(np.float16)
    np.testing.assert_array_equal(ds.traversals[0].events, want)
    np.testing.assert_array_equal(ds.traversals[0].labels, np.minimum(np.arange(23) * 4 // 22, 3))
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["format_version"] = 1
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"found hstnn_ros\.window_dataset v1\); rebuild the dataset"):
        load_dataset(tmp_path)


def _rewrite_bag(src: Path, dst: Path, *, rgb_shift_ns: int = 0, keep: int | None = None) -> Path:
    """A copy of ``src`` with the RGB header stamps shifted and only the first ``keep`` RGB frames."""
    rgb_topic, n_rgb = "/camera/color/image_raw", 0
    with BagReader(src) as reader, BagWriter(dst) as writer:
        conns = {t: writer.add_connection(t, str(info)) for t, info in reader.topics.items()}
        for raw in reader.messages():
            if raw.topic != rgb_topic:
                writer.write(conns[raw.topic], raw.t_ns, raw.data)
                continue
            n_rgb += 1
            if keep is not None and n_rgb > keep:
                continue
            msg = reader.deserialize(raw)
            t = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec + rgb_shift_ns
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t, 10**9)
            writer.write(conns[raw.topic], raw.t_ns + rgb_shift_ns, msg)
    return dst


def test_bad_bags_are_refused_naming_the_bag(route, tmp_path):
    """Event and image clocks that do not overlap, fewer frames than a window, a half-written bag."""
    bag = route_bags(route)[0][0]
    window = WindowSpec(input_hw=HW)
    shifted = _rewrite_bag(bag, tmp_path / "shifted", rgb_shift_ns=3600 * 10**9)
    with pytest.raises(DatasetError, match=f"{shifted}: event and image time ranges do not overlap"):
        read_traversal(shifted, env="e", window=window, labelling=Labelling.TIME, places=3, progress=False)
    short = _rewrite_bag(bag, tmp_path / "short", keep=defaults.RGB_FRAMES_PER_WINDOW - 1)
    with pytest.raises(DatasetError, match=f"{short}: 2 frames, fewer than one window"):
        read_traversal(short, env="e", window=window, labelling=Labelling.TIME, places=3, progress=False)
    half = Path(shutil.copytree(bag, tmp_path / "half"))
    mcap = next(half.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    with pytest.raises(DatasetError, match=f"{half}: cannot open bag .*damaged .*StreamReader"):
        read_traversal(half, env="e", window=window, progress=False)
