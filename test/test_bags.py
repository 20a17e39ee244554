"""hstnn_ros.bags on the real recordings: storage quirks, streaming order, writer round trips, corrupt bags."""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hstnn_ros.bags import BagError, BagReader, BagWriter, Storage, typestore

BAGS = ["event_array_legacy_640x480", "evt3_1280x720_trigger", "evt3_640x480", "libcaer_640x480_rollover",
        "libcaer_cmp_davis346_mcap"]


def test_typestore_has_every_type_the_package_uses() -> None:
    types = typestore().types
    for name in ("event_camera_msgs/msg/EventPacket", "event_array_msgs/msg/EventArray", "dvs_msgs/msg/EventArray",
                 "dv_ros2_msgs/msg/EventArray", "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage",
                 "nav_msgs/msg/Odometry", "vision_msgs/msg/Classification", "vision_msgs/msg/ObjectHypothesis",
                 "diagnostic_msgs/msg/DiagnosticArray", "std_msgs/msg/UInt32"):
        assert name in types, name


@pytest.mark.parametrize("name", BAGS)
def test_real_bag_streams_in_time_order_with_storage_types(shared_data: Path, name: str) -> None:
    with BagReader(shared_data / "bags" / name) as r:
        (topic, info), = r.topics.items()
        n = 0
        last = -1
        for m in r.messages():
            assert m.t_ns >= last
            last = m.t_ns
            n += 1
        assert n == r.message_counts[topic] == info.count
        msg = r.deserialize(m)
    # the legacy bag's metadata says EventPacket but the database holds event_array_msgs/EventArray
    expected = "event_array_msgs/msg/EventArray" if "legacy" in name else "event_camera_msgs/msg/EventPacket"
    assert info == expected and info.msgtype == expected
    assert msg.width > 0 and len(msg.events) > 0


def test_mcap_with_empty_storage_identifier_opens(shared_data: Path) -> None:
    with BagReader(shared_data / "bags" / "libcaer_cmp_davis346_mcap") as r:
        assert r.storage is Storage.MCAP
        assert r.message_counts == {"/event_camera/events": 100}


def test_missing_topic_names_bag_and_lists_topics(shared_data: Path) -> None:
    path = shared_data / "bags" / "evt3_640x480"
    with BagReader(path) as r, pytest.raises(BagError) as exc:
        next(r.messages(topics=["/camera/image"]))
    assert str(path) in str(exc.value) and "/event_camera/events" in str(exc.value)


def _copy_bag(src: Path, dst: Path) -> Path:
    """A writable copy of the bag ``src`` at ``dst``; returns its storage file."""
    shutil.copytree(src, dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return next(p for p in dst.iterdir() if p.suffix in (".db3", ".mcap"))


def _intact(path: Path) -> list[tuple[str, int, bytes]]:
    with BagReader(path) as r:
        return [(m.topic, m.t_ns, m.data) for m in r.messages()]


def _assert_recovered_subset(got: list[tuple[str, int, bytes]], intact: list[tuple[str, int, bytes]]) -> None:
    """Recovered messages are intact messages (same topic, time and bytes), each at most once, in time order."""
    assert [t for _, t, _ in got] == sorted(t for _, t, _ in got)
    pool = Counter(intact)
    for m in got:
        assert pool[m] > 0, "a recovered message is not one of the bag's messages"
        pool[m] -= 1


@pytest.mark.parametrize("name", BAGS)
def test_truncated_real_bag_keeps_every_intact_message(shared_data: Path, tmp_path: Path, name: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A bag cut to 90 % (recorder killed mid-write): every intact message is read, the lost ones are counted (the
    count metadata.yaml promised minus the readable ones) and a warning names the bag and the recovery used."""
    intact = _intact(shared_data / "bags" / name)
    dst = tmp_path / name
    data = _copy_bag(shared_data / "bags" / name, dst)
    raw = data.read_bytes()
    data.write_bytes(raw[: len(raw) * 9 // 10])
    with caplog.at_level(logging.WARNING, logger="hstnn_ros.bags"), BagReader(dst) as r:
        got = [(m.topic, m.t_ns, m.data) for m in r.messages()]
        assert r.recovery is not None and ("StreamReader" in r.recovery or "row-id" in r.recovery)
        assert r.lost_messages == len(intact) - len(got) > 0
        assert sum(r.message_counts.values()) == len(got)
    _assert_recovered_subset(got, intact)
    assert len(got) >= 0.75 * len(intact)  # measured: 85-90 % of the messages survive a 10 % cut
    assert any(str(dst) in rec.getMessage() and "recovery" in rec.getMessage() for rec in caplog.records)


@pytest.mark.parametrize("name", ["evt3_640x480", "libcaer_cmp_davis346_mcap"])
def test_bag_with_nothing_recoverable_refused_naming_path(shared_data: Path, tmp_path: Path, name: str) -> None:
    dst = tmp_path / name
    data = _copy_bag(shared_data / "bags" / name, dst)
    data.write_bytes(data.read_bytes()[:600])  # the file header only
    with pytest.raises(BagError, match="nothing recoverable") as exc, BagReader(dst) as r:
        list(r.messages())
    assert str(dst) in str(exc.value)


def test_sqlite_bag_with_damaged_pages_loses_only_their_rows(shared_data: Path, tmp_path: Path) -> None:
    """Pages overwritten in the middle of a .db3 (a bad disk sector): the rows on them are lost and counted, the
    others are read, in time order."""
    intact = _intact(shared_data / "bags" / "evt3_640x480")
    data = _copy_bag(shared_data / "bags" / "evt3_640x480", tmp_path / "bag")
    raw = bytearray(data.read_bytes())
    for page in (36, 194, 448):
        raw[page * 4096: page * 4096 + 8] = b"\xff" * 8
    data.write_bytes(bytes(raw))
    with BagReader(tmp_path / "bag") as r:
        got = [(m.topic, m.t_ns, m.data) for m in r.messages()]
        assert r.recovery is not None and 0 < r.lost_messages == len(intact) - len(got) <= 10
    _assert_recovered_subset(got, intact)


def test_mcap_bag_with_a_damaged_chunk_loses_only_that_chunk(shared_data: Path, tmp_path: Path) -> None:
    """A chunk whose records do not parse, in an MCAP with an intact summary: the indexed read fails mid-stream,
    the reader continues with mcap's StreamReader, loses that chunk's messages only and counts them."""
    from mcap.reader import make_reader

    src = shared_data / "bags" / "libcaer_cmp_davis346_mcap"
    intact = _intact(src)
    data = _copy_bag(src, tmp_path / "bag")
    with data.open("rb") as fh:
        chunk = sorted(make_reader(fh).get_summary().chunk_indexes, key=lambda c: c.chunk_start_offset)[1]
    raw = bytearray(data.read_bytes())
    # inside the chunk record: opcode, length, start/end time, size, crc, compression "", records length
    first = chunk.chunk_start_offset + 1 + 8 + 8 + 8 + 8 + 4 + 4 + 8
    raw[first: first + 9] = b"\x05" + b"\xff" * 8  # the first inner record claims an impossible length
    data.write_bytes(bytes(raw))
    with BagReader(tmp_path / "bag") as r:
        got = [(m.topic, m.t_ns, m.data) for m in r.messages()]
        assert r.recovery is not None and "StreamReader" in r.recovery
        assert r.lost_messages == len(intact) - len(got)
    _assert_recovered_subset(got, intact)
    assert 0 < len(intact) - len(got) < len(intact) / 2


class _Bags(dict):
    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return f"<small bags {sorted(self)}>"


@pytest.fixture(scope="module")
def small_bags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, str, list]]:
    """Two small bags (sqlite3, MCAP) of 60 real event packets: storage bytes, file name and messages."""
    src = Path(__file__).resolve().parents[2] / "shared" / "data" / "bags" / "libcaer_640x480_rollover"
    if not src.is_dir():
        pytest.skip("real recordings not found")
    with BagReader(src) as r:
        msgs = list(r.messages())[:60]
    out = _Bags()
    for storage in Storage:
        d = tmp_path_factory.mktemp("small") / storage.value
        with BagWriter(d, storage=storage) as w:
            conn = w.add_connection("/ev", msgs[0].msgtype)
            for m in msgs:
                w.write(conn, m.t_ns, m.data)
        f = next(p for p in d.iterdir() if p.suffix in (".db3", ".mcap"))
        out[storage.value] = (f.read_bytes(), f.name, [("/ev", m.t_ns, m.data) for m in msgs])
    return out


@pytest.mark.parametrize("storage", [s.value for s in Storage])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 1.0), hits=st.lists(st.tuples(st.floats(0.0, 1.0), st.binary(min_size=1, max_size=64)),
                                                max_size=3))
def test_damaged_bag_files_read_or_refused(small_bags: dict, tmp_path: Path, storage: str, cut: float,
                                           hits: list) -> None:
    """Any cut and overwritten byte runs: the reader either refuses with a BagError naming the file or reads a
    time-ordered subset of the messages; damaged bytes may change a message's content (the decoders check that),
    never the time order, and what is not read is counted when the reader can know it."""
    raw, name, msgs = small_bags[storage]
    data = bytearray(raw[: max(1, int(len(raw) * cut))])
    for where, junk in hits:
        at = int(where * len(data))
        data[at: at + len(junk)] = junk
    path = tmp_path / name
    path.write_bytes(bytes(data))
    try:
        with BagReader(path) as r:
            got = [(m.topic, m.t_ns, m.data) for m in r.messages()]
    except BagError as exc:
        assert str(path) in str(exc)
        return
    assert [t for _, t, _ in got] == sorted(t for _, t, _ in got)
    assert len(got) <= len(msgs) or not hits
    if not hits:
        _assert_recovered_subset(got, msgs)


def test_no_such_bag(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="no such"):
        BagReader(tmp_path / "nope")


def test_sqlite3_and_mcap_writers_agree_on_real_messages(shared_data: Path, tmp_path: Path) -> None:
    with BagReader(shared_data / "bags" / "libcaer_640x480_rollover") as r:
        msgs = list(r.messages())
        first = r.deserialize(msgs[0])
    for storage in Storage:
        with BagWriter(tmp_path / storage.value, storage=storage) as w:
            conn = w.add_connection("/ev", msgs[0].msgtype)
            for m in msgs[:-1]:
                w.write(conn, m.t_ns, m.data)
            w.write(conn, msgs[-1].t_ns, first)  # a message object is serialized
            w.set_custom_data("origin", "test")
    read = {}
    for storage in Storage:
        with BagReader(tmp_path / storage.value) as r:
            assert r.storage is storage
            read[storage] = [(m.topic, m.msgtype, m.t_ns, m.data) for m in r.messages()]
    assert read[Storage.SQLITE3] == read[Storage.MCAP]
    assert [d for *_, d in read[Storage.MCAP][:-1]] == [m.data for m in msgs[:-1]]


def test_writer_refuses_existing_path_and_unknown_type(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    with pytest.raises(BagError, match="exists"):
        BagWriter(tmp_path / "x")
    with BagWriter(tmp_path / "y", storage="sqlite3") as w, pytest.raises(BagError, match="not registered"):
        w.add_connection("/a", "foo_msgs/msg/Bar")
    with pytest.raises(BagError, match="unknown storage"):
        BagWriter(tmp_path / "z", storage="rosbag1")


def test_split_bag_files_merge_in_time_order(shared_data: Path, tmp_path: Path) -> None:
    """A bag split over several storage files (rosbag2 --max-bag-size) is read as one time-ordered stream."""
    import yaml

    with BagReader(shared_data / "bags" / "evt3_640x480") as r:
        msgs = list(r.messages())
    parts = [msgs[0::2], msgs[1::2]]  # interleaved in time across the two files
    for k, part in enumerate(parts):
        with BagWriter(tmp_path / f"p{k}", storage="sqlite3") as w:
            conn = w.add_connection("/ev", part[0].msgtype)
            for m in part:
                w.write(conn, m.t_ns, m.data)
    bag = tmp_path / "split"
    bag.mkdir()
    files = []
    for k in range(2):
        f = next((tmp_path / f"p{k}").glob("*.db3"))
        shutil.copy(f, bag / f"split_{k}.db3")
        files.append(f"split_{k}.db3")
    meta = yaml.safe_load((tmp_path / "p0" / "metadata.yaml").read_text())
    meta["rosbag2_bagfile_information"]["relative_file_paths"] = files
    (bag / "metadata.yaml").write_text(yaml.safe_dump(meta))
    with BagReader(bag) as r:
        got = list(r.messages())
        assert r.message_counts == {"/ev": len(msgs)}
    assert [m.t_ns for m in got] == sorted(m.t_ns for m in msgs)
    assert [m.data for m in got] == [m.data for m in sorted(msgs, key=lambda m: m.t_ns)]
