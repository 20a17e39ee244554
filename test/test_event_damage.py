"""Damaged event streams: damage in a packet costs that packet (and at most the next), never the stream, and never
moves the time of an undamaged packet (issue 11 part 2). Reference = the same stream decoded undamaged, which the
tests in test_events.py hold equal to independent references."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hstnn_ros.bags import BagError, BagReader, typestore
from hstnn_ros.perception import events as pev

PACKET = "event_camera_msgs/msg/EventPacket"
BAGS = ["event_array_legacy_640x480", "evt3_1280x720_trigger", "evt3_640x480", "libcaer_640x480_rollover",
        "libcaer_cmp_davis346_mcap"]
W, H = 640, 480


def _rows(b: pev.EventBatch) -> list[tuple[int, int, int, int]]:
    return list(zip(b.t_ns.tolist(), b.x.tolist(), b.y.tolist(), b.p.tolist(), strict=True))


def _serialize(b: pev.EventBatch, enc: str, payload: bytes, tb: int, stamp: int) -> bytes:
    T = typestore().types
    hdr = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9),
                                   frame_id="dvs")
    msg = T[PACKET](header=hdr, height=b.height, width=b.width, seq=0, time_base=tb, encoding=enc,
                    is_bigendian=False, events=np.frombuffer(payload, np.uint8))
    return typestore().serialize_cdr(msg, PACKET)


def _libcaer_near_rollover(b: pev.EventBatch) -> tuple[bytes, int]:
    """libcaer payload whose 31-bit stamps start 3 ms before the counter wraps (time_base moved back to match)."""
    payload, tb = pev.ENCODERS["libcaer"](b)
    a = np.frombuffer(payload, np.dtype([("data", "<u4"), ("ts", "<i4")])).copy()
    lead = (1 << 31) - 3000
    a["ts"] = (a["ts"].astype(np.int64) + lead) % (1 << 31)
    return a.tobytes(), tb - lead * 1000


@st.composite
def streams(draw: st.DrawFn, enc: str) -> tuple[list[bytes], list[pev.EventBatch]]:
    """A stream of 8-16 packets of ``enc`` (serialized EventPackets, or dvs EventArrays for "dvs") with the
    driver's stamping convention (metavision: the first event; libcaer and dvs drivers: the last), and the packets'
    event batches."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_packets = draw(st.integers(8, 16))
    span = draw(st.sampled_from([1, 4, 10])) * 1_000_000
    # evt3 starts near a 24-bit wrap of its sensor clock half of the time
    t = 1_700_000_000_000_000_000 + (draw(st.sampled_from([0, (1 << 24) - 9000])) * 1000 if enc == "evt3" else 0)
    msgs, batches = [], []
    near_rollover = enc == "libcaer" and draw(st.booleans())
    for _ in range(n_packets):
        n = int(rng.integers(20, 200))
        ts = np.sort(rng.integers(t, t + span, n) // 1000 * 1000)
        b = pev.EventBatch(ts, rng.integers(0, W, n), rng.integers(0, H, n), rng.integers(0, 2, n), W, H)
        stamp = int(ts[-1]) if enc in ("libcaer", "libcaer_cmp", "dvs") else int(ts[0])
        stamp += int(rng.integers(-300_000, 300_000))  # stamps jitter
        if enc == "dvs":
            msgs.append(pev.encode_dvs_event_array(b, stamp_ns=stamp, frame_id="dvs"))
        else:
            payload, tb = _libcaer_near_rollover(b) if near_rollover else pev.ENCODERS[enc](b)
            msgs.append(_serialize(b, enc, payload, tb, stamp))
        batches.append(b)
        t += span
    return msgs, batches


def _msgtype(enc: str) -> str:
    return "dvs_msgs/msg/EventArray" if enc == "dvs" else PACKET


def _decode(msgs: list[bytes], enc: str) -> tuple[pev.EventBatch, pev.StreamDecoder]:
    dec = pev.StreamDecoder()
    out = [dec.decode(_msgtype(enc), m) for m in msgs]
    out.append(dec.flush())
    return pev.EventBatch.concat(out), dec


@pytest.mark.parametrize("enc", ["evt3", "libcaer", "libcaer_cmp", "mono", "dvs"])
@settings(max_examples=40, deadline=20_000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_bytes_cost_only_their_packets(enc: str, data: st.DataObject) -> None:
    """k damaged bytes anywhere in the serialized packets (header fields, time words, time_base, payload): the
    events of every packet the bytes do not touch are all returned with their exact times, except in the packet
    right after a touched one (the resync packet). The first packet is left intact: it sets the stream's stamp/time
    relation (and anchors evt3 sensor time to ROS time)."""
    msgs, _ = data.draw(streams(enc))
    ref, ref_dec = _decode(msgs, enc)
    assert ref_dec.counters.problems == 0, list(ref_dec.counters.recent)
    k = data.draw(st.integers(1, 3))
    damaged = [bytearray(m) for m in msgs]
    touched = set()
    for _ in range(k):
        i = data.draw(st.integers(1, len(msgs) - 1))
        at = data.draw(st.integers(0, len(damaged[i]) - 1))
        damaged[i][at] = data.draw(st.integers(0, 255))
        touched.add(i)
    got, dec = _decode([bytes(m) for m in damaged], enc)
    got.validate()  # inside the sensor, never going back in time
    protected = [i for i in range(len(msgs)) if i not in touched and i - 1 not in touched]
    one = pev.StreamDecoder()  # the reference, packet by packet
    per_packet = [_rows(one.decode(_msgtype(enc), m)) for m in msgs]
    have = Counter(_rows(got))
    missing = [(i, r) for i in protected for r in per_packet[i] if have[r] == 0]
    assert not missing, (f"{len(missing)} events of undamaged packets lost or moved, e.g. {missing[:3]}; touched "
                         f"{sorted(touched)}; counters {dec.counters.summary()}")
    assert len(ref) == sum(len(p) for p in per_packet)


@pytest.mark.parametrize("enc", ["evt3", "libcaer", "libcaer_cmp", "mono", "dvs"])
@settings(max_examples=30, deadline=30_000, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_heavy_damage_never_hangs_or_raises(enc: str, data: st.DataObject) -> None:
    """Up to 40 damaged bytes anywhere, the first packet included: the decoder returns clean batches in bounded time
    (the hypothesis deadline) and raises nothing."""
    msgs, _ = data.draw(streams(enc))
    damaged = [bytearray(m) for m in msgs]
    for _ in range(data.draw(st.integers(1, 40))):
        i = data.draw(st.integers(0, len(msgs) - 1))
        damaged[i][data.draw(st.integers(0, len(damaged[i]) - 1))] = data.draw(st.integers(0, 255))
    dec = pev.StreamDecoder()
    last = np.iinfo(np.int64).min
    for m in damaged:
        b = dec.decode(_msgtype(enc), bytes(m))
        b.validate()
        if len(b):
            assert int(b.t_ns[0]) >= last
            last = int(b.t_ns[-1])
    for field, value in dec.counters.summary().items():
        assert value >= 0, field


def _bag(shared_data: Path, name: str) -> list[tuple[str, bytes]]:
    with BagReader(shared_data / "bags" / name) as r:
        return [(m.msgtype, m.data) for m in r.messages()]


def _decode_raw(msgs: list[tuple[str, bytes]]) -> tuple[list[pev.EventBatch], pev.StreamDecoder]:
    dec = pev.StreamDecoder()
    out = [dec.decode(t, d) for t, d in msgs]
    return out, dec


@pytest.mark.parametrize("name", BAGS)
def test_one_random_byte_per_packet_keeps_the_stream(shared_data: Path, name: str) -> None:
    """The issue's measurement: one random byte per packet of a real recording used to keep 12-40 % of the events
    (a false evt3 wrap or libcaer rollover moved the rest of the stream, then the time check dropped it). Now
    ~99 % come out with their exact times (measured 98.9-99.8 % over 3 seeds)."""
    msgs = _bag(shared_data, name)
    ref, _ = _decode_raw(msgs)
    ref_rows = Counter(r for b in ref for r in _rows(b))
    rng = np.random.default_rng(7)
    damaged = []
    for t, data in msgs:
        d = bytearray(data)
        d[int(rng.integers(0, len(d)))] = int(rng.integers(0, 256))
        damaged.append((t, bytes(d)))
    got, dec = _decode_raw(damaged)
    exact = sum(min(n, ref_rows[r]) for r, n in Counter(r for b in got for r in _rows(b)).items())
    assert exact >= 0.97 * sum(ref_rows.values()), dec.counters.summary()
    assert dec.counters.problems > 0


def _corrupt_time_high(objs: list, forward: bool) -> int:
    """Corrupt one TIME_HIGH word in a packet from the middle third: ``forward=False`` sets it 2060 units (8.4 s)
    below its value (a drop of more than 2048: taken for a wrap); ``forward=True`` 2060 above (a jump ahead whose
    return, at the next TIME_HIGH, is taken for a wrap). Returns the packet index."""
    for k in range(len(objs) // 3, len(objs)):
        words = np.frombuffer(np.asarray(objs[k].events, np.uint8).tobytes(), "<u2").copy()
        th = np.flatnonzero(words >> 12 == 0x8)
        for i in th[:-1]:
            v = int(words[i]) & 0xFFF
            if (forward and v + 2060 <= 0xFFF) or (not forward and v >= 2060):
                words[i] = (0x8 << 12) | (v + 2060 if forward else v - 2060)
                objs[k].events = np.frombuffer(words.tobytes(), np.uint8)
                return k
    raise AssertionError("no suitable TIME_HIGH word")


@pytest.mark.parametrize(("name", "forward"), [("event_array_legacy_640x480", False), ("evt3_640x480", True),
                                               ("evt3_1280x720_trigger", False)])
def test_corrupt_evt3_time_high_costs_one_packet(shared_data: Path, name: str, forward: bool) -> None:
    """One TIME_HIGH word corrupted in one packet: taken for a wrap (a drop of more than 2048), it used to move the
    rest of the legacy bag by +16.777 s; a jump forward made the time check drop 95.7 % of evt3_640x480. Now every
    other packet, beyond the next one, decodes exactly as without the damage, and the damage is counted."""
    with BagReader(shared_data / "bags" / name) as r:
        objs = [r.deserialize(m) for m in r.messages()]
    ref_dec = pev.StreamDecoder()
    ref = [_rows(ref_dec.decode(m)) for m in objs]
    k = _corrupt_time_high(objs, forward)
    dec = pev.StreamDecoder()
    got = [_rows(dec.decode(m)) for m in objs]
    for j in range(len(objs)):
        if j not in (k, k + 1):
            assert got[j] == ref[j], j
    assert dec.counters.packets_resynced >= 1 and dec.counters.events_dropped_resync + dec.counters.events_retimed > 0
    assert sum(map(len, got)) >= sum(map(len, ref)) - len(ref[k]) - len(ref[k + 1])


def test_time_base_out_of_range_is_counted_and_timed_from_stamps(shared_data: Path) -> None:
    """time_base = 2**64-1 in every libcaer packet used to make every packet malformed (int too big): all events
    lost. Now each packet counts one malformed field and its events are placed by its header stamp."""
    with BagReader(shared_data / "bags" / "libcaer_640x480_rollover") as r:
        objs = [r.deserialize(m) for m in r.messages()]
    ref = pev.EventBatch.concat([pev.StreamDecoder().decode(m) for m in objs])
    for m in objs:
        m.time_base = 2**64 - 1
    dec = pev.StreamDecoder()
    got = pev.EventBatch.concat([dec.decode(m) for m in objs])
    assert dec.counters.malformed == len(objs)
    assert sum("time_base" in s for s in dec.counters.recent) >= 1
    assert len(got) >= 0.99 * len(ref)
    got.validate()
    # stamps are within a few ms of the events: so are the re-derived times
    assert abs(int(np.median(got.t_ns)) - int(np.median(ref.t_ns))) < 5_000_000


def test_packets_growing_longer_lose_nothing() -> None:
    """An undamaged stream whose packets suddenly last 10x, then 100x longer (the scene stopped moving): their
    tails lie above the learned window, are held one packet and released (nothing dropped, nothing counted)."""
    rng = np.random.default_rng(0)
    for enc in ("evt3", "libcaer", "mono"):
        t = 1_700_000_000 * 10**9
        dec = pev.StreamDecoder()
        n_in = n_out = 0
        for span in [4_000_000] * 30 + [40_000_000] * 10 + [400_000_000] * 5 + [4_000_000] * 10:
            ts = np.sort(rng.integers(t, t + span, 300) // 1000 * 1000)
            b = pev.EventBatch(ts, rng.integers(0, W, 300), rng.integers(0, H, 300), rng.integers(0, 2, 300), W, H)
            payload, tb = pev.ENCODERS[enc](b)
            stamp = int(ts[-1]) if enc == "libcaer" else int(ts[0])
            n_in += 300
            n_out += len(dec.decode(PACKET, _serialize(b, enc, payload, tb, stamp)))
            t += span
        assert n_out == n_in and dec.counters.problems == 0, (enc, dec.counters.summary())


@pytest.mark.parametrize("name", ["evt3_640x480", "event_array_legacy_640x480"])
def test_decode_many_equals_message_by_message_on_damaged_streams(shared_data: Path, name: str) -> None:
    """decode_many's one-call evt3 runs fall back to message-by-message decoding where a packet needs the check,
    so damaged streams decode the same either way."""
    rng = np.random.default_rng(3)
    with BagReader(shared_data / "bags" / name) as r:
        raw = [m for m in r.messages()]
        objs = []
        for m in raw:
            d = bytearray(m.data)
            if rng.random() < 0.3:
                d[int(rng.integers(len(d) // 2, len(d)))] = int(rng.integers(0, 256))
            try:
                objs.append(r.deserialize(type(m)(m.topic, m.msgtype, m.t_ns, bytes(d))))
            except BagError:  # a damaged length field: rosbags cannot even build the message object
                continue
    one = pev.StreamDecoder()
    ref = pev.EventBatch.concat([one.decode(m) for m in objs])
    many = pev.StreamDecoder()
    got = pev.EventBatch.concat([many.decode_many(objs[i:i + 9]) for i in range(0, len(objs), 9)])
    for col in ("t_ns", "x", "y", "p"):
        np.testing.assert_array_equal(getattr(got, col), getattr(ref, col))
    assert many.counters.summary() == one.counters.summary()


def _regular_stream(enc: str, n_packets: int, stamp_of: Callable[[int, pev.EventBatch], int], *,
                    t0: int = 1_700_000_000 * 10**9, span: int = 4_000_000,
                    sensor_t0: int | None = None) -> list[tuple[pev.EventBatch, bytes]]:
    """``n_packets`` packets of 200 events, ``span`` ns each; ``stamp_of(k, batch)`` gives packet k's stamp. For
    evt3, ``sensor_t0`` sets the sensor time of the first event (default: the ROS time)."""
    rng = np.random.default_rng(5)
    out = []
    t = t0
    for k in range(n_packets):
        ts = np.sort(rng.integers(t, t + span, 200) // 1000 * 1000)
        b = pev.EventBatch(ts, rng.integers(0, W, 200), rng.integers(0, H, 200), rng.integers(0, 2, 200), W, H)
        sensor = b if sensor_t0 is None else pev.EventBatch(ts - t0 + sensor_t0, b.x, b.y, b.p, W, H)
        payload, tb = pev.ENCODERS[enc](sensor)
        out.append((b, _serialize(b, enc, payload, tb, int(stamp_of(k, b)))))
        t += span
    return out


@pytest.mark.parametrize("enc", ["libcaer", "mono", "libcaer_cmp"])
def test_stamps_that_are_not_event_times_lose_nothing(enc: str) -> None:
    """A driver whose stamps have nothing to do with its event times (all zero): the time_base encodings carry
    their own time, so no event is lost; the check notices and re-learns the relation (counted once or twice)."""
    stream = _regular_stream(enc, 40, lambda k, b: 0)
    dec = pev.StreamDecoder()
    got = pev.EventBatch.concat([dec.decode(PACKET, m) for _, m in stream] + [dec.flush()])
    want = pev.EventBatch.concat([b for b, _ in stream])
    np.testing.assert_array_equal(got.t_ns, want.t_ns)
    assert dec.counters.reanchors + dec.counters.packets_resynced <= 3


def test_evt3_sensor_clock_restart_is_followed_after_two_packets() -> None:
    """The camera restarts mid-stream: its evt3 sensor time jumps back (not a wrap) while the stamps go on. Before,
    every later event was earlier than the stream's latest time and dropped; now, after two packets that agree on
    the jump, the stream is re-anchored to the stamps and continues (the two packets are counted)."""
    first = _regular_stream("evt3", 20, lambda k, b: b.t_ns[0], sensor_t0=8_000_000_000_000)
    t1 = int(first[-1][0].t_ns[-1]) + 4_000_000
    second = _regular_stream("evt3", 20, lambda k, b: b.t_ns[0], t0=t1, sensor_t0=1_000_000_000)
    dec = pev.StreamDecoder()
    got = [dec.decode(PACKET, m) for _, m in first + second]
    assert sum(map(len, got[:20])) == 20 * 200
    assert sum(map(len, got[22:])) == 18 * 200  # everything after the two re-anchoring packets
    after = pev.EventBatch.concat(got[22:])
    ref = pev.EventBatch.concat([b for b, _ in second[2:]])
    assert abs(int(np.median(after.t_ns - ref.t_ns))) < 2_000_000  # on the stamps' clock again
    assert dec.counters.reanchors == 1
