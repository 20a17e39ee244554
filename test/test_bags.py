"""hstnn_ros.bags on the real recordings: storage quirks, streaming order, writer round trips, corrupt bags."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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


@pytest.mark.parametrize("name", ["evt3_640x480", "libcaer_cmp_davis346_mcap"])
def test_corrupt_bag_refused_naming_path(shared_data: Path, tmp_path: Path, name: str) -> None:
    src = shared_data / "bags" / name
    dst = tmp_path / name
    shutil.copytree(src, dst)
    data = next(p for p in dst.iterdir() if p.suffix in (".db3", ".mcap"))
    raw = data.read_bytes()
    data.write_bytes(raw[: len(raw) // 3])  # half-written
    with pytest.raises(BagError) as exc, BagReader(dst) as r:
        for _ in r.messages():
            pass
    assert str(dst) in str(exc.value)


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
