"""The bag player's schedule (hstnn_ros.bags.playback), without ROS: order, pacing, loops, topic choice."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hstnn_ros.bags import BagError, BagReader, BagWriter, typestore
from hstnn_ros.bags.playback import Playback, PlaybackReport, ros_type_name

STORE = typestore()
TOPICS = {"/a": "std_msgs/msg/UInt32", "/b": "std_msgs/msg/String"}


def _msg(topic: str, i: int) -> object:
    if TOPICS[topic].endswith("UInt32"):
        return STORE.types["std_msgs/msg/UInt32"](data=i)
    return STORE.types["std_msgs/msg/String"](data=f"m{i}")


def _write(path: Path, stamps: dict[str, list[int]], storage: str = "sqlite3") -> Path:
    """A bag with one message per stamp (ns) on each topic; the payload numbers the message."""
    with BagWriter(path, storage=storage) as w:
        conns = {t: w.add_connection(t, TOPICS[t]) for t in stamps}
        rows = sorted((t_ns, topic) for topic, ts in stamps.items() for t_ns in ts)
        for i, (t_ns, topic) in enumerate(rows):
            w.write(conns[topic], t_ns, _msg(topic, i))
    return path


def test_paced_by_receive_time_divided_by_rate(tmp_path: Path) -> None:
    stamps = {"/a": [10_000_000_000, 10_100_000_000, 10_300_000_000], "/b": [10_050_000_000, 10_250_000_000]}
    bag = _write(tmp_path / "bag", stamps)
    for rate in (1.0, 2.0, 0.5):
        with Playback([bag], rate=rate) as pb:
            sched = list(pb.schedule())
        t = [s.t_ns for s in sched]
        assert t == sorted(t) and len(t) == 5
        assert [s.message.topic for s in sched] == ["/a", "/b", "/a", "/b", "/a"]
        assert [s.wall_s for s in sched] == pytest.approx([(x - t[0]) / 1e9 / rate for x in t])
        assert {s.loop for s in sched} == {0}


def test_topic_filter_and_unknown_topic_named(tmp_path: Path) -> None:
    bag = _write(tmp_path / "bag", {"/a": [1, 2, 3], "/b": [4]})
    with Playback([bag], topics=["/b"]) as pb:
        assert pb.topics == {"/b": "std_msgs/msg/String"}
        assert [s.message.topic for s in pb.schedule()] == ["/b"]
        assert pb.message_count() == {"/b": 1}
    with pytest.raises(BagError, match=r"\['/nope'\] are in none of the bags; they have \['/a', '/b'\]"):
        Playback([bag], topics=["/a", "/nope"])


def test_bad_arguments_refused(tmp_path: Path) -> None:
    bag = _write(tmp_path / "bag", {"/a": [1]})
    with pytest.raises(BagError, match="rate 0"):
        Playback([bag], rate=0)
    with pytest.raises(BagError, match="no bag"):
        Playback([])
    with pytest.raises(BagError, match=str(tmp_path / "missing")):
        Playback([tmp_path / "missing"])


def test_loops_jump_recorded_time_back_while_wall_time_goes_on(tmp_path: Path) -> None:
    stamps = {"/a": [5_000_000_000 + k * 100_000_000 for k in range(11)]}  # 1 s span, 0.1 s apart
    bag = _write(tmp_path / "bag", stamps)
    with Playback([bag], rate=2.0, loops=3) as pb:
        sched = list(pb.schedule())
    assert len(sched) == 33
    assert [s.loop for s in sched] == [k // 11 for k in range(33)]
    walls = [s.wall_s for s in sched]
    assert all(b > a for a, b in itertools.pairwise(walls))  # no two loops overlap
    # each loop replays the recorded times exactly; the next starts one message interval after the last
    for k in range(3):
        assert [s.t_ns for s in sched[11 * k:11 * (k + 1)]] == stamps["/a"]
        assert walls[11 * k] == pytest.approx(k * 1.1 / 2.0)
    # payloads are the recorded bytes, unchanged
    with BagReader(bag) as r:
        recorded = [m.data for m in r.messages()]
    assert [s.message.data for s in sched] == recorded * 3


def test_forever_loop_keeps_going(tmp_path: Path) -> None:
    bag = _write(tmp_path / "bag", {"/a": [1, 2]})
    with Playback([bag], loops=0) as pb:
        it = pb.schedule()
        got = [next(it) for _ in range(101)]
    assert got[-1].loop == 50


def test_empty_selection_yields_nothing_even_forever(tmp_path: Path) -> None:
    with BagWriter(tmp_path / "bag", storage="sqlite3") as w:
        w.add_connection("/a", TOPICS["/a"])
    with Playback([tmp_path / "bag"], loops=0) as pb:
        assert list(pb.schedule()) == []


def test_two_bags_merge_in_time_order(tmp_path: Path) -> None:
    b1 = _write(tmp_path / "one", {"/a": [10, 30, 50]})
    b2 = _write(tmp_path / "two", {"/b": [20, 40]}, storage="mcap")
    with Playback([b1, b2]) as pb:
        assert pb.topics == TOPICS
        sched = list(pb.schedule())
    assert [s.t_ns for s in sched] == [10, 20, 30, 40, 50]
    assert [s.message.topic for s in sched] == ["/a", "/b", "/a", "/b", "/a"]


def test_same_topic_with_two_types_refused(tmp_path: Path) -> None:
    b1 = _write(tmp_path / "one", {"/a": [10]})
    with BagWriter(tmp_path / "two", storage="sqlite3") as w:
        w.write(w.add_connection("/a", "std_msgs/msg/String"), 5, STORE.types["std_msgs/msg/String"](data="x"))
    with pytest.raises(BagError, match="topic /a has type std_msgs/msg/UInt32 in one bag"):
        Playback([b1, tmp_path / "two"])


def test_clock_follows_the_previous_message() -> None:
    from hstnn_ros.bags import RawMessage
    from hstnn_ros.bags.playback import Scheduled

    s = Scheduled(wall_s=2.0, loop=0, message=RawMessage("/a", "std_msgs/msg/UInt32", 7_000_000_000, b""))
    assert s.clock_ns_at(2.5, rate=2.0) == 8_000_000_000
    assert s.clock_ns_at(1.0, rate=1.0) == 7_000_000_000  # never before the message itself


def test_ros_type_names() -> None:
    assert ros_type_name("sensor_msgs/Image") == "sensor_msgs/msg/Image"
    assert ros_type_name("sensor_msgs/msg/Image") == "sensor_msgs/msg/Image"


def test_report_round_trips_and_lists_skipped_topics() -> None:
    rep = PlaybackReport(skipped={"/ev": "event_array_msgs/msg/EventArray: not in this ROS install"})
    for _ in range(3):
        rep.count("/img")
    rep.loops, rep.wall_s, rep.max_lag_s, rep.clock_msgs = 2, 1.5, 0.002, 40
    assert PlaybackReport.from_json(rep.to_json()) == rep
    table = rep.table()
    assert "/img" in table and "3" in table and "event_array_msgs/msg/EventArray" in table


def test_real_bags_keep_their_storage_types_and_unplayable_topics_are_named(shared_data: Path) -> None:
    bags = shared_data / "bags"
    legacy, mcap = bags / "event_array_legacy_640x480", bags / "libcaer_cmp_davis346_mcap"
    with Playback([legacy]) as pb:
        # metadata.yaml says EventPacket; the storage holds the legacy type, and that is what would be published
        assert list(pb.topics.values()) == ["event_array_msgs/msg/EventArray"]
        left_out = pb.exclude(lambda m: not m.startswith("event_array_msgs/"), "not in this ROS install")
        assert left_out == {"/event_camera/events": "event_array_msgs/msg/EventArray"}
        assert pb.skipped == {"/event_camera/events": "event_array_msgs/msg/EventArray: not in this ROS install"}
        assert list(pb.schedule()) == []
    with Playback([mcap]) as pb:  # the MCAP bag with an empty storage_identifier plays whole
        assert sum(pb.message_count().values()) == len(list(pb.schedule())) == 100
    with pytest.raises(BagError, match="has type event_array_msgs/msg/EventArray in one bag"):
        Playback([legacy, mcap])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=st.lists(st.integers(0, 10**10), min_size=1, max_size=20),
       b=st.lists(st.integers(0, 10**10), max_size=20),
       rate=st.floats(0.1, 10.0), loops=st.integers(1, 3))
def test_schedule_properties(tmp_path_factory: pytest.TempPathFactory, a: list[int], b: list[int], rate: float,
                             loops: int) -> None:
    bag = _write(tmp_path_factory.mktemp("h") / "bag", {"/a": a, "/b": b})
    with Playback([bag], rate=rate, loops=loops) as pb:
        sched = list(pb.schedule())
    n = len(a) + len(b)
    assert len(sched) == n * loops
    walls = [s.wall_s for s in sched]
    assert walls == sorted(walls)
    for k in range(loops):
        part = sched[k * n:(k + 1) * n]
        assert [s.t_ns for s in part] == sorted(a + b)
        assert {s.loop for s in part} == {k}
        # within a loop, wall offsets are the recorded offsets divided by the rate
        assert [s.wall_s - part[0].wall_s for s in part] == pytest.approx(
            [(s.t_ns - part[0].t_ns) / 1e9 / rate for s in part], abs=1e-9)


def test_renumbered_seq_counts_on_across_loops_and_nothing_else_changes(tmp_path: Path, shared_data: Path) -> None:
    """--renumber-seq: the EventPacket seq of a looped recording counts on as a running driver's would; every other
    byte (and every other topic) is published as recorded."""
    from hstnn_ros.bags.cdr import packet_header

    with BagReader(shared_data / "bags" / "evt3_640x480") as r:
        t0 = next(iter(r.messages())).t_ns
    other = _write(tmp_path / "other", {"/a": [t0 + k * 10**8 for k in range(5)]})
    bags = [shared_data / "bags" / "evt3_640x480", other]
    with Playback(bags, loops=3, renumber_seq=True) as pb, Playback(bags, loops=3) as plain:
        got, ref = list(pb.schedule()), list(plain.schedule())
    assert len(got) == len(ref)
    seqs = []
    for a, b in zip(got, ref, strict=True):
        assert (a.message.topic, a.wall_s, a.loop) == (b.message.topic, b.wall_s, b.loop)
        if a.message.msgtype.endswith("EventPacket"):
            ha, hb = packet_header(a.message.data, has_seq=True), packet_header(b.message.data, has_seq=True)
            seqs.append(ha.seq)
            assert ha.stamp_ns == hb.stamp_ns
            off = ha.seq_offset
            assert a.message.data[:off] == b.message.data[:off] and a.message.data[off + 8:] == b.message.data[off + 8:]
        else:
            assert a.message.data == b.message.data
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    # --seq-start: the same numbering from a given value (to go on where an earlier playback stopped)
    with Playback(bags, loops=3, seq_start=len(seqs)) as cont:
        nxt = [packet_header(m.message.data, has_seq=True).seq for m in cont.schedule()
               if m.message.msgtype.endswith("EventPacket")]
    assert nxt == list(range(len(seqs), 2 * len(seqs)))
    with pytest.raises(BagError, match="seq start"):
        Playback(bags, seq_start=-1)
