"""Recordings beyond bags as frame sources (frame folders, AEDAT4, raw EVT3, event-only bags), labels from a topic
or a CSV, and the parsers of stamps files, label CSVs and raw headers."""

from __future__ import annotations

import dataclasses
import io
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.bags import BagReader, BagWriter
from hstnn_ros.datasets import DatasetError
from hstnn_ros.datasets.enums import RecordingKind
from hstnn_ros.datasets.labels import Labelling, LabelSpec, labels_in_force, read_label_csv
from hstnn_ros.datasets.recordings import (
    Aedat4Frames,
    FrameFolder,
    RawEvt3Frames,
    build_recordings_dataset,
    open_recording,
    parse_recording_args,
    read_raw_header,
    read_stamps_file,
    recording_kind,
    window_for,
    write_raw_header,
)
from hstnn_ros.datasets.sidecar import read_sidecar, route_bags
from hstnn_ros.datasets.stamps import format_stamp
from hstnn_ros.datasets.synth.config import preset_config
from hstnn_ros.datasets.synth.route import generate_route_set
from hstnn_ros.datasets.topics import Topics, resolve_topics
from hstnn_ros.datasets.windows import BagFrames, load_traversal
from hstnn_ros.enums import Environment
from hstnn_ros.perception.events import ENCODERS, iter_aedat4
from hstnn_ros.perception.window import WindowSpec

HW = (45, 60)
WINDOW = WindowSpec(input_hw=HW)
EVT3_BAG = "bags/evt3_640x480"


@pytest.fixture(scope="module")
def route(tmp_path_factory) -> Path:
    cfg = preset_config("demo")
    cfg = dataclasses.replace(cfg, world=dataclasses.replace(cfg.world, path_length_m=1.5, num_places=3))
    out = tmp_path_factory.mktemp("route")
    generate_route_set(out, cfg, envs=(Environment.ENV1,), traversals=3, seed=5, progress=False)
    return out


def _same_frames(a: list, b: list, shift_ns: int = 0) -> None:
    assert len(a) == len(b) > 3
    for x, y in zip(a, b, strict=True):
        assert x.stamp_ns + shift_ns == y.stamp_ns
        np.testing.assert_array_equal(x.events, y.events)
        if x.rgb is None or y.rgb is None:
            assert x.rgb is None and y.rgb is None
        else:
            np.testing.assert_array_equal(x.rgb, y.rgb)


def _write_packets(bag: Path, packets: list[tuple[int, object]], extra: dict | None = None) -> Path:
    """A bag with one EventPacket topic (``packets``: (log time, message)) and ``extra`` topics."""
    with BagWriter(bag) as w:
        conn = w.add_connection("/events", "event_camera_msgs/msg/EventPacket")
        for t, msg in packets:
            w.write(conn, t, msg)
        for topic, (msgtype, rows) in (extra or {}).items():
            c = w.add_connection(topic, msgtype)
            for t, msg in rows:
                w.write(c, t, msg)
    return bag


def _packet(ts, batch, encoding: str, payload: bytes, *, time_base: int, stamp_ns: int) -> object:
    T = ts.types
    hdr = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9,
                                                                          nanosec=stamp_ns % 10**9), frame_id="dvs")
    return T["event_camera_msgs/msg/EventPacket"](header=hdr, height=batch.height, width=batch.width, seq=0,
                                                  time_base=time_base, encoding=encoding, is_bigendian=False,
                                                  events=np.frombuffer(payload, np.uint8))


# ------------------------------------------------------------------------------------------------ parsers
stamps_ns = st.lists(st.integers(10**9, 2 * 10**18), min_size=1, max_size=30, unique=True).map(sorted)


@given(stamps_ns, st.booleans())
def test_stamps_file_round_trip(stamps: list[int], as_ns: bool) -> None:
    text = "# stamps\n" + "".join(f"{t if as_ns and t >= 10**15 else format_stamp(t)}\n\n" for t in stamps)
    path = Path(f"/tmp/hstnn_stamps_{abs(hash(text))}.txt")
    path.write_text(text)
    try:
        np.testing.assert_array_equal(read_stamps_file(path), np.asarray(stamps, np.int64))
    finally:
        path.unlink()


@given(stamps_ns.filter(lambda s: len(s) >= 2), st.data())
def test_stamps_file_refuses_disorder_and_junk(stamps: list[int], data: st.DataObject) -> None:
    i = data.draw(st.integers(1, len(stamps) - 1))
    bad = [*stamps]
    bad[i] = bad[i - 1]  # repeated stamp
    path = Path(f"/tmp/hstnn_stamps_bad_{abs(hash(tuple(bad)))}.txt")
    try:
        path.write_text("\n".join(format_stamp(t) for t in bad))
        with pytest.raises(DatasetError, match=rf"{path}:{i + 1}: .*not after the previous"):
            read_stamps_file(path)
        path.write_text(f"{format_stamp(stamps[0])} extra\n")
        with pytest.raises(DatasetError, match="more than one value"):
            read_stamps_file(path)
        path.write_text("1.5.3\n")
        with pytest.raises(DatasetError, match="not a timestamp"):
            read_stamps_file(path)
    finally:
        path.unlink(missing_ok=True)


@given(st.lists(st.tuples(st.integers(10**9, 10**18), st.integers(0, 10_000)), min_size=1, max_size=30),
       st.booleans())
def test_label_csv_round_trip(rows: list[tuple[int, int]], header: bool) -> None:
    rows = sorted(rows)
    path = Path(f"/tmp/hstnn_labels_{abs(hash((tuple(rows), header)))}.csv")
    path.write_text(("stamp,place\n" if header else "") + "".join(f"{format_stamp(t)}, {p}  # c\n" for t, p in rows))
    try:
        t, p = read_label_csv(path)
        np.testing.assert_array_equal(t, [r[0] for r in rows])
        np.testing.assert_array_equal(p, [r[1] for r in rows])
    finally:
        path.unlink()


@given(st.sampled_from(["1.0,-1", "1.0,x", "1.0", "1.0,2,3", "nan,1", "2.0,1\n1.0,1"]))
@settings(max_examples=20)
def test_label_csv_refuses_bad_rows_naming_the_line(body: str) -> None:
    path = Path(f"/tmp/hstnn_labels_bad_{abs(hash(body))}.csv")
    path.write_text("stamp,place\n" + body + "\n")
    try:
        with pytest.raises(DatasetError, match=rf"{path}:\d+: "):
            read_label_csv(path)
    finally:
        path.unlink()


def test_labels_hold_until_the_next_and_fill_the_start() -> None:
    lab = labels_in_force(np.array([10, 20, 30]), np.array([0, 1, 2]), np.array([5, 10, 19, 20, 35]), source="x")
    np.testing.assert_array_equal(lab, [0, 0, 0, 1, 2])
    with pytest.raises(DatasetError, match="before the first place label"):
        labels_in_force(np.array([100]), np.array([1]), np.array([5, 6]), source="x")
    with pytest.raises(DatasetError, match="negative place label"):
        labels_in_force(np.array([1]), np.array([-1]), np.array([5]), source="x")


header_fields = st.dictionaries(st.from_regex(r"[a-z_]{1,12}", fullmatch=True).filter(
    lambda k: k not in ("end", "evt", "format", "geometry")), st.from_regex(r"[A-Za-z0-9 .:-]{0,20}", fullmatch=True),
    max_size=5)


@given(header_fields, st.integers(1, 2048), st.integers(1, 2048), st.binary(max_size=64))
def test_raw_header_round_trip(fields: dict[str, str], w: int, h: int, data: bytes) -> None:
    raw = write_raw_header(w, h, fields) + data
    hdr = read_raw_header(io.BytesIO(raw))
    assert (hdr.width, hdr.height) == (w, h)
    assert raw[hdr.data_offset:] == data
    assert {k: v.strip() for k, v in fields.items()} == {k: hdr.fields[k] for k in fields}


@given(st.sampled_from(["% evt 2.0\n% format EVT2;height=480;width=640\n% end\n",
                        "% format EVT3;height=0;width=640\n% end\n", "% evt 3.0\n% end\n",
                        "% format EVT3;height=x;width=640\n% end\n", "no header at all"]))
def test_raw_header_refuses_what_it_cannot_read(head: str) -> None:
    with pytest.raises(DatasetError, match=r"EVT 3\.0|sensor size"):
        read_raw_header(io.BytesIO(head.encode() + b"\x00\x80"), "x.raw")


def test_raw_header_without_end_line_stops_at_data() -> None:
    raw = b"% evt 3.0\n% geometry 640x480\n" + bytes([0x12, 0x80, 0x0A, 0x00])
    hdr = read_raw_header(io.BytesIO(raw))
    assert (hdr.width, hdr.height, hdr.data_offset) == (640, 480, len(raw) - 4)


def test_recording_args_and_kinds(tmp_path: Path) -> None:
    assert parse_recording_args(["env1=a", "b", "env2=c/d=e"]) == [(Path("a"), "env1"), (Path("b"), "env1"),
                                                                   (Path("c/d=e"), "env2")]
    with pytest.raises(DatasetError, match="name its environment first"):
        parse_recording_args(["a"])
    # --off-route: environments optional (bare paths before any ENV= go to the default), the option named in errors
    assert parse_recording_args(["a", "env2=b", "c"], default_env="unnamed", option="--off-route") == [
        (Path("a"), "unnamed"), (Path("b"), "env2"), (Path("c"), "env2")]
    with pytest.raises(DatasetError, match="--off-route item 'env2=': no recording"):
        parse_recording_args(["env2="], default_env="unnamed", option="--off-route")
    (tmp_path / "x.aedat4").write_bytes(b"")
    (tmp_path / "x.raw").write_bytes(b"")
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "stamps.txt").write_text("1.0\n")
    assert [recording_kind(tmp_path / n) for n in ("x.aedat4", "x.raw", "f")] == ["aedat4", "raw", "frames"]
    assert recording_kind(tmp_path / "f") is RecordingKind.FRAMES
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(DatasetError, match="unknown recording file type"):
        recording_kind(tmp_path / "x.txt")
    with pytest.raises(DatasetError, match="no such recording"):
        recording_kind(tmp_path / "missing")


def test_topics_found_by_type_and_ambiguity_refused() -> None:
    types = {"/dvs/events": "event_camera_msgs/msg/EventPacket", "/cam/image_raw": "sensor_msgs/msg/Image",
             "/cam/depth/image_raw": "sensor_msgs/msg/Image", "/odom": "nav_msgs/msg/Odometry",
             "/place_label": "std_msgs/msg/UInt32"}
    t = resolve_topics(types, Topics(label="/place_label"))
    assert t == Topics("/dvs/events", "/cam/image_raw", "/cam/depth/image_raw", "/odom", "/place_label")
    assert resolve_topics(types).label is None
    with pytest.raises(DatasetError, match=r"2 candidate colour topics .*--rgb-topic"):
        resolve_topics({**types, "/cam2/image_raw": "sensor_msgs/msg/Image"})
    with pytest.raises(DatasetError, match="label topic '/odom' is nav_msgs/msg/Odometry"):
        resolve_topics(types, Topics(label="/odom"))


# ------------------------------------------------------------------------------------------ raw EVT3 files
def test_raw_evt3_from_a_real_bag_gives_the_bags_windows(shared_data: Path, tmp_path: Path) -> None:
    """A raw EVT3 file written from a real bag's packets: the same events-only frames as the bag (the bag's events
    are anchored to ROS time, the raw file's to sensor time: one constant shift)."""
    bag = shared_data / EVT3_BAG
    payloads, wh = [], None
    with BagReader(bag) as r:
        for m in r.messages():
            msg = r.deserialize(m)
            payloads.append(np.asarray(msg.events, np.uint8).tobytes())
            wh = (msg.width, msg.height)
    raw = tmp_path / "rec.raw"
    raw.write_bytes(write_raw_header(*wh, {"date": "2024-01-01 00:00:00"}) + b"".join(payloads))
    src = open_recording(raw, window=WINDOW, progress=False)
    assert isinstance(src, RawEvt3Frames) and src.events_only
    a = list(src)
    b = list(BagFrames(bag, window=WINDOW, progress=False))
    assert all(s.rgb is None for s in b), "a bag without a colour topic is events-only"
    _same_frames(a, b, shift_ns=b[0].stamp_ns - a[0].stamp_ns)
    assert b[1].stamp_ns - b[0].stamp_ns == 33_333_333  # the engine's events-only clock
    # chunked decoding carries the stream state across chunks: tiny chunks give the same frames
    small = RawEvt3Frames(raw, window=WINDOW, progress=False)
    small.CHUNK_BYTES = 1000
    _same_frames(list(small), a)


# ---------------------------------------------------------------------------------------------- AEDAT4 files
def test_aedat4_gives_the_windows_of_the_same_events_in_a_bag(shared_data: Path, tmp_path: Path) -> None:
    """The shared DVXplorer AEDAT4 file (events only) and a bag of its events (mono-encoded EventPackets, exact
    times): identical events-only frames."""
    path = shared_data / "aedat4" / "dvxplorer_320x240_person.aedat4"
    a = list(Aedat4Frames(path, window=WINDOW, progress=False))
    ts = BagWriter(tmp_path / "probe").typestore
    packets = []
    for batch in iter_aedat4(path):
        payload, tb = ENCODERS["mono"](batch)
        packets.append((int(batch.t_ns[-1]), _packet(ts, batch, "mono", payload, time_base=tb,
                                                           stamp_ns=int(batch.t_ns[0]))))
    bag = _write_packets(tmp_path / "bag", packets)
    _same_frames(a, list(BagFrames(bag, window=WINDOW, progress=False)))


def test_aedat4_with_frames_uses_them_as_colour_frames(tmp_path: Path) -> None:
    import dv_processing as dv

    path = tmp_path / "davis.aedat4"
    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.DAVISConfig("test", (64, 48)))
    rng = np.random.default_rng(0)
    store = dv.EventStore()
    for t in range(1_000, 400_000, 50):
        store.push_back(t, int(rng.integers(64)), int(rng.integers(48)), bool(rng.integers(2)))
    writer.writeEvents(store)
    for k in range(10):
        writer.writeFrame(dv.Frame(30_000 * (k + 1), np.full((48, 64), 10 * k, np.uint8)))
    del writer
    src = Aedat4Frames(path, window=WINDOW, progress=False)
    frames = list(src)
    assert not src.events_only and [f.stamp_ns for f in frames] == [30_000_000 * (k + 1) for k in range(10)]
    assert frames[3].rgb.shape == (48, 64, 3) and int(frames[3].rgb[0, 0, 0]) == 30
    t_us = np.arange(1_000, 400_000, 50)
    assert frames[3].events.sum() == np.count_nonzero((t_us >= 120_000 - 21_000) & (t_us < 120_000))


# --------------------------------------------------------------------------------------------- frame folders
def _export_folder(bag: Path, out: Path, *, grey: bool = False) -> Path:
    """A bag's frames as a frame folder: per frame, its bins as event-count images at sensor resolution (16-bit;
    colour: red ON, green OFF; grey: the total) and its RGB frame, plus stamps.txt."""
    (out / "events").mkdir(parents=True)
    (out / "rgb").mkdir()
    stamps = []
    for k, s in enumerate(BagFrames(bag, window=WINDOW, sensor_resolution=True, progress=False)):
        for b, ev in enumerate(s.events.astype(np.uint16)):
            img = ev.sum(0) if grey else np.stack([np.zeros_like(ev[0]), ev[0], ev[1]], axis=-1)
            cv2.imwrite(str(out / "events" / f"{k:05d}_{b}.png"), img)
        cv2.imwrite(str(out / "rgb" / f"{k:05d}.png"), cv2.cvtColor(s.rgb, cv2.COLOR_RGB2BGR))
        stamps.append(format_stamp(s.stamp_ns))
    (out / "stamps.txt").write_text("\n".join(stamps) + "\n")
    return out


def test_frame_folder_gives_the_windows_of_its_bag(route: Path, tmp_path: Path) -> None:
    bag = route_bags(route)[0][0]
    folder = _export_folder(bag, tmp_path / "t1")
    src = open_recording(folder, window=WINDOW, progress=False)
    assert isinstance(src, FrameFolder) and src.window_hints() == {"bins_per_rgb": 3, "polarity": True}
    a = load_traversal(src, env="env1", window=WINDOW, labelling=Labelling.TIME, places=3)
    b = load_traversal(BagFrames(bag, window=WINDOW, progress=False), env="env1", window=WINDOW,
                       labelling=Labelling.TIME, places=3)
    np.testing.assert_array_equal(a.stamps_ns, b.stamps_ns)
    np.testing.assert_array_equal(a.events, b.events)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_grey_count_images_merge_polarity_online_too(route: Path, tmp_path: Path) -> None:
    """Grey event images carry no polarity: the window the folder fixes merges ON and OFF (both channels carry the
    total), which is what the engine then feeds the model from real events."""
    bag = route_bags(route)[0][0]
    folder = _export_folder(bag, tmp_path / "grey", grey=True)
    win = window_for([folder], WINDOW)
    assert not win.polarity and win.bins_per_rgb == 3
    with pytest.raises(DatasetError, match="lack polarity"):
        list(FrameFolder(folder, window=WINDOW, progress=False))
    a = load_traversal(FrameFolder(folder, window=win, progress=False), env="e", window=win,
                       labelling=Labelling.TIME, places=3)
    b = load_traversal(BagFrames(bag, window=win, progress=False), env="e", window=win, labelling=Labelling.TIME,
                       places=3)
    np.testing.assert_array_equal(a.events, b.events)
    np.testing.assert_array_equal(a.events[:, :, 0], a.events[:, :, 1])


def test_real_event_count_frames_build_a_dataset(shared_data: Path, tmp_path: Path) -> None:
    """Pre-rendered DAVIS128 event-count PNGs (one per stamp, grey) with a stamps file: one bin per frame, polarity
    merged, labels from a CSV; three traversals build a dataset."""
    src_dir = shared_data / "vpr" / "lens_davis128_indoor" / "reference"
    images = sorted(src_dir.glob("*.png"))[:30]
    recs = []
    for k in range(3):
        d = tmp_path / f"lens_v{k}"
        d.mkdir()
        for i, p in enumerate(images):
            shutil.copy(p, d / f"{i:03d}.png")
        (d / "stamps.txt").write_text("".join(f"{100 + k * 1000 + i * 0.1:.1f}\n" for i in range(len(images))))
        (d / "labels.csv").write_text(f"stamp,place\n{100 + k * 1000:.1f},0\n{100 + k * 1000 + 1.5:.1f},1\n")
        recs.append((d, "indoor"))
    ds = build_recordings_dataset(recs, tmp_path / "ds", window=WindowSpec(input_hw=(40, 40)), label="csv",
                                  progress=False)
    assert ds.window.bins_per_rgb == 1 and not ds.window.polarity and ds.events_only and ds.num_places == 2
    t = ds.traversals[0]
    assert t.events.shape == (30, 1, 2, 40, 40) and t.rgb is None
    np.testing.assert_array_equal(t.labels, [0] * 15 + [1] * 15)
    img = cv2.imread(str(images[0]), cv2.IMREAD_UNCHANGED).astype(np.float64)
    assert t.events[0, 0, 0].astype(np.float64).sum() == img.sum()  # counts are kept, mapped onto the grid


# ----------------------------------------------------------------------------------------- labels from a bag
def _with_label_topic(bag: Path, out: Path, stamps: list[int], places: list[int]) -> Path:
    with BagReader(bag) as r, BagWriter(out) as w:
        conns = {t: w.add_connection(t, str(i)) for t, i in r.topics.items()}
        for m in r.messages():
            w.write(conns[m.topic], m.t_ns, m.data)
        lab = w.add_connection("/place_label", "std_msgs/msg/UInt32")
        for t, p in zip(stamps, places, strict=True):
            w.write(lab, t, w.typestore.types["std_msgs/msg/UInt32"](data=p))
    return out


def test_labels_from_a_topic_and_a_csv_match_the_route(route: Path, tmp_path: Path) -> None:
    bag = route_bags(route)[0][0]
    side = read_sidecar(bag)
    enters = [(t, k) for k, t in enumerate(side.place_enter_ns) if t is not None]
    labelled = _with_label_topic(bag, tmp_path / "labelled", [t for t, _ in enters], [k for _, k in enters])
    shutil.copy(bag / "route.json", labelled / "route.json")
    want = load_traversal(BagFrames(bag, window=WINDOW, progress=False), env="e", window=WINDOW).labels
    src = open_recording(labelled, window=WINDOW, label="topic:/place_label", progress=False)
    got = load_traversal(src, env="e", window=WINDOW, labelling="topic:/place_label")
    np.testing.assert_array_equal(got.labels, want)
    (labelled / "labels.csv").write_text("".join(f"{format_stamp(t)},{k}\n" for t, k in enters))
    by_csv = load_traversal(BagFrames(labelled, window=WINDOW, progress=False), env="e", window=WINDOW,
                            labelling=LabelSpec.of("csv"))
    np.testing.assert_array_equal(by_csv.labels, want)
    with pytest.raises(DatasetError, match="beyond --places 2"):
        load_traversal(open_recording(labelled, window=WINDOW, label="topic:/place_label", progress=False),
                       env="e", window=WINDOW, labelling="topic:/place_label", places=2)
    with pytest.raises(DatasetError, match=r"missing topic.*'/nope'"):
        list(open_recording(labelled, window=WINDOW, label="topic:/nope", progress=False))
