"""The leading fields of a serialized event message, read or patched in place without deserializing it.

Used by the node (header stamp and ``EventPacket.seq`` of every packet, before decoding: middleware loss and time
jumps), by the bag player (``--renumber-seq``) and by the event decoders (``read_event_packet``: every field of an
``EventPacket`` with the payload as a view of the bytes, ~10x cheaper than deserializing the message object).
CDR layout after the 4-byte encapsulation header (byte 1: 1 = little endian; alignment counts from the end of it):
``int32 sec``, ``uint32 nanosec``, ``string frame_id`` (uint32 length including the NUL, then the bytes), and for
``event_camera_msgs/msg/EventPacket`` then ``uint32 height``, ``uint32 width``, ``uint64 seq`` (aligned to 8),
``uint64 time_base``, ``string encoding``, ``bool is_bigendian``, ``uint8[] events`` (uint32 count, then the bytes);
legacy ``event_array_msgs/msg/EventArray`` has the same layout.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

EVENT_PACKET = "event_camera_msgs/msg/EventPacket"


@dataclass(frozen=True)
class PacketHeader:
    """Header stamp (ns) and, for ``EventPacket``, ``seq`` with its byte offset in the buffer."""

    stamp_ns: int
    seq: int | None
    seq_offset: int | None
    little_endian: bool


def packet_header(raw: bytes | bytearray | memoryview, *, has_seq: bool) -> PacketHeader | None:
    """The header of a serialized message whose fields start with a ``std_msgs/Header`` (``has_seq``: an
    ``EventPacket``, read its ``seq`` too); ``None`` when the bytes are too short or not CDR."""
    buf = memoryview(raw).cast("B")
    if len(buf) < 16 or buf[0] != 0 or buf[1] not in (0, 1):
        return None
    little = buf[1] == 1
    order = "<" if little else ">"
    body = buf[4:]
    sec, nanosec, n = struct.unpack_from(order + "iII", body, 0)
    stamp = sec * 1_000_000_000 + nanosec
    if not has_seq:
        return PacketHeader(stamp, None, None, little)
    pos = 12 + n
    pos += -pos % 4 + 8  # height, width
    pos += -pos % 8
    if n > len(body) or pos + 8 > len(body):
        return None
    return PacketHeader(stamp, struct.unpack_from(order + "Q", body, pos)[0], 4 + pos, little)


def with_seq(raw: bytes, seq: int) -> bytes:
    """A copy of a serialized ``EventPacket`` with ``seq`` replaced (everything else byte for byte)."""
    head = packet_header(raw, has_seq=True)
    if head is None or head.seq_offset is None:
        raise ValueError("not a serialized EventPacket (too short or not CDR)")
    out = bytearray(raw)
    struct.pack_into("<Q" if head.little_endian else ">Q", out, head.seq_offset, seq)
    return bytes(out)


class EventPacketFields(NamedTuple):
    """The fields of a serialized ``EventPacket`` (or legacy ``EventArray``); ``events`` is a read-only uint8 view of
    the serialized bytes (no copy)."""

    stamp_ns: int
    frame_id: str
    height: int
    width: int
    seq: int
    time_base: int
    encoding: str
    is_bigendian: bool
    events: np.ndarray


_LE = (struct.Struct("<iII"), struct.Struct("<II"), struct.Struct("<QQI"), struct.Struct("<I"))
_BE = (struct.Struct(">iII"), struct.Struct(">II"), struct.Struct(">QQI"), struct.Struct(">I"))


def _string(body: memoryview, at: int, n: int, what: str) -> str:
    """The CDR string of ``n`` bytes (NUL included) at ``at`` (rosbags' rules: at least the NUL, inside the buffer,
    NUL-terminated; UTF-8)."""
    end = at + n
    if n < 1 or end > len(body) or body[end - 1] != 0:
        raise ValueError(f"{what}: invalid string length {n} at offset {at - 4}")
    return bytes(body[at:end - 1]).decode()


def read_event_packet(raw: bytes | bytearray | memoryview) -> EventPacketFields:
    """Every field of a serialized ``event_camera_msgs/msg/EventPacket`` (or ``event_array_msgs/msg/EventArray``)
    without building the message object. Raises ``ValueError`` naming what is wrong where rosbags' deserializer
    refuses the bytes (not CDR, a length past the end, a string without its NUL or not UTF-8, trailing bytes beyond
    the padding); equal to its fields otherwise (property-tested)."""
    buf = memoryview(raw).cast("B")
    if len(buf) < 4 or buf[0] != 0 or buf[1] not in (0, 1):
        raise ValueError("not CDR (unsupported encapsulation header)")
    head, size, mid, u32 = _LE if buf[1] == 1 else _BE
    body = buf[4:]
    try:
        sec, nanosec, n = head.unpack_from(body, 0)
        frame_id = _string(body, 12, n, "header.frame_id")
        pos = 12 + n
        pos += -pos % 4
        height, width = size.unpack_from(body, pos)
        pos += 8
        pos += -pos % 8
        seq, time_base, n = mid.unpack_from(body, pos)
        encoding = _string(body, pos + 20, n, "encoding")
        pos += 20 + n
        is_bigendian = body[pos] != 0
        pos += 1
        pos += -pos % 4
        (count,) = u32.unpack_from(body, pos)
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"truncated or garbled ({exc})") from exc
    pos += 4
    if count > len(body) - pos:
        raise ValueError(f"events: {count} bytes claimed, {len(body) - pos} left (truncated)")
    events = np.frombuffer(body, np.uint8, count, pos)
    if pos + count + 3 < len(body):
        raise ValueError(f"{len(body) - pos - count} bytes after the message")
    return EventPacketFields(sec * 1_000_000_000 + nanosec, frame_id, height, width, seq, time_base, encoding,
                             is_bigendian, events)
