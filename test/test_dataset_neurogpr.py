"""NeuroGPR layout: the reader on a miniature layout written here, bag -> NeuroGPR export -> dataset identical to the
dataset built from the bag, and refusals that name the offending file."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from hstnn_ros.datasets import DatasetError
from hstnn_ros.datasets.neurogpr import (
    EVENTS_DIR,
    FRAMES_DIR,
    NeuroGPRFrames,
    build_neurogpr_dataset,
    export_neurogpr,
    format_stamp,
    parse_stamp,
)
from hstnn_ros.datasets.synth.config import preset_config
from hstnn_ros.datasets.synth.enums import LightingEnv
from hstnn_ros.datasets.synth.route import generate_route_set
from hstnn_ros.datasets.windows import FramingConfig, Labelling, build_dataset, load_dataset, route_bags

HW = (24, 32)
FRAMING = FramingConfig(input_hw=HW)
T0 = 1_631_175_418_452_437_000  # an epoch stamp in ns: float64 could not hold it exactly


@given(st.integers(0, 2**62))
def test_stamps_round_trip_exactly(t_ns: int) -> None:
    assert parse_stamp(format_stamp(t_ns), "x") == t_ns


def test_stamp_forms() -> None:
    assert parse_stamp("1631175418.452437", "x") == T0
    assert parse_stamp(str(T0), "x") == T0
    with pytest.raises(DatasetError, match=r"frame_7\.png"):
        parse_stamp("frame_7", "dvs_frames/frame_7.png")


def _write_traversal(folder: Path, n: int, *, grey: bool, torch_tensors: bool, seed: int = 0, hw=(26, 34)) -> None:
    """A miniature NeuroGPR traversal: ``n`` frames 40 ms apart, sensor ``hw``, positions along x."""
    rng = np.random.default_rng(seed)
    (folder / FRAMES_DIR).mkdir(parents=True)
    (folder / EVENTS_DIR).mkdir()
    lines = []
    for i in range(n):
        name = format_stamp(T0 + i * 40_000_000)
        img = rng.integers(0, 256, hw if grey else (*hw, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / FRAMES_DIR / f"{name}.png"), img)
        ev = rng.poisson(0.3, (2, 3, *hw)).astype(np.float32)
        if torch_tensors:
            torch.save(torch.from_numpy(ev), folder / EVENTS_DIR / name)
        else:
            np.save(folder / EVENTS_DIR / f"{name}.npy", ev)
        lines.append(f"{name} {0.1 * i * i} 0.0 0.0")  # accelerating: distance bins differ from time bins
    (folder / "position.txt").write_text("\n".join(lines) + "\n")
    (folder / "direction.txt").write_text("".join(f"{ln.split()[0]} 0 0 0 1\n" for ln in lines))


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    root = tmp_path / "neurogpr"
    for k in range(1, 4):
        _write_traversal(root / f"env1_v{k}", 10, grey=k == 1, torch_tensors=k == 2, seed=k)
    return root


def test_reader_reads_the_layout(mini: Path, tmp_path: Path) -> None:
    ds = build_neurogpr_dataset([mini], tmp_path / "ds", framing=FRAMING, places=5, progress=False)
    assert [t.split for t in ds.traversals] == ["train", "val", "test"] and ds.num_places == 5
    for k, t in enumerate(ds.traversals, start=1):
        folder = mini / f"env1_v{k}"
        assert t.events.shape == (10, 3, 2, *HW) and t.rgb.shape == (10, 3, *HW)
        assert t.stamps_ns[0] == T0 and np.all(np.diff(t.stamps_ns) == 40_000_000)
        # equal-time bins, NeuroGPR's formula
        want = np.clip(((t.stamps_ns - T0) / (t.stamps_ns[-1] - T0) * 5).astype(int), 0, 4)
        np.testing.assert_array_equal(t.labels, want)
        # events: polarity-major tensor regrouped per bin, every count kept by the downscale
        first = sorted((folder / EVENTS_DIR).iterdir())[0]
        raw = np.load(first) if first.suffix == ".npy" else torch.load(first, weights_only=True).numpy()
        assert t.events[0].astype(np.float64).sum() == raw.sum()
        np.testing.assert_array_equal(t.events[0, :, 1].astype(np.float64).sum((1, 2)), raw[1].sum((1, 2)))
    grey = ds.traversals[0].rgb
    assert np.array_equal(grey[:, 0], grey[:, 1]) and np.array_equal(grey[:, 1], grey[:, 2])
    assert not np.array_equal(ds.traversals[1].rgb[:, 0], ds.traversals[1].rgb[:, 2])


def test_distance_labels_follow_position_txt(mini: Path) -> None:
    src = NeuroGPRFrames(mini / "env1_v2", framing=FRAMING, progress=False)
    stamps = np.array([s.stamp_ns for s in src], np.int64)
    by_time, _ = src.labels(Labelling.TIME, stamps, 4)
    by_dist, _ = src.labels(Labelling.DISTANCE, stamps, 4)
    assert by_dist[0] == 0 and by_dist[-1] == 3
    assert np.all(by_dist <= by_time) and np.any(by_dist < by_time)  # the robot accelerates


def test_bad_layouts_are_refused_naming_the_file(mini: Path, tmp_path: Path) -> None:
    def build(*folders: Path, **kw):
        for src in folders:
            list(NeuroGPRFrames(src, framing=FRAMING, progress=False))
        return build_neurogpr_dataset(list(folders), tmp_path / f"ds{len(list(tmp_path.iterdir()))}",
                                      framing=FRAMING, places=5, progress=False, **kw)

    v1 = mini / "env1_v1"
    frames = sorted((v1 / FRAMES_DIR).iterdir())
    tensors = sorted((v1 / EVENTS_DIR).iterdir())

    broken = tmp_path / "a" / "env1_v1"
    shutil.copytree(v1, broken)
    (broken / EVENTS_DIR / tensors[3].name).unlink()
    with pytest.raises(DatasetError, match=f"{broken / FRAMES_DIR / frames[3].name}: its event tensor"):
        build(broken)

    broken = tmp_path / "b" / "env1_v1"
    shutil.copytree(v1, broken)
    (broken / FRAMES_DIR / frames[5].name).unlink()
    with pytest.raises(DatasetError, match=f"{broken / EVENTS_DIR / tensors[5].name}: its frame"):
        build(broken)

    broken = tmp_path / "c" / "env1_v1"
    shutil.copytree(v1, broken)
    np.save(broken / EVENTS_DIR / tensors[2].name, np.zeros((2, 3, 5, 5), np.float32))
    with pytest.raises(DatasetError, match=f"{broken / EVENTS_DIR / tensors[2].name}: event tensor of shape"):
        build(broken)
    np.save(broken / EVENTS_DIR / tensors[2].name, np.zeros((3, 2, 26, 34), np.float32))  # bins-major: wrong
    with pytest.raises(DatasetError, match=r"expected \[2, 3, H, W\]"):
        build(broken)

    broken = tmp_path / "d" / "env1_v1"
    shutil.copytree(v1, broken)
    (broken / EVENTS_DIR / tensors[1].name).write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DatasetError, match=f"{broken / EVENTS_DIR / tensors[1].name}: unreadable event tensor"):
        build(broken)
    shutil.copy(v1 / EVENTS_DIR / tensors[1].name, broken / EVENTS_DIR / tensors[1].name)
    (broken / FRAMES_DIR / frames[0].name).write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=f"{broken / FRAMES_DIR / frames[0].name}: unreadable PNG"):
        build(broken)

    broken = tmp_path / "e" / "env1_v1"
    shutil.copytree(v1, broken)
    (broken / "position.txt").unlink()
    src = NeuroGPRFrames(broken, framing=FRAMING, progress=False)
    stamps = np.array([s.stamp_ns for s in src])
    with pytest.raises(DatasetError, match=f"{broken / 'position.txt'}: missing"):
        src.labels(Labelling.DISTANCE, stamps, 5)
    with pytest.raises(DatasetError, match="no route sidecar"):
        src.labels(Labelling.ROUTE, stamps, 5)

    with pytest.raises(DatasetError, match="named <env>_v<k>"):
        build_neurogpr_dataset([v1.rename(tmp_path / "traversal1")], tmp_path / "x", framing=FRAMING)
    with pytest.raises(DatasetError, match="no depth"):
        NeuroGPRFrames(mini / "env1_v2", framing=dataclasses.replace(FRAMING, depth=True))


@pytest.fixture(scope="module")
def route(tmp_path_factory) -> Path:
    cfg = preset_config("demo")
    cfg = dataclasses.replace(cfg, world=dataclasses.replace(cfg.world, path_length_m=1.2, num_places=3),
                              camera=dataclasses.replace(cfg.camera, dvs_width=96, dvs_height=72))
    out = tmp_path_factory.mktemp("route")
    generate_route_set(out, cfg, envs=(LightingEnv.ENV2,), traversals=3, seed=5, progress=False)
    return out


@pytest.mark.parametrize("tensor_format", ["npy", "torch"])
def test_bag_and_its_neurogpr_export_give_identical_datasets(route: Path, tmp_path: Path, tensor_format: str) -> None:
    bags = route_bags(route)
    from_bags = build_dataset(bags, tmp_path / "from_bags", framing=FRAMING, labelling=Labelling.TIME, places=4,
                              progress=False)
    exported = [export_neurogpr(bag, tmp_path / "ngpr" / f"{env}_v{k + 1}", framing=FRAMING,
                                tensor_format=tensor_format, progress=False) for k, (bag, env) in enumerate(bags)]
    from_ngpr = build_neurogpr_dataset([tmp_path / "ngpr"], tmp_path / "from_ngpr", framing=FRAMING, places=4,
                                       progress=False)
    assert len(from_ngpr.traversals) == len(from_bags.traversals) == 3
    for a, b in zip(from_bags.traversals, from_ngpr.traversals, strict=True):
        assert (a.env, a.split) == (b.env, b.split)
        for name in ("events", "rgb", "stamps_ns", "labels"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert a.events.astype(np.float64).sum() > 0
    assert from_ngpr.manifest["fingerprint"] == from_bags.manifest["fingerprint"]
    # positions follow the odometry: distance labels agree too
    d_bag = build_dataset(bags, tmp_path / "d_bag", framing=FRAMING, labelling=Labelling.DISTANCE, places=4,
                          progress=False)
    d_ngpr = build_neurogpr_dataset(exported, tmp_path / "d_ngpr", framing=FRAMING, labelling=Labelling.DISTANCE,
                                    places=4, progress=False)
    for a, b in zip(d_bag.traversals, d_ngpr.traversals, strict=True):
        np.testing.assert_array_equal(a.labels, b.labels)
    assert load_dataset(tmp_path / "from_ngpr").num_places == 4


def test_cli_exports_and_builds(route: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from data_tools.dataset import main

    hw = ["--input-hw", *map(str, HW), "--quiet"]
    assert main(["--route", str(route), "--export-neurogpr", str(tmp_path / "n"), *hw]) == 0
    assert sorted(p.name for p in (tmp_path / "n").iterdir()) == ["env2_v1", "env2_v2", "env2_v3"]
    assert main(["--neurogpr", str(tmp_path / "n"), "--out", str(tmp_path / "ds"), "--places", "6", *hw]) == 0
    out = capsys.readouterr().out
    assert "3 traversals, 6 places" in out
    assert main(["--neurogpr", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), *hw]) == 2
    assert "nowhere: no such NeuroGPR folder" in capsys.readouterr().err
