"""NeuroGPR layout: the reader on a miniature layout written here, bag -> NeuroGPR export -> dataset identical to the
dataset built from the bag, and refusals that name the offending file."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from decimal import Decimal, localcontext
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.datasets import DatasetError
from hstnn_ros.datasets.neurogpr import (
    EVENTS_DIR,
    FRAMES_DIR,
    NeuroGPRFrames,
    _load_tensor,
    _read_table,
    build_neurogpr_dataset,
    export_neurogpr,
    format_stamp,
    parse_stamp,
)
from hstnn_ros.datasets.sidecar import route_bags
from hstnn_ros.datasets.synth.config import preset_config
from hstnn_ros.datasets.synth.route import generate_route_set
from hstnn_ros.datasets.windows import Labelling, build_dataset, load_dataset
from hstnn_ros.enums import Environment
from hstnn_ros.perception.window import WindowSpec

HW = (24, 32)
FRAMING = WindowSpec(input_hw=HW)
T0 = 1_631_175_418_452_437_000  # an epoch stamp in ns: float64 could not hold it exactly


@given(st.integers(0, 2**62))
def test_stamps_round_trip_exactly(t_ns: int) -> None:
    assert parse_stamp(format_stamp(t_ns), "x") == t_ns


@given(t_ns=st.integers(0, 2**63 - 1), zeros=st.integers(0, 12), point=st.integers(1, 19))
def test_every_decimal_spelling_of_a_stamp_parses_to_the_same_nanoseconds(t_ns: int, zeros: int, point: int) -> None:
    """Trimmed, zero-padded and exponent spellings (numpy.savetxt writes ``1.6e+09``) all give ``t_ns`` exactly."""
    sec, frac = divmod(t_ns, 10**9)
    digits = str(t_ns)
    k = min(point, len(digits))  # "d.ddd" * 10**e == t_ns * 10**-9 when e = len(digits) - k - 9
    spellings = [f"{sec}.{frac:09d}".rstrip("0").rstrip("."), f"{sec}.{frac:09d}" + "0" * zeros,
                 f"{digits[:k]}.{digits[k:]}e{len(digits) - k - 9:+d}"]
    if t_ns >= 10**15:
        spellings.append(digits)  # integer nanoseconds
    for text in spellings:
        assert parse_stamp(text, "x") == t_ns, text


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
       | st.from_regex(r"[0-9]{1,20}(\.[0-9]{0,12})?(e[+-]?[0-9]{1,2})?", fullmatch=True))
def test_any_file_name_parses_exactly_or_is_refused_naming_the_file(text: str) -> None:
    """Never another exception, never a stamp outside int64, never a rounded one."""
    try:
        t = parse_stamp(text, "dvs_frames/NAME.png")
    except DatasetError as exc:
        assert "dvs_frames/NAME.png" in str(exc)
        return
    assert 0 <= t < 2**63
    with localcontext(prec=200):
        assert Decimal(text) == t or Decimal(text).scaleb(9) == t


def test_stamp_forms() -> None:
    assert parse_stamp("1631175418.452437", "x") == T0
    assert parse_stamp(str(T0), "x") == T0
    assert parse_stamp("1.631175418452437e+09", "x") == T0
    with pytest.raises(DatasetError, match=r"frame_7\.png"):
        parse_stamp("frame_7", "dvs_frames/frame_7.png")
    for bad in ("NaN", "inf", "-1.5", "1_000", "1631175418.4524370001", "1e999", "12\n", "\u0661\u0662"):
        with pytest.raises(DatasetError, match="where"):
            parse_stamp(bad, "where")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**62), st.floats(allow_nan=False, allow_infinity=False),
                          st.floats(allow_nan=False, allow_infinity=False)), max_size=8))
def test_position_table_round_trips(rows: list[tuple[int, float, float]]) -> None:
    rows = sorted(rows)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "position.txt"
        path.write_text("".join(f"{format_stamp(t)} {x!r} {y!r} 0.0\n" for t, x, y in rows))
        table = _read_table(path, 3)
    assert table.shape == (len(rows), 3)
    np.testing.assert_array_equal(table, np.asarray(rows, np.float64).reshape(-1, 3))


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789. -e\nnaif\t"), max_size=80))
def test_any_position_text_reads_or_is_refused_naming_the_file(text: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "position.txt"
        path.write_text(text)
        try:
            table = _read_table(path, 3)
        except DatasetError as exc:
            assert str(path) in str(exc)
            return
    assert table.shape[1] == 3 and np.isfinite(table).all() and np.all(np.diff(table[:, 0]) >= 0)


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=300), suffix=st.sampled_from(["", ".npy"]))
def test_any_bytes_as_an_event_tensor_load_or_are_refused_naming_the_file(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"1.5{suffix}"
        path.write_bytes(data)
        try:
            _load_tensor(path)
        except DatasetError as exc:
            assert str(path) in str(exc)


class _Evil:
    def __reduce__(self):
        return (Path.touch, (_EVIL_MARKER,))


_EVIL_MARKER = Path(tempfile.gettempdir()) / "hstnn_neurogpr_pickle_ran"


def test_pickles_in_event_tensors_are_never_executed(tmp_path: Path) -> None:
    """torch.load(weights_only=True) and np.load(allow_pickle=False): a tensor file carrying code is refused."""
    _EVIL_MARKER.unlink(missing_ok=True)
    torch.save({"x": _Evil()}, tmp_path / "1.5")
    np.save(tmp_path / "2.5.npy", np.array([_Evil()], dtype=object), allow_pickle=True)
    for name in ("1.5", "2.5.npy"):
        with pytest.raises(DatasetError, match=f"{tmp_path / name}: unreadable event tensor"):
            _load_tensor(tmp_path / name)
    assert not _EVIL_MARKER.exists()
    torch.save({"events": torch.zeros(2, 3, 4, 4)}, tmp_path / "3.5")
    with pytest.raises(DatasetError, match="holds a dict, not a tensor"):
        _load_tensor(tmp_path / "3.5")


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
    ds = build_neurogpr_dataset([mini], tmp_path / "ds", window=FRAMING, places=5, progress=False)
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
    src = NeuroGPRFrames(mini / "env1_v2", window=FRAMING, progress=False)
    stamps = np.array([s.stamp_ns for s in src], np.int64)
    by_time, _ = src.labels(Labelling.TIME, stamps, 4)
    by_dist, _ = src.labels(Labelling.DISTANCE, stamps, 4)
    assert by_dist[0] == 0 and by_dist[-1] == 3
    assert np.all(by_dist <= by_time) and np.any(by_dist < by_time)  # the robot accelerates


def test_bad_layouts_are_refused_naming_the_file(mini: Path, tmp_path: Path) -> None:
    def build(*folders: Path, **kw):
        for src in folders:
            list(NeuroGPRFrames(src, window=FRAMING, progress=False))
        return build_neurogpr_dataset(list(folders), tmp_path / f"ds{len(list(tmp_path.iterdir()))}",
                                      window=FRAMING, places=5, progress=False, **kw)

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
    src = NeuroGPRFrames(broken, window=FRAMING, progress=False)
    stamps = np.array([s.stamp_ns for s in src])
    with pytest.raises(DatasetError, match=f"{broken / 'position.txt'}: missing"):
        src.labels(Labelling.DISTANCE, stamps, 5)
    with pytest.raises(DatasetError, match="no route sidecar"):
        src.labels(Labelling.ROUTE, stamps, 5)

    with pytest.raises(DatasetError, match="named <env>_v<k>"):
        build_neurogpr_dataset([v1.rename(tmp_path / "traversal1")], tmp_path / "x", window=FRAMING)
    with pytest.raises(DatasetError, match="no depth"):
        NeuroGPRFrames(mini / "env1_v2", window=dataclasses.replace(FRAMING, depth=True))


def test_ambiguous_or_stray_files_are_refused_and_junk_skipped(mini: Path, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    v1 = mini / "env1_v1"
    frames = sorted((v1 / FRAMES_DIR).iterdir())
    tensors = sorted((v1 / EVENTS_DIR).iterdir())

    def copy(tag: str) -> Path:
        return Path(shutil.copytree(v1, tmp_path / tag / "env1_v1"))

    # hidden files and non-PNG files among the frames are not data: skipped (the latter with a warning)
    broken = copy("junk")
    (broken / FRAMES_DIR / ".DS_Store").write_bytes(b"x")
    (broken / EVENTS_DIR / ".DS_Store").write_bytes(b"x")
    (broken / FRAMES_DIR / "notes.txt").write_text("x")
    assert len(list(NeuroGPRFrames(broken, window=FRAMING, progress=False))) == len(frames)
    assert "notes.txt: not a .png file; skipped" in caplog.text

    broken = copy("dup")  # 1.5.png and 1.50.png: one stamp, two frames
    stem = frames[4].name.removesuffix(".png")
    shutil.copy(frames[4], broken / FRAMES_DIR / f"{stem}000.png")
    with pytest.raises(DatasetError, match="same timestamp as"):
        NeuroGPRFrames(broken, window=FRAMING, progress=False)

    broken = copy("stray")  # a tensor may have no extension, so a stray file cannot be told from one: refused
    (broken / EVENTS_DIR / "README").write_text("x")
    with pytest.raises(DatasetError, match=f"{broken / EVENTS_DIR / 'README'}: 'README' is not a timestamp"):
        NeuroGPRFrames(broken, window=FRAMING, progress=False)

    broken = copy("neg")
    bad = np.load(tensors[6])
    bad[0, 0, 0, 0] = -1
    np.save(broken / EVENTS_DIR / tensors[6].name, bad)
    with pytest.raises(DatasetError, match=f"{broken / EVENTS_DIR / tensors[6].name}: .*negative or non-finite"):
        list(NeuroGPRFrames(broken, window=FRAMING, progress=False))

    broken = copy("pos")
    src = NeuroGPRFrames(broken, window=FRAMING, progress=False)
    stamps = np.array([s.stamp_ns for s in src])
    lines = (broken / "position.txt").read_text().splitlines()
    (broken / "position.txt").write_text("\n".join(reversed(lines)))
    with pytest.raises(DatasetError, match=f"{broken / 'position.txt'}: time goes backwards after row 1"):
        src.labels(Labelling.DISTANCE, stamps, 5)
    (broken / "position.txt").write_text(f"{format_stamp(T0 - 10**10)} 0 0\n{format_stamp(T0 - 10**9)} 1 0\n")
    with pytest.raises(DatasetError, match="do not overlap in time"):
        src.labels(Labelling.DISTANCE, stamps, 5)
    (broken / "position.txt").write_text(f"{format_stamp(T0)} 0 0\n{format_stamp(T0)} nan 0\n")
    with pytest.raises(DatasetError, match=f"{broken / 'position.txt'}:2: non-finite"):
        src.labels(Labelling.DISTANCE, stamps, 5)
    (broken / "position.txt").write_text(f"{format_stamp(T0)} 0\n")
    with pytest.raises(DatasetError, match=f"{broken / 'position.txt'}:1: 2 columns, need at least 3"):
        src.labels(Labelling.DISTANCE, stamps, 5)


@pytest.fixture(scope="module")
def route(tmp_path_factory) -> Path:
    cfg = preset_config("demo")
    cfg = dataclasses.replace(cfg, world=dataclasses.replace(cfg.world, path_length_m=1.2, num_places=3),
                              camera=dataclasses.replace(cfg.camera, dvs_width=96, dvs_height=72))
    out = tmp_path_factory.mktemp("route")
    generate_route_set(out, cfg, envs=(Environment.ENV2,), traversals=3, seed=5, progress=False)
    return out


@pytest.mark.parametrize("tensor_format", ["npy", "torch"])
def test_bag_and_its_neurogpr_export_give_identical_datasets(route: Path, tmp_path: Path, tensor_format: str) -> None:
    bags = route_bags(route)
    from_bags = build_dataset(bags, tmp_path / "from_bags", window=FRAMING, labelling=Labelling.TIME, places=4,
                              progress=False)
    exported = [export_neurogpr(bag, tmp_path / "ngpr" / f"{env}_v{k + 1}", window=FRAMING,
                                tensor_format=tensor_format, progress=False) for k, (bag, env) in enumerate(bags)]
    from_ngpr = build_neurogpr_dataset([tmp_path / "ngpr"], tmp_path / "from_ngpr", window=FRAMING, places=4,
                                       progress=False)
    assert len(from_ngpr.traversals) == len(from_bags.traversals) == 3
    for a, b in zip(from_bags.traversals, from_ngpr.traversals, strict=True):
        assert (a.env, a.split) == (b.env, b.split)
        for name in ("events", "rgb", "stamps_ns", "labels"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert a.events.astype(np.float64).sum() > 0
    assert from_ngpr.manifest["fingerprint"] == from_bags.manifest["fingerprint"]
    # positions follow the odometry: distance labels agree too
    d_bag = build_dataset(bags, tmp_path / "d_bag", window=FRAMING, labelling=Labelling.DISTANCE, places=4,
                          progress=False)
    d_ngpr = build_neurogpr_dataset(exported, tmp_path / "d_ngpr", window=FRAMING, labelling=Labelling.DISTANCE,
                                    places=4, progress=False)
    for a, b in zip(d_bag.traversals, d_ngpr.traversals, strict=True):
        np.testing.assert_array_equal(a.labels, b.labels)
    assert load_dataset(tmp_path / "from_ngpr").num_places == 4


def test_cli_bag_dataset_equals_dataset_of_its_neurogpr_export(route: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The key evidence, through the command line: `--route R --label time --places N` and `--route R
    --export-neurogpr D` then `--neurogpr D --places N` give the same dataset, array for array."""
    from hstnn_ros.data_tools.dataset import main

    hw = ["--input-hw", *map(str, HW), "--quiet"]
    assert main(["--route", str(route), "--out", str(tmp_path / "bag_ds"), "--label", "time", "--places", "6",
                 *hw]) == 0
    assert main(["--route", str(route), "--export-neurogpr", str(tmp_path / "n"), "--tensor-format", "torch",
                 *hw]) == 0
    assert sorted(p.name for p in (tmp_path / "n").iterdir()) == ["env2_v1", "env2_v2", "env2_v3"]
    assert main(["--neurogpr", str(tmp_path / "n"), "--out", str(tmp_path / "ds"), "--places", "6", *hw]) == 0
    out = capsys.readouterr().out
    assert "3 traversals, 6 places" in out
    a, b = load_dataset(tmp_path / "bag_ds"), load_dataset(tmp_path / "ds")
    for x, y in zip(a.traversals, b.traversals, strict=True):
        assert (x.env, x.split) == (y.env, y.split)
        for name in ("events", "rgb", "stamps_ns", "labels"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name)
    assert set(np.concatenate([t.labels for t in b.traversals]).tolist()) == set(range(6))
    assert a.manifest["fingerprint"] == b.manifest["fingerprint"]

    # refusals: a second export over the first, a folder that does not exist
    assert main(["--route", str(route), "--export-neurogpr", str(tmp_path / "n"), *hw]) == 2
    assert f"{tmp_path / 'n' / 'env2_v1'}: not empty" in capsys.readouterr().err
    assert main(["--neurogpr", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), *hw]) == 2
    assert "nowhere: no such NeuroGPR folder" in capsys.readouterr().err
