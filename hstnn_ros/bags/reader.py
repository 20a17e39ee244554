"""Streaming rosbag2 reader over sqlite3 and MCAP storage that trusts what the storage holds.

``metadata.yaml`` is used for the file list only: topic types come from the storage itself (a real bag names
``EventPacket`` in its metadata while its database holds ``event_array_msgs/EventArray``), and an empty
``storage_identifier`` is resolved from the file suffix. Messages are yielded in log-time order without loading the
bag into memory.
"""

from __future__ import annotations

import heapq
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from hstnn_ros.bags.enums import Storage
from hstnn_ros.bags.errors import BagError
from hstnn_ros.bags.types import typestore

LOG = logging.getLogger(__name__)

_SUFFIX = {".db3": Storage.SQLITE3, ".mcap": Storage.MCAP}


class TopicInfo(str):
    """A topic's message type (the string itself, so ``reader.topics[t] == "sensor_msgs/msg/Image"`` works) with
    ``msgtype`` and ``count`` (messages in the storage) attributes."""

    msgtype: str
    count: int

    def __new__(cls, msgtype: str, count: int) -> TopicInfo:
        obj = super().__new__(cls, msgtype)
        obj.msgtype = msgtype
        obj.count = count
        return obj


@dataclass(frozen=True)
class RawMessage:
    """One serialized message: topic, message type, log (receive) time in ns and the CDR bytes."""

    topic: str
    msgtype: str
    t_ns: int
    data: bytes


def _storage_files(path: Path) -> tuple[Storage, list[Path]]:
    """Storage kind and data files of the bag at ``path`` (a bag directory or a single .db3/.mcap file)."""
    if path.is_file():
        if path.suffix not in _SUFFIX:
            raise BagError(f"{path}: not a rosbag2 file (expected .db3 or .mcap)")
        return _SUFFIX[path.suffix], [path]
    if not path.is_dir():
        raise BagError(f"{path}: no such bag directory or file")
    meta = path / "metadata.yaml"
    files: list[Path] = []
    storage_id = ""
    if meta.is_file():
        try:
            info = yaml.safe_load(meta.read_text())["rosbag2_bagfile_information"]
        except (yaml.YAMLError, KeyError, TypeError) as exc:
            raise BagError(f"{path}: unreadable metadata.yaml ({exc}); fix or delete it") from exc
        storage_id = str(info.get("storage_identifier") or "")
        files = [path / f for f in info.get("relative_file_paths") or []]
    if not files:
        files = sorted(p for p in path.iterdir() if p.suffix in _SUFFIX)
    if not files:
        raise BagError(f"{path}: no .db3 or .mcap storage file in the bag directory")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise BagError(f"{path}: storage files listed in metadata.yaml are missing: {missing}")
    suffixes = {f.suffix for f in files}
    if storage_id in (s.value for s in Storage):
        storage = Storage(storage_id)
    elif len(suffixes) == 1 and next(iter(suffixes)) in _SUFFIX:
        if storage_id:
            LOG.warning("%s: unknown storage_identifier %r; using the file suffix", path, storage_id)
        storage = _SUFFIX[next(iter(suffixes))]
    else:
        raise BagError(f"{path}: cannot tell the storage ({storage_id!r}, files {sorted(suffixes)})")
    return storage, files


class _Sqlite:
    """One .db3 file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
            rows = self.db.execute("SELECT id, name, type FROM topics").fetchall()
            counts = dict(self.db.execute("SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id").fetchall())
        except sqlite3.DatabaseError as exc:
            raise BagError(f"{path}: corrupt or half-written sqlite3 bag ({exc})") from exc
        self.topics = {tid: (name, typ) for tid, name, typ in rows}
        self.counts = {name: counts.get(tid, 0) for tid, (name, _typ) in self.topics.items()}
        self.types = {name: typ for name, typ in self.topics.values()}

    def messages(self, topics: set[str]) -> Iterator[RawMessage]:
        ids = [tid for tid, (name, _) in self.topics.items() if name in topics]
        if not ids:
            return
        q = f"SELECT topic_id, timestamp, data FROM messages WHERE topic_id IN ({','.join('?' * len(ids))}) " \
            "ORDER BY timestamp, id"
        try:
            for tid, ts, data in self.db.execute(q, ids):
                name, typ = self.topics[tid]
                yield RawMessage(name, typ, int(ts), bytes(data))
        except sqlite3.DatabaseError as exc:
            raise BagError(f"{self.path}: corrupt sqlite3 bag while reading ({exc})") from exc

    def close(self) -> None:
        self.db.close()


class _Mcap:
    """One .mcap file (read with the ``mcap`` package; channels and schemas come from the file itself)."""

    def __init__(self, path: Path) -> None:
        from mcap.exceptions import McapError  # noqa: PLC0415
        from mcap.reader import make_reader  # noqa: PLC0415

        self.path = path
        self._err: tuple[type[BaseException], ...] = (McapError, ValueError, KeyError, EOFError, OSError,
                                                       AssertionError)
        self.fh = path.open("rb")
        try:
            self.reader = make_reader(self.fh)
            summary = self.reader.get_summary()
            if summary is None:
                raise BagError(f"{path}: MCAP file has no summary (half-written bag?); reindex it with "
                               "`ros2 bag reindex` or `mcap recover`")
            schemas = summary.schemas
            self.types = {ch.topic: schemas[ch.schema_id].name if ch.schema_id in schemas else "" for ch in
                          summary.channels.values()}
            stats = summary.statistics
            per_chan = stats.channel_message_counts if stats else {}
            self.counts = {name: 0 for name in self.types}
            for cid, n in per_chan.items():
                self.counts[summary.channels[cid].topic] += n
        except BagError:
            self.fh.close()
            raise
        except self._err as exc:
            self.fh.close()
            raise BagError(f"{path}: corrupt or half-written MCAP bag ({exc})") from exc

    def messages(self, topics: set[str]) -> Iterator[RawMessage]:
        try:
            for schema, channel, msg in self.reader.iter_messages(topics=sorted(topics), log_time_order=True):
                yield RawMessage(channel.topic, schema.name if schema else self.types[channel.topic],
                                 int(msg.log_time), bytes(msg.data))
        except self._err as exc:
            raise BagError(f"{self.path}: corrupt MCAP bag while reading ({exc})") from exc

    def close(self) -> None:
        self.fh.close()


class BagReader:
    """Read a rosbag2 bag (directory with ``metadata.yaml`` or a single .db3/.mcap file), streaming.

    Use as a context manager. ``topics`` maps topic -> ``TopicInfo`` (a ``str`` message type with ``.count``),
    ``message_counts`` maps topic -> number of messages, ``messages(topics)`` yields ``RawMessage``s in time order
    and ``deserialize(raw)`` turns one into a message object of the package's typestore.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.storage, files = _storage_files(self.path)
        kind = _Sqlite if self.storage is Storage.SQLITE3 else _Mcap
        self._files: list[Any] = []
        try:
            for f in files:
                self._files.append(kind(f))
        except BagError:
            self.close()
            raise
        counts: dict[str, int] = {}
        types: dict[str, str] = {}
        for f in self._files:
            types.update(f.types)
            for t, n in f.counts.items():
                counts[t] = counts.get(t, 0) + n
        self.message_counts = counts
        self.topics = {t: TopicInfo(types[t], counts.get(t, 0)) for t in sorted(types)}
        self.typestore = typestore()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the storage files."""
        for f in self._files:
            f.close()
        self._files = []

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[RawMessage]:
        """Raw messages of ``topics`` (all topics if None) in log-time order; ``BagError`` naming the bag and
        listing its topics if a requested topic is not in it."""
        want = set(self.topics) if topics is None else set(topics)
        missing = sorted(want - set(self.topics))
        if missing:
            raise BagError(f"{self.path}: no topic(s) {missing}; the bag has "
                           f"{ {t: str(i) for t, i in self.topics.items()} }")
        streams = [f.messages(want) for f in self._files]
        if len(streams) == 1:
            yield from streams[0]
        else:
            yield from heapq.merge(*streams, key=lambda m: m.t_ns)

    def deserialize(self, raw: RawMessage) -> Any:
        """The message object for ``raw`` (``BagError`` if its type is unknown or its bytes do not parse)."""
        try:
            return self.typestore.deserialize_cdr(raw.data, raw.msgtype)
        except KeyError as exc:
            raise BagError(f"{self.path}: topic {raw.topic} has unregistered type {raw.msgtype}") from exc
        except Exception as exc:  # rosbags raises assorted errors on malformed CDR
            raise BagError(f"{self.path}: cannot deserialize a {raw.msgtype} on {raw.topic} at {raw.t_ns} ns "
                           f"({type(exc).__name__}: {exc})") from exc
