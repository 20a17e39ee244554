"""AEDAT4 files and live iniVation cameras through dv-processing, as ``EventBatch``es.

dv-processing reads intact files. It hangs or crashes the process on some damaged ones (a flipped byte in an LZ4 frame
header or in the file data table makes ``getNextEventBatch`` spin forever), and a C++ call cannot be interrupted from
Python, so every file is checked first, at the level dv-processing trusts (``_scan``: Python, the events of each packet
in one compiled pass, ``kernels.aedat_events_ok``):

- the header (magic, the ``IOHeader`` flatbuffer: compression, data-table position, the XML stream descriptions);
- every packet: its stream id is one the header declares, its size lies inside the file, it decompresses (python
  ``lz4``/``zstandard``, output bounded) to a size-prefixed flatbuffer with the stream's type identifier whose root
  table, vtable and element vector lie inside the buffer; event packets also hold sane events (inside the sensor,
  polarity 0/1, time never decreasing inside the packet) that agree with the data table's count and time range;
- the data table: it decompresses, lists exactly the packets found, at their offsets.

An intact file goes to dv-processing as it is. A damaged one never does: the intact packets (those before the damage,
and those after it when the data table still locates them) are copied into a temporary file without a data table,
which dv-processing reads sequentially; then ``DecodeError`` names the file, the damage and what was lost.
"""

from __future__ import annotations

import io
import logging
import mmap
import os
import struct
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hstnn_ros.perception.errors import DamagedFileError, DecodeError
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.kernels import aedat_events_ok

LOG = logging.getLogger(__name__)

_MAGIC = b"#!AER-DAT4.0\r\n"
_EVENTS = "EVTS"
#: The flatbuffers ``Event`` struct of an ``EventPacket``: int64 timestamp (us), int16 x, int16 y, bool polarity.
_EVENT_DT = np.dtype({"names": ["timestamp", "x", "y", "polarity"], "formats": ["<i8", "<i2", "<i2", "u1"],
                      "offsets": [0, 8, 10, 12], "itemsize": 16})
_Buf = bytes | mmap.mmap
#: LZ4 and zstd compress at most ~255:1; a packet claiming more is damaged (bounds the memory a bad header costs).
_MAX_RATIO = 256


@dataclass
class _Stream:
    type_id: str
    width: int = 0
    height: int = 0


@dataclass
class _Scan:
    """What ``_scan`` found: the streams, the intact packets as (offset, total size incl. the 8-byte packet header,
    stream id), the packet region's start and the damage found (None: the file is intact)."""

    streams: dict[int, _Stream]
    compression: int
    data_start: int
    table_pos: int  #: byte offset of the data table (-1: none)
    packets: list[tuple[int, int, int]] = field(default_factory=list)
    damage: str | None = None
    lost_packets: int = 0
    lost_events: int | None = 0  #: events in the damaged packets per the data table (None: unknown)


class _BadError(Exception):
    """Internal: one structural check failed (the message says which)."""


def _u32(buf: bytes, at: int) -> int:
    if at < 0 or at + 4 > len(buf):
        raise _BadError(f"offset {at} outside a {len(buf)}-byte flatbuffer")
    return struct.unpack_from("<I", buf, at)[0]


def _table(buf: bytes, at: int) -> tuple[int, list[int]]:
    """Field offsets of the flatbuffer table at ``at`` (0 = field absent), all checked to lie inside ``buf``."""
    vt = at - struct.unpack_from("<i", buf, at)[0] if 0 <= at <= len(buf) - 4 else -1
    if vt < 0 or vt + 4 > len(buf):
        raise _BadError(f"vtable of the table at {at} outside the buffer")
    vsize, tsize = struct.unpack_from("<HH", buf, vt)
    if vsize < 4 or vsize % 2 or vt + vsize > len(buf) or at + tsize > len(buf):
        raise _BadError(f"vtable at {vt} of size {vsize} (table {tsize}) does not fit the buffer")
    fields = list(struct.unpack_from(f"<{(vsize - 4) // 2}H", buf, vt + 4))
    if any(f and (f < 4 or f >= tsize) for f in fields):
        raise _BadError(f"field offsets {fields} outside the table of size {tsize}")
    return at, fields


def _vector(buf: bytes, table: int, fo: int, item: int) -> tuple[int, int]:
    """(start, length) of the vector field at ``table + fo`` whose elements take ``item`` bytes."""
    ref = table + fo
    start = ref + _u32(buf, ref)
    n = _u32(buf, start)
    if start + 4 + n * item > len(buf):
        raise _BadError(f"vector of {n} x {item} bytes at {start} overruns the {len(buf)}-byte buffer")
    return start + 4, n


def _root(buf: bytes, ident: str, size_prefixed: bool) -> tuple[bytes, int, list[int]]:
    """The root table of a flatbuffer (size-prefixed as packets are, or not as the IOHeader) with identifier
    ``ident``; returns the buffer without prefix, the root table offset and its field offsets."""
    if size_prefixed:
        if _u32(buf, 0) != len(buf) - 4:
            raise _BadError(f"size prefix {_u32(buf, 0)} != {len(buf) - 4} bytes")
        buf = buf[4:]
    if len(buf) < 8 or buf[4:8] != ident.encode("ascii", "replace"):
        raise _BadError(f"type identifier {buf[4:8]!r}, expected {ident!r}")
    table, fields = _table(buf, _u32(buf, 0))
    return buf, table, fields


def _decompress(data: bytes, compression: int) -> bytes:
    """A packet's flatbuffer (``_BadError`` if it does not decompress completely within the ratio bound)."""
    cap = _MAX_RATIO * len(data) + 65536
    if compression == 0:
        return data
    try:
        if compression in (1, 2):
            import lz4.frame  # noqa: PLC0415

            d = lz4.frame.LZ4FrameDecompressor()
            out = d.decompress(data, max_length=cap)
            if not d.eof or d.unused_data:
                raise _BadError("LZ4 frame incomplete, longer than its packet or beyond the size bound")
            return out
        if compression in (3, 4):
            import zstandard  # noqa: PLC0415

            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as r:
                out = r.read(cap + 1)
            if len(out) > cap:
                raise _BadError("zstd frame beyond the size bound")
            return out
    except _BadError:
        raise
    except Exception as exc:  # the codecs raise their own error types on damaged frames
        raise _BadError(f"undecompressible packet ({type(exc).__name__}: {exc})") from exc
    raise _BadError(f"unknown compression {compression}")


def _header(b: _Buf, path: Path) -> _Scan:
    if b[:len(_MAGIC)] != _MAGIC:
        raise DecodeError(f"{path}: not an AEDAT4 file (no '#!AER-DAT4.0' header)")
    try:
        size = struct.unpack_from("<i", b, len(_MAGIC))[0] if len(b) >= len(_MAGIC) + 4 else -1
        start = len(_MAGIC) + 4
        if size <= 0 or start + size > len(b):
            raise _BadError(f"IOHeader size {size} does not fit the {len(b)}-byte file")
        hb, table, f = _root(b[start:start + size], "IOHE", size_prefixed=False)
        f += [0] * (3 - len(f))
        compression = struct.unpack_from("<i", hb, table + f[0])[0] if f[0] else 0
        table_pos = struct.unpack_from("<q", hb, table + f[1])[0] if f[1] else -1
        if not f[2]:
            raise _BadError("IOHeader has no stream description")
        text, n = _vector(hb, table, f[2], 1)
        streams = _streams(hb[text:text + n].decode("utf-8", "replace"))
    except (_BadError, struct.error, ET.ParseError, ValueError) as exc:
        raise DamagedFileError(f"{path}: damaged AEDAT4 header, nothing recoverable ({exc})",
                               EventBatch.empty(1, 1)) from exc
    return _Scan(streams, compression, start + size, table_pos)


def _streams(xml: str) -> dict[int, _Stream]:
    """Stream id -> type identifier (and sensor size for event streams) from the IOHeader's XML description."""
    out: dict[int, _Stream] = {}
    root = ET.fromstring(xml)
    for node in root.iter("node"):
        if not node.get("name", "").isdigit() or "outInfo" not in node.get("path", ""):
            continue
        attrs = {a.get("key"): (a.text or "") for a in node.findall("attr")}
        if "typeIdentifier" not in attrs:
            continue
        s = _Stream(attrs["typeIdentifier"])
        info = node.find("node[@name='info']")
        if info is not None:
            sub = {a.get("key"): (a.text or "") for a in info.findall("attr")}
            s.width = int(sub.get("sizeX") or 0)
            s.height = int(sub.get("sizeY") or 0)
        out[int(node.get("name", "0"))] = s
    if not out:
        raise _BadError("no streams declared")
    return out


def _data_table(b: _Buf, pos: int, compression: int) -> list[tuple[int, int, int, int, int, int]]:
    """The file data table: (byte offset of the packet body, stream id, size, elements, first and last time)."""
    buf, table, f = _root(_decompress(b[pos:], compression), "FTAB", size_prefixed=True)
    if not f or not f[0]:
        return []
    start, n = _vector(buf, table, f[0], 4)
    rows = []
    for k in range(n):
        ref = start + 4 * k
        t, ff = _table(buf, ref + _u32(buf, ref))
        ff += [0] * (5 - len(ff))
        off = struct.unpack_from("<q", buf, t + ff[0])[0] if ff[0] else 0
        sid, size = struct.unpack_from("<ii", buf, t + ff[1]) if ff[1] else (0, 0)
        vals = [struct.unpack_from("<q", buf, t + ff[i])[0] if ff[i] else 0 for i in (2, 3, 4)]
        rows.append((off, sid, size, *vals))
    return rows


def _check_packet(b: _Buf, pos: int, end: int, scan: _Scan, table_row: tuple | None) -> tuple[int, int]:
    """Validate the packet at ``pos`` (8-byte header + body); returns its total size and stream id."""
    if pos + 8 > end:
        raise _BadError(f"packet header at byte {pos} cut short")
    sid, size = struct.unpack_from("<ii", b, pos)
    if sid not in scan.streams:
        raise _BadError(f"packet at byte {pos} has unknown stream id {sid} (declared: {sorted(scan.streams)})")
    if size <= 0 or pos + 8 + size > end:
        raise _BadError(f"packet at byte {pos} claims {size} bytes, past the packet region's end {end}")
    stream = scan.streams[sid]
    buf, table, f = _root(_decompress(b[pos + 8:pos + 8 + size], scan.compression), stream.type_id,
                          size_prefixed=True)
    if stream.type_id != _EVENTS:
        return 8 + size, sid
    if f and f[0]:
        start, n = _vector(buf, table, f[0], _EVENT_DT.itemsize)
        ok, first, last = aedat_events_ok(np.frombuffer(buf, np.uint8), start, n, stream.width, stream.height)
        if not ok:
            raise _BadError(f"event packet at byte {pos} holds impossible events (outside the sensor, polarity > 1 or "
                            "time going back)")
        if table_row is not None and n and (table_row[3], table_row[4], table_row[5]) != (n, first, last):
            raise _BadError(f"event packet at byte {pos} disagrees with the data table (count/time range)")
    return 8 + size, sid


#: Magic numbers that start a compressed packet body (LZ4 frame, zstd frame): where the walk looks for the next
#: packet after a damaged one when the data table cannot say.
_FRAME_MAGIC = {1: b"\x04\x22\x4d\x18", 2: b"\x04\x22\x4d\x18", 3: b"\x28\xb5\x2f\xfd", 4: b"\x28\xb5\x2f\xfd"}


def _candidates(b: _Buf, pos: int, end: int, compression: int, table_offsets: list[int]) -> Iterator[int]:
    """Where the packet after a damaged one at ``pos`` may start, in file order: the data table's offsets, the end
    its own (possibly damaged) size field claims, and every compressed-frame magic number after it."""
    found: set[int] = {o for o in table_offsets if pos < o < end}
    if pos + 8 <= end:
        claimed = pos + 8 + struct.unpack_from("<i", b, pos + 4)[0]
        if pos < claimed < end:
            found.add(claimed)
    magic = _FRAME_MAGIC.get(compression)
    at = pos + 9
    while magic is not None:
        at = b.find(magic, at, end)
        if at < 0:
            break
        found.add(at - 8)
        at += 1
    yield from sorted(found)


def _scan(path: Path) -> _Scan:
    """Check the whole file (see the module docstring); raises ``DamagedFileError`` only if the header is damaged.
    After a damaged packet the walk goes on at the next position (``_candidates``) where a packet checks out, so
    a damaged packet costs itself (and the bytes up to that packet)."""
    with path.open("rb") as fh:
        if path.stat().st_size == 0:
            raise DecodeError(f"{path}: empty file, not an AEDAT4 recording")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as b:
            return _scan_bytes(b, path)


def _scan_bytes(b: _Buf, path: Path) -> _Scan:
    scan = _header(b, path)
    table_pos = scan.table_pos
    end = table_pos if 0 <= table_pos <= len(b) else len(b)
    table: list[tuple[int, int, int, int, int, int]] | None = None
    problems = []
    if 0 <= table_pos < len(b):
        try:
            table = _data_table(b, table_pos, scan.compression)
        except (_BadError, struct.error) as exc:
            problems.append(f"data table at byte {table_pos} damaged ({exc})")
    elif table_pos >= len(b):
        problems.append(f"data table position {table_pos} beyond the {len(b)}-byte file (cut short?)")
    by_offset = {row[0] - 8: row for row in table or []}
    damaged: list[int] = []
    pos = scan.data_start
    while pos < end:
        try:
            size, sid = _check_packet(b, pos, end, scan, by_offset.get(pos))
        except (_BadError, struct.error) as exc:
            damaged.append(pos)
            if len(problems) < 4:
                problems.append(f"packet at byte {pos}: {exc}")
            for nxt in _candidates(b, pos, end, scan.compression, sorted(by_offset)):
                try:
                    size, sid = _check_packet(b, nxt, end, scan, by_offset.get(nxt))
                except (_BadError, struct.error):
                    continue
                pos = nxt
                break
            else:
                break
        scan.packets.append((pos, size, sid))
        pos += size
    if damaged:
        if len(damaged) > len(problems):
            problems.append(f"{len(damaged)} damaged packets in all")
        kept = {p for p, _, _ in scan.packets}
        evts = {sid for sid, st in scan.streams.items() if st.type_id == _EVENTS}
        lost = [r for r in table or [] if r[0] - 8 not in kept]
        scan.lost_packets = len(lost) if table else len(damaged)
        scan.lost_events = sum(r[3] for r in lost if r[1] in evts) if table else None
    elif table is not None and [(r[0] - 8, 8 + r[2], r[1]) for r in sorted(table)] != scan.packets:
        problems.append("the data table does not list the packets the file holds")
    scan.damage = "; ".join(problems) or None
    return scan


def _repaired_copy(path: Path, scan: _Scan) -> Path:
    """A temporary AEDAT4 file of the header and the intact event packets, without a data table (dv-processing then
    reads it sequentially, parsing every packet: only event packets are checked deeply enough for that)."""
    with path.open("rb") as fh:
        head = bytearray(fh.read(scan.data_start))
    hb_start = len(_MAGIC) + 4
    _, table, f = _root(bytes(head[hb_start:]), "IOHE", size_prefixed=False)
    if len(f) > 1 and f[1]:
        struct.pack_into("<q", head, hb_start + table + f[1], -1)  # no data table
    fd, name = tempfile.mkstemp(suffix=".aedat4", prefix="hstnn_repaired_")
    with os.fdopen(fd, "wb") as out, path.open("rb") as src:
        out.write(head)
        for pos, size, sid in sorted(scan.packets):
            if scan.streams[sid].type_id == _EVENTS:
                src.seek(pos)
                out.write(src.read(size))
    return Path(name)


def _to_batch(store: object, width: int, height: int) -> EventBatch:
    a = store.numpy()  # type: ignore[attr-defined]  # structured: timestamp (us), x, y, polarity
    return EventBatch(a["timestamp"].astype(np.int64) * 1000, a["x"], a["y"], a["polarity"], width, height)


def _read(file: Path, shown: Path) -> Iterator[EventBatch]:
    import dv_processing as dv  # noqa: PLC0415

    try:
        rec = dv.io.MonoCameraRecording(str(file))
    except (RuntimeError, MemoryError) as exc:
        raise DecodeError(f"{shown}: not a readable AEDAT4 file ({exc})") from exc
    if not rec.isEventStreamAvailable():
        raise DecodeError(f"{shown}: AEDAT4 file has no event stream")
    res = rec.getEventResolution()
    if res is None:
        raise DecodeError(f"{shown}: AEDAT4 event stream declares no sensor size (sizeX/sizeY)")
    w, h = res
    while True:
        store = rec.getNextEventBatch()
        if store is None:
            return
        if store.size():
            yield _to_batch(store, w, h)


def iter_aedat4(path: Path | str) -> Iterator[EventBatch]:
    """The event stream of an AEDAT4 file as batches (as stored), times in ns since the epoch. A damaged file yields
    the events of its intact packets, then raises ``DamagedFileError`` (a ``DecodeError``) naming the file and the
    damage; it never hangs (see the module docstring)."""
    p = Path(path)
    if not p.is_file():
        raise DecodeError(f"{p}: no such AEDAT4 file")
    scan = _scan(p)
    if scan.damage is None:
        yield from _read(p, p)
        return
    repaired = _repaired_copy(p, scan)
    n = 0
    try:
        for batch in _read(repaired, p):
            n += len(batch)
            yield batch
    finally:
        repaired.unlink(missing_ok=True)
    lost = (f"{scan.lost_packets} damaged packet(s), event count unknown (no usable data table)"
            if scan.lost_events is None else f"{scan.lost_packets} packet(s) with {scan.lost_events} events")
    ev = [st for st in scan.streams.values() if st.type_id == _EVENTS]
    raise DamagedFileError(f"{p}: damaged AEDAT4 file ({scan.damage}); {n} events of the intact packets were read "
                           f"(recovery: the intact event packets re-read by dv-processing from a copy without the "
                           f"damaged parts); lost: {lost}",
                           EventBatch.empty(max(ev[0].width, 1), max(ev[0].height, 1)) if ev else None)


def read_aedat4(path: Path | str) -> EventBatch:
    """All events of an AEDAT4 file in one batch. A damaged file raises ``DamagedFileError`` whose ``recovered``
    holds the events of its intact packets."""
    batches: list[EventBatch] = []
    try:
        batches.extend(iter_aedat4(path))
    except DamagedFileError as exc:
        exc.recovered = EventBatch.concat(batches) if batches else exc.recovered
        raise
    if not batches:
        raise DecodeError(f"{path}: AEDAT4 file holds no events")
    return EventBatch.concat(batches)
