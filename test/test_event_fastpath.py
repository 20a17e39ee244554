"""The decoders' fast paths against their reference paths: the compiled plain-packet paths of ``StreamDecoder``
(``kernels.evt3_plain``, per message and in ``decode_many`` runs; ``kernels.libcaer_plain``) against the full path
(``fast=False``), and the CDR field reader (``bags.cdr.read_event_packet``) against rosbags' deserializer. Equal
means everything: every batch's events and sensor size, the triggers, the counters, the carried state and the held
events at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hstnn_ros.bags import BagReader, typestore
from hstnn_ros.bags.cdr import read_event_packet
from hstnn_ros.perception import events as pev
from hstnn_ros.perception.events.codecs import encode_evt3

PACKET = "event_camera_msgs/msg/EventPacket"
EVT3_BAGS = ["event_array_legacy_640x480", "evt3_1280x720_trigger", "evt3_640x480"]
BAGS = [*EVT3_BAGS, "libcaer_640x480_rollover", "libcaer_cmp_davis346_mcap"]
DVS = "dvs_msgs/msg/EventArray"


def _rows(b: pev.EventBatch) -> tuple:
    assert (b.t_ns.dtype, b.x.dtype, b.y.dtype, b.p.dtype) == (np.int64, np.uint16, np.uint16, np.uint8)
    return b.width, b.height, b.t_ns.tolist(), b.x.tolist(), b.y.tolist(), b.p.tolist()


def _trig(dec: pev.StreamDecoder) -> tuple:
    tr = dec.last_triggers
    return tr.t_ns.tolist(), tr.id.tolist(), tr.edge.tolist()


def _state(dec: pev.StreamDecoder) -> tuple:
    ev = dec._evt3
    return (ev.high, ev.low, ev.y, dec._offset_ns, dec._last_t, dec._size, dec._pending_size,
            dec._clock.h.tolist(), dec.counters.summary(), _trig(dec))


def _serialize(stamp: int, w: int, h: int, payload: bytes, *, big: bool = False, enc: str = "evt3",
               time_base: int = 0) -> bytes:
    T = typestore().types
    hdr = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9),
                                   frame_id="cam")
    msg = T[PACKET](header=hdr, height=h, width=w, seq=7, time_base=time_base, encoding=enc, is_bigendian=False,
                    events=np.frombuffer(payload, np.uint8))
    return bytes(typestore().serialize_cdr(msg, PACKET, little_endian=not big))


@st.composite
def evt3_streams(draw: st.DrawFn) -> list[bytes]:
    """8-24 serialized evt3 packets as a metavision driver stamps them (about the first event, jittering), some with
    triggers, some empty or without events, some with a gap, a size change or vector words, then 0-4 damaged bytes
    anywhere (the first packet included)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w, h = 64, 48
    t = 1_700_000_000_000_000_000 + draw(st.sampled_from([0, (1 << 24) - 9000])) * 1000
    msgs = []
    for _ in range(draw(st.integers(8, 24))):
        kind = rng.integers(0, 20)
        span = int(rng.choice([1, 4, 10])) * 1_000_000
        n = 0 if kind == 0 else int(rng.integers(1, 120))
        ts = np.sort(rng.integers(t, t + span, n) // 1000 * 1000)
        size = (w, h) if kind != 1 else (32, 24)
        b = pev.EventBatch(ts, rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n), *size)
        trig = None
        if kind in (2, 3):
            tt = np.sort(rng.integers(t, t + span, 3) // 1000 * 1000)
            trig = (tt, rng.integers(0, 4, 3), rng.integers(0, 2, 3))
        payload, _ = encode_evt3(b, trig, use_vectors=kind == 4)
        if kind == 5:  # words without events
            payload = np.array([(0x8 << 12) | ((t // 1000) >> 12) & 0xFFF], "<u2").tobytes()
        stamp = (int(ts[0]) if n else t) + int(rng.integers(-300_000, 300_000))
        msgs.append(_serialize(stamp, *size, payload))
        t += span + (int(rng.integers(50, 400)) * 1_000_000 if kind == 6 else 0)
    damaged = [bytearray(m) for m in msgs]
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(msgs) - 1))
        damaged[i][draw(st.integers(0, len(damaged[i]) - 1))] = draw(st.integers(0, 255))
    return [bytes(m) for m in damaged]


@st.composite
def other_streams(draw: st.DrawFn, enc: str) -> list[bytes]:
    """8-24 serialized libcaer / libcaer_cmp packets or dvs EventArrays stamped about their last event (as those
    drivers do), some empty, some after a gap or with a size change, then 0-4 damaged bytes anywhere."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w, h = 64, 48
    t = 1_700_000_000_000_000_000
    msgs = []
    for _ in range(draw(st.integers(8, 24))):
        kind = rng.integers(0, 20)
        span = int(rng.choice([1, 4, 10])) * 1_000_000
        n = 0 if kind == 0 else int(rng.integers(1, 120))
        size = (w, h) if kind != 1 else (32, 24)
        ts = np.sort(rng.integers(t, t + span, n) // 1000 * 1000)
        b = pev.EventBatch(ts, rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n), *size)
        stamp = (int(ts[-1]) if n else t) + int(rng.integers(-300_000, 300_000))
        if enc == "dvs":
            msgs.append(pev.encode_dvs_event_array(b, stamp_ns=stamp, frame_id="cam"))
        else:
            payload, tb = pev.ENCODERS[enc](b)
            msgs.append(_serialize(stamp, *size, payload, enc=enc, time_base=tb))
        t += span + (int(rng.integers(50, 400)) * 1_000_000 if kind == 6 else 0)
    damaged = [bytearray(m) for m in msgs]
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(msgs) - 1))
        damaged[i][draw(st.integers(0, len(damaged[i]) - 1))] = draw(st.integers(0, 255))
    return [bytes(m) for m in damaged]


@pytest.mark.parametrize("enc", ["libcaer", "libcaer_cmp", "dvs"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_check_equals_full_path_for_other_encodings(enc: str, data: st.DataObject) -> None:
    """libcaer, libcaer_cmp and dvs arrays from CDR bytes, damaged or not: the fast paths (``kernels.libcaer_plain``,
    ``kernels.plain_check``) return what the full path returns and leave the decoder in the same state."""
    msgs = data.draw(other_streams(enc))
    kind = DVS if enc == "dvs" else PACKET
    fast, full = pev.StreamDecoder(), pev.StreamDecoder(fast=False)
    for m in msgs:
        assert _rows(fast.decode(kind, m)) == _rows(full.decode(kind, m))
        assert _state(fast) == _state(full)
    assert _rows(fast.flush()) == _rows(full.flush())


def _objects(msgs: list[bytes]) -> list[Any]:
    """The messages rosbags can deserialize, as objects."""
    out = []
    for m in msgs:
        try:
            out.append(typestore().deserialize_cdr(m, PACKET))
        except Exception:
            continue
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msgs=evt3_streams(), by_bytes=st.booleans())
def test_fast_path_equals_full_path(msgs: list[bytes], by_bytes: bool) -> None:
    """Message by message (CDR bytes or objects), damaged or not: the fast path returns what the full path returns,
    and leaves the decoder in the same state."""
    fast, full = pev.StreamDecoder(), pev.StreamDecoder(fast=False)
    items = [(PACKET, m) for m in msgs] if by_bytes else [(m, None) for m in _objects(msgs)]
    for a, b in items:
        assert _rows(fast.decode(a, b)) == _rows(full.decode(a, b))
        assert _state(fast) == _state(full)
    assert _rows(fast.flush()) == _rows(full.flush())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msgs=evt3_streams(), cuts=st.lists(st.integers(1, 40), max_size=4))
def test_decode_many_equals_one_by_one(msgs: list[bytes], cuts: list[int]) -> None:
    """``decode_many`` over any split of a (damaged) stream equals the full path message by message (a stream whose
    sensor size changes is not one batch: left out)."""
    objs = _objects(msgs)
    full = pev.StreamDecoder(fast=False)
    ref = [full.decode(m) for m in objs]
    assume(len({(b.width, b.height) for b in ref if len(b)}) <= 1)
    many = pev.StreamDecoder()
    got, at = [], 0
    for c in [*cuts, len(objs)]:
        if at < len(objs):
            got.append(many.decode_many(objs[at:at + c]))
            at += c
    rows = [r for b in ref for r in zip(b.t_ns.tolist(), b.x.tolist(), b.y.tolist(), b.p.tolist(), strict=True)]
    assert [r for b in got for r in zip(b.t_ns.tolist(), b.x.tolist(), b.y.tolist(), b.p.tolist(), strict=True)] \
        == rows
    assert _state(many) == _state(full)


@pytest.mark.parametrize("name", BAGS)
@pytest.mark.parametrize("damage", [False, True])
def test_fast_path_equals_full_path_on_real_bags(shared_data: Path, name: str, damage: bool) -> None:
    """The real recordings, as recorded and with one random byte per packet: equal batches and counters, and
    (undamaged) all but a few packets take the fast path (a stream's first packet, and the packets around the 1-2
    early ones whose tails are held: clock.py)."""
    with BagReader(shared_data / "bags" / name) as r:
        msgs = [(m.msgtype, bytearray(m.data)) for m in r.messages()]
    if damage:
        rng = np.random.default_rng(3)
        for _, d in msgs:
            d[int(rng.integers(0, len(d)))] = int(rng.integers(0, 256))
    fast, full = pev.StreamDecoder(), pev.StreamDecoder(fast=False)
    taken = 0
    plain, columns, libcaer = fast._plain, fast._plain_columns, fast._plain_libcaer

    def counted(*args: Any) -> Any:
        nonlocal taken
        out = plain(*args)
        taken += out[1]
        return out

    def counted_columns(*args: Any) -> Any:
        nonlocal taken
        out = columns(*args)
        taken += out is not None
        return out

    def counted_libcaer(*args: Any) -> Any:
        nonlocal taken
        out = libcaer(*args)
        taken += out is not None
        return out

    fast._plain, fast._plain_columns, fast._plain_libcaer = counted, counted_columns, counted_libcaer
    for t, d in msgs:
        assert _rows(fast.decode(t, bytes(d))) == _rows(full.decode(t, bytes(d)))
    assert _state(fast) == _state(full)
    if not damage:
        assert taken >= len(msgs) - 5


@settings(max_examples=200, deadline=None)
@given(sec=st.integers(-(2**31), 2**31 - 1), nanosec=st.integers(0, 2**32 - 1), frame_id=st.text(max_size=12),
       height=st.integers(0, 2**32 - 1), width=st.integers(0, 2**32 - 1), seq=st.integers(0, 2**64 - 1),
       time_base=st.integers(0, 2**64 - 1), encoding=st.text(max_size=12), big=st.booleans(),
       events=st.binary(max_size=64), cut=st.integers(-8, 8), flip=st.integers(0, 10_000))
def test_cdr_field_reader_equals_rosbags(  # noqa: PLR0917
        sec: int, nanosec: int, frame_id: str, height: int, width: int, seq: int, time_base: int, encoding: str,
        big: bool, events: bytes, cut: int, flip: int) -> None:
    """Random EventPackets, either endianness, also cut short, extended or with a damaged byte: the field reader
    refuses exactly the bytes rosbags refuses, and otherwise gives the same fields (the payload as a view)."""
    T = typestore().types
    hdr = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id)
    msg = T[PACKET](header=hdr, height=height, width=width, seq=seq, time_base=time_base, encoding=encoding,
                    is_bigendian=bool(flip % 2), events=np.frombuffer(events, np.uint8))
    data = bytearray(typestore().serialize_cdr(msg, PACKET, little_endian=not big))
    data = data[:len(data) + cut] if cut < 0 else data + bytes(cut)
    if flip % 3 == 0 and data:
        data[flip % len(data)] ^= 0xFF
    try:
        ref = typestore().deserialize_cdr(bytes(data), PACKET)
    except Exception:
        ref = None
    try:
        got = read_event_packet(bytes(data))
    except ValueError:
        got = None
    assert (got is None) == (ref is None)
    if ref is not None:
        s = ref.header.stamp
        assert got[:8] == (s.sec * 10**9 + s.nanosec, ref.header.frame_id, ref.height, ref.width, ref.seq,
                           ref.time_base, ref.encoding, ref.is_bigendian)
        assert got.events.dtype == np.uint8 and got.events.tobytes() == ref.events.tobytes()
