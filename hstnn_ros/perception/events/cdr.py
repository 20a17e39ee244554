"""``dvs_msgs/EventArray`` and ``dv_ros2_msgs/EventArray`` straight from serialized CDR bytes.

Layout after the 4-byte encapsulation header (offsets relative to it, CDR aligns each primitive to its size):
header (int32 sec, uint32 nanosec, string frame_id), uint32 height, uint32 width, uint32 n, then n ``Event``s
(uint16 x, uint16 y, int32 sec, uint32 nanosec, bool polarity). The sequence starts 4-aligned, so the first element
is 14 bytes (x@0 y@2 sec@4 nsec@8 pol@12) and every later one starts at 2 mod 4 and is 16 bytes (x@0 y@2 pad
sec@6 nsec@10 pol@14): one compiled pass over the bytes decodes them (``kernels.dvs_events``). Both endiannesses
are handled.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hstnn_ros.perception.errors import DecodeError
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.kernels import dvs_events

#: Message types decoded by this module.
DVS_MSGTYPES = ("dvs_msgs/msg/EventArray", "dv_ros2_msgs/msg/EventArray")


def _element_dtype(e: str) -> np.dtype:
    """A padded 16-byte ``Event`` element (the layout of every element but the first), for the encoder."""
    return np.dtype({"names": ["x", "y", "sec", "nsec", "pol"],
                     "formats": [e + "u2", e + "u2", e + "i4", e + "u4", "u1"],
                     "offsets": [0, 2, 6, 10, 14], "itemsize": 16})


_ELEMENT = {"<": _element_dtype("<"), ">": _element_dtype(">")}


def _endian(data: bytes | memoryview) -> str:
    if len(data) < 4:
        raise DecodeError(f"dvs EventArray: {len(data)} bytes is shorter than the CDR encapsulation header")
    kind = data[1]
    if data[0] != 0 or kind not in (0, 1):
        raise DecodeError(f"dvs EventArray: unsupported CDR encapsulation {bytes(data[:2]).hex()} "
                          "(expected 0000 big-endian or 0001 little-endian plain CDR)")
    return "<" if kind == 1 else ">"


def decode_dvs_cdr(data: bytes | memoryview) -> tuple[EventBatch, int, str]:
    """Decode a serialized dvs_msgs/dv_ros2_msgs ``EventArray``; returns the batch (ROS time stamps), the header
    stamp in ns and the frame id. Raises ``DecodeError`` for truncated or inconsistent buffers."""
    buf = memoryview(data).cast("B")
    e = _endian(buf)
    body = buf[4:]
    u4 = np.dtype(e + "u4")
    try:
        sec, nsec, slen = np.frombuffer(body, u4, count=3, offset=0)
        slen = int(slen)
        if slen > len(body):
            raise DecodeError(f"dvs EventArray: frame_id length {slen} exceeds the {len(buf)}-byte buffer")
        frame_id = bytes(body[12:12 + max(slen - 1, 0)]).decode("utf-8", "replace")
        off = (12 + slen + 3) & ~3
        height, width, n = (int(v) for v in np.frombuffer(body, u4, count=3, offset=off))
    except ValueError as exc:
        raise DecodeError(f"dvs EventArray: truncated header ({len(buf)} bytes)") from exc
    off += 12
    need = 0 if n == 0 else 14 + 16 * (n - 1) - 1
    if off + need > len(body):
        raise DecodeError(f"dvs EventArray: {n} events need {need} bytes after offset {off + 4}, buffer has "
                          f"{len(body) - off} (truncated message)")
    stamp_ns = int(np.int32(np.uint32(sec))) * 1_000_000_000 + int(nsec)
    if n == 0:
        return EventBatch.empty(width, height), stamp_ns, frame_id
    x, y, t, p = dvs_events(np.frombuffer(body, np.uint8), off, n, e == "<")
    return EventBatch(t, x, y, p, width, height), stamp_ns, frame_id


def encode_dvs_event_array(batch: EventBatch, header: Any = None, typestore: Any = None, *, stamp_ns: int | None = None,
                           frame_id: str = "", big_endian: bool = False) -> bytes:
    """Serialized ``dvs_msgs/EventArray`` (identical bytes for ``dv_ros2_msgs``) for ``batch``, built with numpy.
    The header stamp and frame id come from ``header`` (a std_msgs/Header object) or ``stamp_ns``/``frame_id``
    (default stamp: first event). ``typestore`` is accepted for call compatibility and not needed."""
    del typestore
    if header is not None:
        stamp_ns = int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)
        frame_id = str(header.frame_id)
    if stamp_ns is None:
        stamp_ns = int(batch.t_ns[0]) if len(batch) else 0
    e = ">" if big_endian else "<"
    u4 = np.dtype(e + "u4")
    fid = frame_id.encode() + b"\x00"
    head = np.array([stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000, len(fid)], u4).tobytes() + fid
    head += b"\x00" * ((-len(head)) % 4)
    n = len(batch)
    head += np.array([batch.height, batch.width, n], u4).tobytes()
    parts = [b"\x00\x00" if big_endian else b"\x00\x01", b"\x00\x00", head]
    if n:
        sec = batch.t_ns // 1_000_000_000
        nsec = batch.t_ns % 1_000_000_000
        rec = np.zeros(n, _ELEMENT[e])
        rec["x"], rec["y"], rec["sec"], rec["nsec"], rec["pol"] = batch.x, batch.y, sec, nsec, batch.p
        raw = rec.view(np.uint8).reshape(n, 16)
        first = np.concatenate([raw[0, :4], raw[0, 6:15]])  # the first element is not padded before sec
        parts.append(first.tobytes() + b"\x00" + raw[1:].tobytes()[:-1] if n > 1 else first.tobytes())
    return b"".join(parts)
