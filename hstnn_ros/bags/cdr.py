"""The leading fields of a serialized event message, read or patched in place without deserializing it.

Used by the node (header stamp and ``EventPacket.seq`` of every packet, before decoding: middleware loss and time
jumps) and by the bag player (``--renumber-seq``). CDR layout after the 4-byte encapsulation header (byte 1: 1 =
little endian; alignment counts from the end of it): ``int32 sec``, ``uint32 nanosec``, ``string frame_id`` (uint32
length including the NUL, then the bytes), and for ``event_camera_msgs/msg/EventPacket`` then ``uint32 height``,
``uint32 width``, ``uint64 seq`` (aligned to 8).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

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
