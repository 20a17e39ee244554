"""Event decoding on the real recordings, encoder/decoder round trips (hypothesis) and fuzzing of every decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hstnn_ros.bags import BagReader, typestore
from hstnn_ros.perception import DecodeError
from hstnn_ros.perception import events as pev

BAGS = {"event_array_legacy_640x480": (640, 480), "evt3_1280x720_trigger": (1280, 720),
        "evt3_640x480": (640, 480), "libcaer_640x480_rollover": (640, 480), "libcaer_cmp_davis346_mcap": (346, 260)}
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode_bag(path: Path) -> tuple[pev.EventBatch, pev.StreamDecoder, list[int]]:
    dec = pev.StreamDecoder()
    out, stamps = [], []
    with BagReader(path) as r:
        for m in r.messages():
            out.append(dec.decode(m.msgtype, m.data))
            h = r.deserialize(m).header.stamp
            stamps.append(h.sec * 10**9 + h.nanosec)
    return pev.EventBatch.concat(out), dec, stamps


@pytest.mark.parametrize("name", sorted(BAGS))
def test_real_bags_decode_inside_sensor_and_monotonic(shared_data: Path, name: str) -> None:
    batch, dec, stamps = _decode_bag(shared_data / "bags" / name)
    c = dec.counters
    assert c.messages == len(stamps) and c.events == len(batch) > 50_000
    assert c.problems == 0, list(c.recent)
    assert (batch.width, batch.height) == BAGS[name]
    batch.validate()  # inside the sensor, polarity 0/1, time never goes back (after unwrapping)
    assert batch.x.max() > batch.width * 0.9 and batch.y.max() > batch.height * 0.9
    assert 0.2 < batch.p.mean() < 0.8
    # event time is ROS time: within a second of the message header stamps
    assert abs(int(batch.t_ns[0]) - stamps[0]) < 1_000_000_000
    assert abs(int(batch.t_ns[-1]) - stamps[-1]) < 1_000_000_000


def test_evt3_triggers_reported_separately(shared_data: Path) -> None:
    dec = pev.StreamDecoder()
    trig = []
    with BagReader(shared_data / "bags" / "evt3_1280x720_trigger") as r:
        for m in r.messages():
            dec.decode(m.msgtype, m.data)
            trig.append(dec.last_triggers.t_ns)
    t = np.concatenate(trig)
    assert dec.counters.triggers == len(t) >= 1


def test_libcaer_rollover_bag_unwraps(shared_data: Path) -> None:
    """The libcaer bag's 31-bit sensor timestamps wrap inside the recording; decoded times still increase."""
    with BagReader(shared_data / "bags" / "libcaer_640x480_rollover") as r:
        raw = [r.deserialize(m) for m in r.messages()]
    low = np.concatenate([np.frombuffer(m.events, "<i4")[1::2] for m in raw])
    assert np.any(np.diff(low.astype(np.int64)) < -(1 << 30)), "fixture should contain a wrap"
    batch, _, _ = _decode_bag(Path(r.path))
    assert batch.is_sorted()


def test_evt3_time_wrap_across_packets() -> None:
    """24-bit evt3 time wraps every 16.77 s: a stream crossing several wraps decodes monotonically."""
    t = np.arange(0, 50_000_000, 7_919) * 1000  # 50 s in us steps
    b = pev.EventBatch(t, t % 640, (t // 1000) % 480, (t // 1000) % 2, 640, 480)
    dec = pev.StreamDecoder(time_mode=pev.TimeMode.SENSOR)
    out = []
    for chunk in np.array_split(np.arange(len(t)), 37):
        part = b.select(chunk)
        payload, tb = pev.encode_evt3(part)
        out.append(dec.decode(_packet(part, "evt3", payload, tb)))
    got = pev.EventBatch.concat(out)
    np.testing.assert_array_equal(got.t_ns, t)


def _packet(b: pev.EventBatch, enc: str, payload: bytes, tb: int, stamp_ns: int | None = None) -> object:
    T = typestore().types
    s = int(b.t_ns[0]) if stamp_ns is None and len(b) else (stamp_ns or 0)
    hdr = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=s // 10**9, nanosec=s % 10**9),
                                   frame_id="dvs")
    return T["event_camera_msgs/msg/EventPacket"](header=hdr, height=b.height, width=b.width, seq=0, time_base=tb,
                                                  encoding=enc, is_bigendian=False,
                                                  events=np.frombuffer(payload, np.uint8))


@st.composite
def batches(draw: st.DrawFn, max_span_us: int = 16_000_000) -> pev.EventBatch:
    w = draw(st.integers(1, 2047))
    h = draw(st.integers(1, 2047))
    n = draw(st.integers(0, 300))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    t0 = draw(st.integers(0, 2**40)) * 1000
    dts = rng.integers(0, draw(st.sampled_from([1, 3, 1000, max_span_us // max(n, 1) + 1])), n)
    t = t0 + np.cumsum(dts) * 1000
    x = rng.integers(0, w, n)
    if n and draw(st.booleans()):  # runs of consecutive x at one time/row exercise vector words
        x = np.minimum(np.arange(n) % 40 + x[0] // 2, w - 1)
        t = np.repeat(t[: (n + 39) // 40], 40)[:n]
        t = np.sort(t)
    return pev.EventBatch(t, x, rng.integers(0, h, n), rng.integers(0, 2, n), w, h)


@pytest.mark.parametrize("enc", ["evt3", "libcaer_cmp", "libcaer", "mono"])
@SETTINGS
@given(b=batches(max_span_us=4_000_000))
def test_packet_round_trip(enc: str, b: pev.EventBatch) -> None:
    payload, tb = pev.ENCODERS[enc](b)
    mode = pev.TimeMode.SENSOR if enc == "evt3" else pev.TimeMode.ROS
    got = pev.StreamDecoder(time_mode=mode).decode(_packet(b, enc, payload, tb))
    assert len(got) == len(b)
    np.testing.assert_array_equal(got.x, b.x)
    np.testing.assert_array_equal(got.y, b.y)
    np.testing.assert_array_equal(got.p, b.p)
    want_t = b.t_ns
    if enc == "evt3":  # sensor time: 24-bit us, unwrapped (epoch 0 at the first TIME_HIGH)
        low = b.t_ns // 1000 % (1 << 24)
        want_t = (low + (np.cumsum(np.diff(low, prepend=low[:1]) < 0) << 24)) * 1000
    np.testing.assert_array_equal(got.t_ns, want_t)


@SETTINGS
@given(b=batches(), big=st.booleans(), via_bytes=st.booleans())
def test_dvs_cdr_round_trip_both_endiannesses(b: pev.EventBatch, big: bool, via_bytes: bool) -> None:
    data = pev.encode_dvs_event_array(b, stamp_ns=1_700_000_000_123_456_789, frame_id="dvs", big_endian=big)
    got, stamp, frame = pev.decode_dvs_cdr(data)
    assert (stamp, frame, got.width, got.height) == (1_700_000_000_123_456_789, "dvs", b.width, b.height)
    for col in ("t_ns", "x", "y", "p"):
        np.testing.assert_array_equal(getattr(got, col), getattr(b, col))
    # the bytes are exactly what rosbags serializes, for both message packages
    for msgtype in pev.DVS_MSGTYPES:
        msg = typestore().deserialize_cdr(data, msgtype)
        assert typestore().serialize_cdr(msg, msgtype, little_endian=not big) == data
        if via_bytes:
            via = pev.StreamDecoder().decode(msgtype, data)
            np.testing.assert_array_equal(via.t_ns, b.t_ns)


def test_dvs_object_and_cdr_paths_agree() -> None:
    rng = np.random.default_rng(3)
    n = 500
    b = pev.EventBatch(np.sort(rng.integers(0, 10**12, n)), rng.integers(0, 346, n), rng.integers(0, 260, n),
                       rng.integers(0, 2, n), 346, 260)
    data = pev.encode_dvs_event_array(b)
    msg = typestore().deserialize_cdr(data, "dv_ros2_msgs/msg/EventArray")
    a = pev.StreamDecoder().decode(msg)
    c = pev.StreamDecoder().decode("dv_ros2_msgs/msg/EventArray", data)
    for col in ("t_ns", "x", "y", "p"):
        np.testing.assert_array_equal(getattr(a, col), getattr(c, col))


FUZZ_TARGETS = {
    "evt3": lambda d: pev.decode_evt3(d, pev.Evt3State()),
    "libcaer_cmp": lambda d: pev.decode_libcaer_cmp(d, 0, pev.LibcaerCmpState()),
    "libcaer": lambda d: pev.decode_libcaer(d, 0),
    "mono": lambda d: pev.decode_mono(d, 0),
    "dvs": pev.decode_dvs_cdr,
}


@pytest.mark.parametrize("target", sorted(FUZZ_TARGETS))
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=600))
def test_fuzz_random_bytes_only_decode_error(target: str, data: bytes) -> None:
    try:
        out = FUZZ_TARGETS[target](data)
    except DecodeError:
        return
    batch = out[0] if isinstance(out, tuple) else out
    assert len(batch.t_ns) == len(batch.x) == len(batch.y) == len(batch.p)


@pytest.mark.parametrize("enc", ["evt3", "libcaer_cmp", "libcaer", "mono", "dvs"])
@settings(max_examples=60, deadline=None)
@given(b=batches(max_span_us=2_000_000), cut=st.floats(0, 1), flip=st.integers(0, 2**16))
def test_fuzz_truncated_and_flipped_packets_through_stream(enc: str, b: pev.EventBatch, cut: float,
                                                           flip: int) -> None:
    """Truncated or bit-flipped real payloads: the stream decoder returns a clean batch and counts the damage."""
    if enc == "dvs":
        data = bytearray(pev.encode_dvs_event_array(b))
        msgtype = "dvs_msgs/msg/EventArray"
    else:
        payload, tb = pev.ENCODERS[enc](b)
        data = bytearray(typestore().serialize_cdr(_packet(b, enc, payload, tb), "event_camera_msgs/msg/EventPacket"))
        msgtype = "event_camera_msgs/msg/EventPacket"
    if data:
        data[flip % len(data)] ^= 1 << (flip % 8)
    data = bytes(data[: max(4, int(len(data) * cut))])
    dec = pev.StreamDecoder()
    got = dec.decode(msgtype, data)
    assert isinstance(got, pev.EventBatch)
    got.validate()


def test_bad_input_counted_and_stream_continues() -> None:
    rng = np.random.default_rng(0)
    n = 200
    b = pev.EventBatch(np.arange(n) * 1000 + 10**9, rng.integers(0, 64, n), rng.integers(0, 48, n),
                       rng.integers(0, 2, n), 64, 48)
    dec = pev.StreamDecoder()
    payload, tb = pev.encode_mono(b)
    good = _packet(b, "mono", payload, tb)
    assert len(dec.decode(good)) == n
    assert len(dec.decode(_packet(b, "evt4", payload, tb))) == 0  # unknown encoding
    assert len(dec.decode(_packet(b, "mono", b"", tb))) == 0  # empty packet
    later = pev.EventBatch(b.t_ns + 10**6, b.x, b.y, b.p, 64, 48)
    pl, tbl = pev.encode_mono(later)
    assert len(dec.decode(_packet(later, "mono", pl[:-3], tbl))) == n - 1  # truncated tail
    assert len(dec.decode(_packet(b, "mono", payload, tb))) == 0  # earlier times again: time going backwards
    big = pev.EventBatch(b.t_ns + 2 * 10**6, b.x + 60, b.y, b.p, 64, 48)  # some x beyond the 64-px sensor
    pl, tb2 = pev.encode_mono(big)
    got = dec.decode(_packet(big, "mono", pl, tb2))
    assert len(got) == int(np.count_nonzero(big.x < 64)) and got.x.max() < 64
    # a new sensor size is taken when a second message confirms it (one damaged size field costs nothing)
    resized = pev.EventBatch(b.t_ns + 10**7, b.x % 32, b.y, b.p, 32, 48)
    pl, tb3 = pev.encode_mono(resized)
    got = dec.decode(_packet(resized, "mono", pl, tb3))
    assert got.width == 64 and len(got) == n
    resized2 = pev.EventBatch(resized.t_ns + 10**6, b.x, b.y, b.p, 32, 48)  # some x beyond the new 32 px
    pl, tb4 = pev.encode_mono(resized2)
    got = dec.decode(_packet(resized2, "mono", pl, tb4))
    assert got.width == 32 and len(got) == int(np.count_nonzero(b.x < 32)) and np.all(got.x < 32)
    c = dec.counters
    assert (c.unknown_encoding, c.empty_packets, c.truncated, c.resolution_changes) == (1, 1, 1, 1)
    assert c.time_backwards >= 1 and c.out_of_bounds >= 2
    assert any("evt4" in s for s in c.recent)
    with pytest.raises(DecodeError, match="evt4"):
        pev.StreamDecoder(strict=True).decode(_packet(b, "evt4", payload, tb))


def test_make_decoder_returns_list_and_refuses_unknown_type() -> None:
    b = pev.EventBatch(np.arange(10) * 1000, np.arange(10), np.arange(10), np.ones(10), 16, 16)
    payload, tb = pev.encode_mono(b)
    dec = pev.make_decoder("event_camera_msgs/msg/EventPacket")
    assert [len(x) for x in dec.decode(_packet(b, "mono", payload, tb))] == [10]
    assert dec.decode(_packet(b, "mono", b"", tb)) == []
    with pytest.raises(DecodeError, match="sensor_msgs"):
        pev.make_decoder("sensor_msgs/msg/Image")


def test_evt3_ros_time_anchored_to_first_header(shared_data: Path) -> None:
    with BagReader(shared_data / "bags" / "evt3_640x480") as r:
        msgs = [r.deserialize(m) for m in r.messages()]
    ros = pev.StreamDecoder()
    sensor = pev.StreamDecoder(time_mode=pev.TimeMode.SENSOR)
    a = pev.EventBatch.concat([ros.decode(m) for m in msgs])
    s = pev.EventBatch.concat([sensor.decode(m) for m in msgs])
    stamp0 = msgs[0].header.stamp.sec * 10**9 + msgs[0].header.stamp.nanosec
    assert int(a.t_ns[0]) == stamp0
    np.testing.assert_array_equal(a.t_ns - s.t_ns, np.full(len(a), stamp0 - int(s.t_ns[0])))


def test_aedat4_file(shared_data: Path) -> None:
    b = pev.read_aedat4(shared_data / "aedat4" / "dvxplorer_320x240_person.aedat4")
    assert (b.width, b.height) == (320, 240) and len(b) > 100_000
    b.validate()
    assert 0.5e9 < int(b.t_ns[-1] - b.t_ns[0]) < 0.7e9  # 0.59 s recording
    with pytest.raises(DecodeError, match="no such"):
        pev.read_aedat4(shared_data / "aedat4" / "missing.aedat4")


@pytest.mark.parametrize("name", ["evt3_640x480", "evt3_1280x720_trigger", "event_array_legacy_640x480"])
def test_evt3_fast_path_equals_general_decoder(shared_data: Path, name: str) -> None:
    """The vector-free fast path and the general decoder agree packet by packet (events, triggers, state)."""
    from hstnn_ros.perception.events.codecs import _decode_evt3_general

    with BagReader(shared_data / "bags" / name) as r:
        payloads = [np.asarray(r.deserialize(m).events, np.uint8) for m in r.messages()]
    fast, gen = pev.Evt3State(), pev.Evt3State()
    for pl in payloads[:200]:
        a = pev.decode_evt3(pl, fast)
        b = _decode_evt3_general(pl.view("<u2"), gen, [])
        for col in ("t_ns", "x", "y", "p", "trig_t_ns", "trig_id", "trig_edge"):
            np.testing.assert_array_equal(getattr(a, col), getattr(b, col), err_msg=col)
        assert (fast.high, fast.low, fast.y) == (gen.high, gen.low, gen.y)


def _reference_evt3(words: np.ndarray, st: dict) -> list[tuple[int, int, int, int]]:
    """Word-by-word evt3 reference (slow, obvious): (t_us, x, y, p) per event."""
    out = []
    for wd in words.tolist():
        code, v = wd >> 12, wd & 0xFFF
        if code == 0x8:
            if st["th"] is not None and v < (st["th"] & 0xFFF) - 2048:
                st["epoch"] += 1
            st["th"] = (st["epoch"] << 12) | v
            st["tl"] = 0
        elif code == 0x6:
            st["tl"] = v
        elif code == 0x0:
            st["y"] = v & 0x7FF
        elif code == 0x2 and st["th"] is not None:
            out.append(((st["th"] << 12) + st["tl"], v & 0x7FF, st["y"], v >> 11 & 1))
        elif code == 0x3:
            st["bx"], st["pol"] = v & 0x7FF, v >> 11 & 1
        elif code in (0x4, 0x5):
            nb = 12 if code == 0x4 else 8
            if st["th"] is not None:
                out += [((st["th"] << 12) + st["tl"], st["bx"] + i, st["y"], st["pol"]) for i in range(nb)
                        if v >> i & 1]
            st["bx"] += nb
    return out


def _reference_cmp(words: np.ndarray, st: dict) -> list[tuple[int, int, int, int]]:
    """Word-by-word libcaer_cmp reference: (t_us offset, x, y, p) per event."""
    out, th, tl, by, pol = [], 0, 0, 0, 0
    for wd in words.tolist():
        code, v = wd >> 12, wd & 0xFFF
        if code == 0:
            th = v
        elif code == 1:
            tl = v
        elif code == 2:
            st["x"] = v & 0x7FF
        elif code == 3 and st["x"] >= 0:
            out.append(((th << 12) | tl, st["x"], v & 0x7FF, v >> 11 & 1))
        elif code == 4:
            by, pol = v & 0x7FF, v >> 11 & 1
        elif code == 5:
            if st["x"] >= 0:
                out += [((th << 12) | tl, st["x"], by + i, pol) for i in range(8) if v >> i & 1]
            by += 8
    return out


@pytest.mark.parametrize("name", ["evt3_640x480", "libcaer_cmp_davis346_mcap"])
def test_vectorised_decoders_equal_word_by_word_reference(shared_data: Path, name: str) -> None:
    with BagReader(shared_data / "bags" / name) as r:
        msgs = [r.deserialize(m) for m, _ in zip(r.messages(), range(12), strict=False)]
    evt3 = msgs[0].encoding == "evt3"
    state, ref_state = (pev.Evt3State(), {"th": None, "tl": 0, "y": 0, "bx": 0, "pol": 0, "epoch": 0}) if evt3 \
        else (pev.LibcaerCmpState(), {"x": -1})
    for m in msgs:
        words = np.frombuffer(np.asarray(m.events, np.uint8).tobytes(), "<u2")
        if evt3:
            got = pev.decode_evt3(m.events, state)
            ref = _reference_evt3(words, ref_state)
            t = got.t_ns // 1000
        else:
            got = pev.decode_libcaer_cmp(m.events, 0, state)
            ref = _reference_cmp(words, ref_state)
            t = got.t_ns // 1000
        assert list(zip(t.tolist(), got.x.tolist(), got.y.tolist(), got.p.tolist(), strict=True)) == ref


@SETTINGS
@given(b=batches(max_span_us=4_000_000), n_trig=st.integers(0, 20), seed=st.integers(0, 2**31),
       use_vectors=st.booleans())
def test_evt3_trigger_round_trip(b: pev.EventBatch, n_trig: int, seed: int, use_vectors: bool) -> None:
    rng = np.random.default_rng(seed)
    t0 = int(b.t_ns[0]) if len(b) else 0
    tt = np.sort(t0 + rng.integers(0, 4_000_000, n_trig) * 1000)
    tid, edge = rng.integers(0, 16, n_trig), rng.integers(0, 2, n_trig)
    payload, _ = pev.encode_evt3(b, triggers=(tt, tid, edge), use_vectors=use_vectors)
    got = pev.decode_evt3(payload, pev.Evt3State())
    assert not got.problems
    np.testing.assert_array_equal(got.x, b.x)
    np.testing.assert_array_equal(got.y, b.y)
    np.testing.assert_array_equal(got.trig_id, tid)
    np.testing.assert_array_equal(got.trig_edge, edge)
    np.testing.assert_array_equal(got.trig_t_ns // 1000 % (1 << 24), tt // 1000 % (1 << 24))
    np.testing.assert_array_equal(got.t_ns // 1000 % (1 << 24), b.t_ns // 1000 % (1 << 24))


@pytest.mark.parametrize("name", sorted(BAGS))
def test_decode_many_equals_message_by_message(shared_data: Path, name: str) -> None:
    with BagReader(shared_data / "bags" / name) as r:
        msgs = [r.deserialize(m) for m in r.messages()]
    one = pev.StreamDecoder()
    ref = pev.EventBatch.concat([one.decode(m) for m in msgs])
    many = pev.StreamDecoder()
    got = pev.EventBatch.concat([many.decode_many(msgs[:7]), many.decode_many(msgs[7:])])
    for col in ("t_ns", "x", "y", "p"):
        np.testing.assert_array_equal(getattr(got, col), getattr(ref, col))
    assert many.counters.summary() == one.counters.summary()


_EVT3_SCALAR_CODES = [0x0, 0x1, 0x2, 0x6, 0x7, 0x8, 0x9, 0xA, 0xB, 0xE, 0xF]  # every evt3 code but the vector ones


@settings(max_examples=120, deadline=None)
@given(codes=st.lists(st.sampled_from(_EVT3_SCALAR_CODES), max_size=300), seed=st.integers(0, 2**31),
       cut=st.floats(0, 1))
def test_evt3_compiled_pass_equals_vectorised_decoder_on_any_word_stream(codes: list[int], seed: int,
                                                                         cut: float) -> None:
    """Random vector-free word streams (wraps, backward steps, untimed events, unknown codes, triggers), split in
    two packets: the compiled pass and the numpy decoder give the same events, triggers, notes and carried state."""
    from hstnn_ros.perception.events.codecs import _decode_evt3_general

    rng = np.random.default_rng(seed)
    words = ((np.asarray(codes, np.uint16) << 12) | rng.integers(0, 4096, len(codes)).astype(np.uint16)).astype("<u2")
    k = int(cut * len(words))
    fast, gen = pev.Evt3State(), pev.Evt3State()
    for part in (words[:k], words[k:]):
        a = pev.decode_evt3(part.tobytes(), fast)
        b = _decode_evt3_general(part, gen, [])
        for col in ("t_ns", "x", "y", "p", "trig_t_ns", "trig_id", "trig_edge"):
            np.testing.assert_array_equal(getattr(a, col), getattr(b, col), err_msg=col)
        assert a.problems == b.problems
        assert (fast.high, fast.y) == (gen.high, gen.y)
        if fast.high >= 0:
            assert fast.low == gen.low


@settings(max_examples=120, deadline=None)
@given(codes=st.lists(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 9, 15]), max_size=300), seed=st.integers(0, 2**31),
       cut=st.floats(0, 1), base=st.integers(0, 2**40))
def test_libcaer_cmp_compiled_pass_equals_word_by_word_reference(codes: list[int], seed: int, cut: float,
                                                                 base: int) -> None:
    """Random word streams (vectors, untimed events, unsupported codes) split in two packets."""
    rng = np.random.default_rng(seed)
    words = ((np.asarray(codes, np.uint16) << 12) | rng.integers(0, 4096, len(codes)).astype(np.uint16)).astype("<u2")
    k = int(cut * len(words))
    state, ref_state = pev.LibcaerCmpState(), {"x": -1}
    for part in (words[:k], words[k:]):
        got = pev.decode_libcaer_cmp(part.tobytes(), base, state)
        ref = _reference_cmp(part, ref_state)
        assert list(zip(((got.t_ns - base) // 1000).tolist(), got.x.tolist(), got.y.tolist(), got.p.tolist(),
                        strict=True)) == ref
        assert state.x == ref_state["x"]
        unsupported = int(np.count_nonzero((part >> 12) > 5))
        assert (f"libcaer_cmp: {unsupported} words with unsupported codes ignored" in got.problems) == (unsupported > 0)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 200), seed=st.integers(0, 2**31), last=st.integers(-5, 50))
def test_stream_checks_drop_outside_and_backwards_events(n: int, seed: int, last: int) -> None:
    """The compiled stream check equals its definition: drop events outside the sensor, and events earlier than
    the running maximum of every earlier time in the stream (kept or not)."""
    from hstnn_ros.perception.events.kernels import check_events

    rng = np.random.default_rng(seed)
    t = rng.integers(0, 60, n).astype(np.int64)
    x, y = rng.integers(0, 12, n).astype(np.uint16), rng.integers(0, 9, n).astype(np.uint16)
    keep, outside, back, bx, by, new_last = check_events(t, x, y, 10, 8, last)
    inside = (x < 10) & (y < 8)
    run = np.maximum.accumulate(np.concatenate([[last], t]))[:-1]
    want = inside & (t >= run)
    np.testing.assert_array_equal(keep, want)
    assert outside == int((~inside).sum()) and back == int((inside & (t < run)).sum())
    if outside:
        assert (bx, by) == (x[~inside][0], y[~inside][0])
    assert new_last == max(last, int(t[want][-1]) if want.any() else last)


def test_kernels_work_where_numba_has_no_writable_cache() -> None:
    """A read-only install with no writable home: numba finds no cache location (simulated by allowing only its
    zip locator), which must not break the import; the kernels compile in memory and decode the same."""
    import os
    import subprocess
    import sys

    code = """
import warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from hstnn_ros.perception import events as pev
print("WARNED", *{str(w.message) for w in caught if w.category is RuntimeWarning})
import numpy as np
b = pev.EventBatch(np.arange(50, dtype=np.int64) * 7000, np.arange(50) % 30, np.arange(50) % 20, np.arange(50) % 2,
                   32, 24)
d = pev.decode_libcaer(*pev.ENCODERS["libcaer"](b))  # the smallest kernel: compiling them all takes seconds
assert (d.x == b.x).all() and (d.y == b.y).all() and (d.p == b.p).all() and (d.t_ns == b.t_ns).all()
print("DECODED")
"""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "ZipCacheLocator",
           "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert "WARNED no writable numba cache location" in out.stdout and "DECODED" in out.stdout


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 300), seed=st.integers(0, 2**31), tb=st.integers(0, 2**62), cut=st.integers(0, 7))
def test_libcaer_compiled_pass_equals_vectorised_definition(n: int, seed: int, tb: int, cut: int) -> None:
    """The compiled libcaer pass equals its numpy definition (any data words, stamps with rollovers): a stamp more
    than half the 31-bit range below its predecessor is a rollover (+2**31 us); a smaller step back is not."""
    rng = np.random.default_rng(seed)
    a = np.empty(n, np.dtype([("data", "<u4"), ("ts", "<i4")]))
    a["data"] = rng.integers(0, 2**32, n, dtype=np.uint32)
    a["ts"] = rng.integers(-(2**31), 2**31, n) if rng.random() < 0.3 else np.sort(rng.integers(0, 2**31, n))[
        (np.arange(n) + rng.integers(0, max(n, 1))) % max(n, 1)]
    got = pev.decode_libcaer(a.tobytes() + b"\0" * cut, tb)
    ts, d = a["ts"].astype(np.int64), a["data"]
    roll = np.concatenate([[0], np.cumsum(ts[1:] < ts[:-1] - 2**30)]) if n else np.zeros(0, np.int64)
    np.testing.assert_array_equal(got.t_ns, tb + (ts + (roll << 31)) * 1000)
    for col, want in (("x", (d >> 17) & 0x7FFF), ("y", (d >> 2) & 0x7FFF), ("p", (d >> 1) & 1)):
        np.testing.assert_array_equal(getattr(got, col), want)
    assert bool(got.problems) == bool(cut)


def test_warm_up_loads_the_kernels_real_streams_use(shared_data: Path) -> None:
    """After ``warm_up`` no kernel compiles or loads again when real recordings are decoded (as CDR bytes and as
    message objects): the warm-up took the same argument types as real messages, so a node's or replay's first
    message does not wait for the kernels. A fresh process, so that nothing was loaded before."""
    import os
    import subprocess
    import sys

    code = f"""
from pathlib import Path
from numba.core.registry import CPUDispatcher
from hstnn_ros.bags import BagReader
from hstnn_ros.perception import events as pev
from hstnn_ros.perception.events import kernels
dispatchers = {{n: f for n, f in vars(kernels).items() if isinstance(f, CPUDispatcher) and n[0] != "_"}}
assert all(not f.signatures for f in dispatchers.values())
assert pev.warm_up() > 0 and pev.warm_up() == 0.0
loaded = {{n: len(f.signatures) for n, f in dispatchers.items()}}
assert all(loaded.values()), loaded
for bag in sorted(Path({str(shared_data / "bags")!r}).iterdir()):
    by_bytes, by_object = pev.StreamDecoder(), pev.StreamDecoder()
    with BagReader(bag) as r:
        for i, m in enumerate(r.messages()):
            by_bytes.decode(m.msgtype, m.data)
            by_object.decode(r.deserialize(m))
            if i == 20:
                break
    assert by_bytes.counters.events > 0 and by_object.counters.events > 0, bag
after = {{n: len(f.signatures) for n, f in dispatchers.items()}}
assert after == loaded, (bag, loaded, after)
print("OK")
"""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr
