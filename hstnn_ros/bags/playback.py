"""What a bag player publishes, in which order and when: the ROS-free half of ``hstnn_ros.ros.bag_player``.

A ``Playback`` opens one or more rosbag2 recordings with ``BagReader`` (so the storage quirks of real-world bags
are handled there), keeps the selected topics and yields ``Scheduled`` messages: the recorded CDR
bytes, the recorded receive time and the wall-clock offset (seconds after playback starts) at which to publish them.

Timing: messages are paced by their recorded receive (log) time divided by ``rate``; several bags are merged into one
time-ordered stream. Looping restarts the recording: the wall clock goes on (the next loop starts one mean message
interval after the last message of the previous one) while the recorded time, which is what ``/clock`` and the
messages' header stamps carry, jumps back to the start. A subscriber therefore sees one consistent time jump
backwards per loop, as with ``ros2 bag play --loop``.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hstnn_ros.bags.cdr import EVENT_PACKET, packet_header, with_seq
from hstnn_ros.bags.errors import BagError
from hstnn_ros.bags.reader import BagReader, RawMessage


def ros_type_name(msgtype: str) -> str:
    """``pkg/msg/Type`` for a type stored as ``pkg/msg/Type`` or the ROS 1 style ``pkg/Type``."""
    parts = msgtype.split("/")
    if len(parts) == 2:
        return f"{parts[0]}/msg/{parts[1]}"
    return msgtype


@dataclass(frozen=True)
class Scheduled:
    """One message to publish: ``wall_s`` after playback started, in loop ``loop`` (0-based)."""

    wall_s: float
    loop: int
    message: RawMessage

    @property
    def t_ns(self) -> int:
        """Recorded receive time (what ``/clock`` says when this message is published)."""
        return self.message.t_ns

    def clock_ns_at(self, wall_s: float, rate: float) -> int:
        """Recorded time at wall offset ``wall_s`` (>= this message's), extrapolated from this message."""
        return self.message.t_ns + round(max(0.0, wall_s - self.wall_s) * rate * 1e9)


@dataclass
class PlaybackReport:
    """What a player published: messages per topic, topics left out (topic -> type, with the reason), loops
    completed, wall time and the largest delay behind schedule."""

    published: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    loops: int = 0
    wall_s: float = 0.0
    max_lag_s: float = 0.0
    clock_msgs: int = 0

    def count(self, topic: str) -> None:
        """One more message published on ``topic``."""
        self.published[topic] = self.published.get(topic, 0) + 1

    def to_json(self) -> str:
        """The report as one JSON object (what ``--report FILE`` writes and the live tests read)."""
        return json.dumps({"published": self.published, "skipped": self.skipped, "loops": self.loops,
                           "wall_s": round(self.wall_s, 3), "max_lag_s": round(self.max_lag_s, 4),
                           "clock_msgs": self.clock_msgs}, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PlaybackReport:
        """Inverse of ``to_json``."""
        d = json.loads(text)
        return cls(published={str(k): int(v) for k, v in d["published"].items()},
                   skipped={str(k): str(v) for k, v in d["skipped"].items()}, loops=int(d["loops"]),
                   wall_s=float(d["wall_s"]), max_lag_s=float(d["max_lag_s"]), clock_msgs=int(d["clock_msgs"]))

    def table(self) -> str:
        """Human-readable summary: one line per topic."""
        width = max((len(t) for t in (*self.published, *self.skipped)), default=5)
        lines = [f"{'topic':<{width}}  published"]
        lines += [f"{t:<{width}}  {n:>9}" for t, n in sorted(self.published.items())]
        lines += [f"{t:<{width}}  {'skipped':>9}  ({why})" for t, why in sorted(self.skipped.items())]
        lines.append(f"{self.loops} loop(s) in {self.wall_s:.2f} s wall, at most {self.max_lag_s * 1e3:.1f} ms "
                     f"behind schedule, {self.clock_msgs} /clock messages")
        return "\n".join(lines)


class Playback:
    """The selected topics of ``bags`` as a schedule (see the module docstring). Use as a context manager.

    ``topics``: topics to play (``None`` = all); a topic in none of the bags is an error naming the bags' topics.
    ``rate``: speed factor (2.0 = twice as fast). ``loops``: how many times to play the recording, 0 = forever.
    ``renumber_seq``: ``EventPacket.seq`` counts on across loops (per topic, from the first packet's), as a driver
    that keeps running would number its packets; everything else is published byte for byte. Without it a loop
    restarts the recorded sequence, and a receiver cannot tell packets lost at the end of a loop. ``seq_start``
    (implies ``renumber_seq``): number from this value instead of the first packet's, e.g. to go on where an
    earlier playback stopped, so that its first packet reveals any packet lost at that playback's end.
    """

    def __init__(self, bags: Sequence[Path | str], *, topics: Sequence[str] | None = None, rate: float = 1.0,
                 loops: int = 1, renumber_seq: bool = False, seq_start: int | None = None) -> None:
        if not bags:
            raise BagError("bag player: no bag given; pass one or more rosbag2 directories or files")
        if not rate > 0:
            raise BagError(f"bag player: --rate {rate}: must be > 0 (1.0 = recorded speed)")
        if loops < 0:
            raise BagError(f"bag player: loops {loops}: must be >= 0 (0 = forever)")
        self.rate = float(rate)
        self.loops = int(loops)
        if seq_start is not None and not 0 <= seq_start < 2**64:
            raise BagError(f"bag player: seq start {seq_start}: must be an unsigned 64-bit number")
        self.renumber_seq = bool(renumber_seq) or seq_start is not None
        self.seq_start = seq_start
        self._readers: list[BagReader] = []
        try:
            for b in bags:
                self._readers.append(BagReader(b))
        except BagError:
            self.close()
            raise
        recorded: dict[str, str] = {}
        for r in self._readers:
            for t, info in r.topics.items():
                if t in recorded and recorded[t] != info.msgtype:
                    self.close()
                    raise BagError(f"bag player: topic {t} has type {recorded[t]} in one bag and "
                                             f"{info.msgtype} in {r.path}; play them separately")
                recorded[t] = info.msgtype
        if topics is not None:
            missing = sorted(set(topics) - set(recorded))
            if missing:
                self.close()
                raise BagError(f"bag player: topic(s) {missing} are in none of the bags; they have "
                                         f"{sorted(recorded)}")
            recorded = {t: recorded[t] for t in topics}
        #: topic -> recorded message type (``pkg/msg/Type``) of every topic that will be played
        self.topics: dict[str, str] = {t: ros_type_name(m) for t, m in sorted(recorded.items())}
        #: topic -> reason, for topics left out by ``exclude``
        self.skipped: dict[str, str] = {}

    def __enter__(self) -> Playback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the bag files."""
        for r in self._readers:
            r.close()
        self._readers = []

    def exclude(self, keep: Callable[[str], bool], reason: str) -> dict[str, str]:
        """Leave out every topic whose message type ``keep(type)`` refuses (e.g. a type this ROS install does not
        have); returns and records the topics left out (topic -> type and ``reason``)."""
        out = {t: m for t, m in self.topics.items() if not keep(m)}
        for t, m in out.items():
            self.skipped[t] = f"{m}: {reason}"
            del self.topics[t]
        return out

    def message_count(self) -> dict[str, int]:
        """Messages per played topic in one pass over the bags (from the storage's own counts)."""
        counts = dict.fromkeys(self.topics, 0)
        for r in self._readers:
            for t, n in r.message_counts.items():
                if t in counts:
                    counts[t] += n
        return counts

    def _one_pass(self) -> Iterator[RawMessage]:
        streams = [r.messages([t for t in self.topics if t in r.topics]) for r in self._readers]
        streams = [s for s, r in zip(streams, self._readers, strict=True) if any(t in r.topics for t in self.topics)]
        if len(streams) == 1:
            yield from streams[0]
        else:
            yield from heapq.merge(*streams, key=lambda m: m.t_ns)

    def _renumbered(self, msg: RawMessage, seqs: dict[str, int]) -> RawMessage:
        head = packet_header(msg.data, has_seq=True)
        if head is None or head.seq is None:
            return msg  # not decodable as an EventPacket: published as recorded
        seq = seqs.setdefault(msg.topic, head.seq if self.seq_start is None else self.seq_start)
        seqs[msg.topic] = seq + 1
        return dataclasses.replace(msg, data=with_seq(bytes(msg.data), seq))

    def schedule(self) -> Iterator[Scheduled]:
        """Every message to publish, in publication order, with its wall offset; ends after ``loops`` passes
        (never with ``loops=0``). A recording with no message on the played topics yields nothing."""
        loop = 0
        offset_s = 0.0  # wall offset of the current loop's first message
        seqs: dict[str, int] = {}  # renumber_seq: the next seq per EventPacket topic
        while self.loops == 0 or loop < self.loops:
            first = last = None
            n = 0
            for recorded in self._one_pass():
                if first is None:
                    first = recorded.t_ns
                last = recorded.t_ns
                n += 1
                msg = recorded
                if self.renumber_seq and self.topics.get(msg.topic) == EVENT_PACKET:
                    msg = self._renumbered(recorded, seqs)
                yield Scheduled(offset_s + (msg.t_ns - first) / 1e9 / self.rate, loop, msg)
            if first is None or last is None:
                return
            span_s = (last - first) / 1e9
            gap_s = span_s / (n - 1) if n > 1 else 0.0
            offset_s += (span_s + gap_s) / self.rate
            loop += 1
