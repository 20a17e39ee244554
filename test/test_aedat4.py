"""AEDAT4 files: the real recording reads as dv-processing reads it, and damaged copies end in a DecodeError naming the
file, in bounded time, with every intact event packet kept (dv-processing alone hangs or crashes on many of them)."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hstnn_ros.perception import DamagedFileError, DecodeError
from hstnn_ros.perception import events as pev

AEDAT = Path("aedat4") / "dvxplorer_320x240_person.aedat4"
MAGIC = b"#!AER-DAT4.0\r\n"


class _Ref:
    """The intact file: its bytes, its packets ``(start, end, stream id)`` walked as the AEDAT4 format lays them out
    (an int32 stream id and int32 size before each packet, after the header) and, per event packet, the batch
    dv-processing reads from it."""

    def __init__(self, path: Path) -> None:
        import dv_processing as dv

        self.raw = path.read_bytes()
        pos = len(MAGIC) + 4 + struct.unpack_from("<i", self.raw, len(MAGIC))[0]
        self.data_start = pos
        self.packets: list[tuple[int, int, int]] = []
        while pos + 8 <= len(self.raw):
            sid, size = struct.unpack_from("<ii", self.raw, pos)
            if sid not in (0, 2, 3):  # the data table follows the last packet
                break
            self.packets.append((pos, pos + 8 + size, sid))
            pos += 8 + size
        self.table_start = pos
        rec = dv.io.MonoCameraRecording(str(path))
        self.batches = []
        while (store := rec.getNextEventBatch()) is not None:
            a = store.numpy()
            self.batches.append(np.stack([a["timestamp"] * 1000, a["x"], a["y"], a["polarity"]], 1).astype(np.int64))
        self.event_packets = [p for p in self.packets if p[2] == 0]
        assert len(self.event_packets) == len(self.batches)

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return "<intact AEDAT4 file>"

    def events(self, keep: list[bool]) -> np.ndarray:
        rows = [b for b, k in zip(self.batches, keep, strict=True) if k]
        return np.concatenate(rows) if rows else np.zeros((0, 4), np.int64)


@pytest.fixture(scope="module")
def ref(shared_data: Path) -> _Ref:
    return _Ref(shared_data / AEDAT)


def _rows(b: pev.EventBatch) -> np.ndarray:
    return np.stack([b.t_ns, b.x, b.y, b.p], 1).astype(np.int64)


def _read(path: Path) -> tuple[np.ndarray | None, str | None, float]:
    """Events read (None if refused), the error message (None if read cleanly), seconds taken."""
    t0 = time.monotonic()
    try:
        got = pev.read_aedat4(path)
        return _rows(got), None, time.monotonic() - t0
    except DamagedFileError as exc:
        return _rows(exc.recovered) if exc.recovered is not None else None, str(exc), time.monotonic() - t0
    except DecodeError as exc:
        return None, str(exc), time.monotonic() - t0


def test_intact_file_reads_as_dv_processing_reads_it(ref: _Ref, shared_data: Path) -> None:
    got, err, _ = _read(shared_data / AEDAT)
    assert err is None
    np.testing.assert_array_equal(got, ref.events([True] * len(ref.batches)))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", range(4))
def test_hundred_flipped_bytes_end_in_decode_error_naming_the_file(ref: _Ref, tmp_path: Path, seed: int) -> None:
    """The issue's case: 100 random bytes replaced anywhere made dv-processing hang forever (or crash the process)."""
    rng = np.random.default_rng(seed)
    raw = bytearray(ref.raw)
    for at in rng.integers(0, len(raw), 100):
        raw[at] = int(rng.integers(0, 256))
    path = tmp_path / "damaged.aedat4"
    path.write_bytes(bytes(raw))
    got, err, took = _read(path)
    assert err is not None and str(path) in err
    assert took < 30
    if got is not None:  # what is kept is sane
        assert np.all(np.diff(got[:, 0]) >= 0) and got[:, 1].max(initial=0) < 320 and got[:, 2].max(initial=0) < 240


@pytest.mark.timeout(600)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=st.floats(0.0, 1.0), junk=st.binary(min_size=1, max_size=96), cut=st.booleans())
def test_damage_in_one_place_keeps_every_packet_it_does_not_touch(ref: _Ref, tmp_path: Path, where: float,
                                                                  junk: bytes, cut: bool) -> None:
    """Bytes overwritten in one place of the packet region (or the file cut there): the read ends in bounded time,
    in a DecodeError naming the file unless nothing detectable changed, and keeps every event packet before the
    damage exactly; when the file is not cut, every event packet after it too (the data table still finds them)."""
    lo = ref.data_start + int(where * (ref.table_start - ref.data_start - 1))
    raw = bytearray(ref.raw)
    if cut:
        raw = raw[:lo]
    else:
        raw[lo:lo + len(junk)] = junk
    hi = lo + (0 if cut else len(junk))
    path = tmp_path / "damaged.aedat4"
    path.write_bytes(bytes(raw))
    got, err, took = _read(path)
    assert took < 30
    if err is not None:
        assert str(path) in err
    else:
        assert not cut
    before = ref.events([e <= lo for s, e, _ in ref.event_packets])
    assert got is not None
    np.testing.assert_array_equal(got[:len(before)], before)
    if not cut:
        after = ref.events([s >= hi for s, e, _ in ref.event_packets])
        np.testing.assert_array_equal(got[len(got) - len(after):], after)


def test_damaged_header_is_refused_with_nothing_recovered(ref: _Ref, tmp_path: Path) -> None:
    raw = bytearray(ref.raw)
    raw[len(MAGIC) + 4 + 40:len(MAGIC) + 4 + 60] = b"\xff" * 20  # inside the IOHeader flatbuffer / XML
    path = tmp_path / "header.aedat4"
    path.write_bytes(bytes(raw))
    with pytest.raises(DecodeError, match=str(path)):
        pev.read_aedat4(path)
    (tmp_path / "not.aedat4").write_bytes(b"#!AER-DAT3.1\r\n" + b"\0" * 64)
    with pytest.raises(DecodeError, match="not an AEDAT4 file"):
        pev.read_aedat4(tmp_path / "not.aedat4")
