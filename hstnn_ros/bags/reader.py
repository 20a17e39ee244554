"""Streaming rosbag2 reader over sqlite3 and MCAP storage that trusts what the storage holds.

``metadata.yaml`` is used for the file list and the expected message counts only: topic types come from the storage
itself (a real bag names ``EventPacket`` in its metadata while its database holds ``event_array_msgs/EventArray``),
and an empty ``storage_identifier`` is resolved from the file suffix. Messages are yielded in log-time order without
loading the bag into memory.

Damaged storage (a recorder killed mid-write, a file cut short, a corrupt page or chunk) is read as far as it is
intact: every readable message is yielded, the unreadable ones are counted (``BagReader.lost_messages``) and a warning
names the bag and the recovery used (``BagReader.recovery``). ``BagError`` is kept for files with nothing recoverable.
- sqlite3: the database is opened with ``PRAGMA writable_schema=ON`` (read-only connection), which makes SQLite use
  the pages the file has instead of refusing a file shorter than its header says; the ``messages`` table is then
  read by row-id ranges, a failing range split in halves down to single rows, so only rows on unreadable pages are
  lost. Rows are yielded in (timestamp, id) order from that index.
- MCAP: without a usable summary (or when a chunk fails mid-read) the file is read front to back with mcap's own
  ``StreamReader`` (chunks opened one at a time, so an undecompressible or unparsable chunk costs that chunk only)
  up to the first unreadable record.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import sqlite3
import struct
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from mcap.exceptions import McapError
from mcap.reader import make_reader
from mcap.records import Channel, Chunk, Message, Schema
from mcap.stream_reader import StreamReader, breakup_chunk

from hstnn_ros.bags.enums import Storage
from hstnn_ros.bags.errors import BagError
from hstnn_ros.bags.types import typestore

LOG = logging.getLogger(__name__)

_SUFFIX = {".db3": Storage.SQLITE3, ".mcap": Storage.MCAP}
#: Rows per query when the sqlite3 recovery reads the ``messages`` table by row-id ranges.
_SQLITE_RANGE = 1024


class TopicInfo(str):
    """A topic's message type (the string itself, so ``reader.topics[t] == "sensor_msgs/msg/Image"`` works) with
    ``msgtype`` and ``count`` (messages in the storage; readable ones for a recovered bag) attributes."""

    msgtype: str
    # shadows str.count on purpose (the attribute is the public API); the type checker sees it as an override
    count: int  # type: ignore[assignment]

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


@dataclass(frozen=True)
class _Layout:
    """What the bag path holds: storage kind, data files, and the per-topic message counts metadata.yaml promises
    (empty when there is no metadata or it has no counts)."""

    storage: Storage
    files: list[Path]
    expected: dict[str, int]


def _metadata_counts(info: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in info.get("topics_with_message_count") or []:
        try:
            out[str(entry["topic_metadata"]["name"])] = int(entry["message_count"])
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _storage_files(path: Path) -> _Layout:
    """Storage kind, data files and promised counts of the bag at ``path`` (a bag directory or a .db3/.mcap file)."""
    if path.is_file():
        if path.suffix not in _SUFFIX:
            raise BagError(f"{path}: not a rosbag2 file (expected .db3 or .mcap)")
        return _Layout(_SUFFIX[path.suffix], [path], {})
    if not path.is_dir():
        raise BagError(f"{path}: no such bag directory or file")
    meta = path / "metadata.yaml"
    files: list[Path] = []
    storage_id = ""
    expected: dict[str, int] = {}
    if meta.is_file():
        try:
            info = yaml.safe_load(meta.read_text())["rosbag2_bagfile_information"]
        except (yaml.YAMLError, KeyError, TypeError) as exc:
            raise BagError(f"{path}: unreadable metadata.yaml ({exc}); fix or delete it") from exc
        storage_id = str(info.get("storage_identifier") or "")
        files = [path / f for f in info.get("relative_file_paths") or []]
        expected = _metadata_counts(info)
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
    return _Layout(storage, files, expected)


class _Sqlite:
    """One .db3 file. ``recovery`` describes the recovery in use (None: the file read normally); ``lost`` counts the
    rows found unreadable so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.recovery: str | None = None
        self.lost = 0
        self._index: list[tuple[int, int, int]] | None = None  # (timestamp, id, topic_id) of readable rows
        self._tmp: Path | None = None  # whole-page copy of a file that ends inside a page (recovery only)
        self.partial_page = False
        try:
            self.db = self._connect(recover=False)
            if self._page_size() and self.path.stat().st_size % self._page_size():
                raise sqlite3.DatabaseError("the file ends inside a page (cut short)")
            rows = self.db.execute("SELECT id, name, type FROM topics").fetchall()
            counts = dict(self.db.execute("SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id").fetchall())
        except sqlite3.DatabaseError as exc:
            try:
                rows, counts = self._recover(exc)
            except BagError:
                self.close()
                raise
        self.topics = {tid: (name, typ) for tid, name, typ in rows}
        self.counts = {name: counts.get(tid, 0) for tid, (name, _typ) in self.topics.items()}
        self.types = {name: typ for name, typ in self.topics.values()}

    def _connect(self, recover: bool) -> sqlite3.Connection:
        path = self.path
        if recover:
            path = self._whole_pages()
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        if recover:
            # a connection flag, nothing is written (the connection is read-only): with it SQLite reads the pages a
            # truncated file has instead of refusing the file because its header promises more
            db.execute("PRAGMA writable_schema=ON")
        return db

    def _page_size(self) -> int:
        """The page size the file header states (0 if the header does not state a valid one)."""
        with self.path.open("rb") as fh:
            head = fh.read(18)
        page = int.from_bytes(head[16:18], "big") if len(head) == 18 and head[:16] == b"SQLite format 3\0" else 0
        page = 65536 if page == 1 else page
        return page if page >= 512 and not page & (page - 1) else 0

    def _whole_pages(self) -> Path:
        """The file to recover from: the bag file itself, or, when it ends inside a page, a temporary copy of its
        whole pages (SQLite reads a page cut short as zeros without an error, which would pass zeroed bytes off as
        message data)."""
        if self._tmp is not None:
            return self._tmp
        size = self.path.stat().st_size
        page = self._page_size()
        if not page or size % page == 0:
            return self.path
        fd, name = tempfile.mkstemp(suffix=".db3", prefix="hstnn_recover_")
        self._tmp = Path(name)
        with self.path.open("rb") as src, os.fdopen(fd, "wb") as dst:
            left = size - size % page
            while left:
                buf = src.read(min(left, 1 << 22))
                dst.write(buf)
                left -= len(buf)
        self.partial_page = True
        return self._tmp

    def _recover(self, exc: sqlite3.DatabaseError) -> tuple[list[tuple[int, str, str]], dict[int, int]]:
        """Reopen for recovery and index every readable row; ``BagError`` if not even the topics are readable."""
        with contextlib.suppress(AttributeError, sqlite3.Error):
            self.db.close()
        try:
            self.db = self._connect(recover=True)
            rows = self.db.execute("SELECT id, name, type FROM topics").fetchall()
        except sqlite3.DatabaseError as exc2:
            raise BagError(f"{self.path}: corrupt or half-written sqlite3 bag, nothing recoverable ({exc}; in "
                           f"recovery: {exc2})") from exc2
        self._build_index()
        self.recovery = (f"sqlite3 read with PRAGMA writable_schema=ON, messages by row-id ranges past unreadable "
                         f"pages ({exc})" + ("; the last, partial page dropped" if self.partial_page else ""))
        counts: dict[int, int] = {}
        for _ts, _id, tid in self._index or []:
            counts[tid] = counts.get(tid, 0) + 1
        return rows, counts

    def _id_bounds(self) -> tuple[int, int] | None:
        """Smallest and largest row id (None for an empty table); probes upwards when ``max(id)`` is unreadable."""
        try:
            lo, hi = self.db.execute("SELECT min(id), max(id) FROM messages").fetchone()
            return None if lo is None else (int(lo), int(hi))
        except sqlite3.DatabaseError:
            pass
        lo = hi = None
        probe = 1
        while probe < 1 << 62:  # find any readable row, then the largest one, by doubling
            try:
                r = self.db.execute("SELECT id FROM messages WHERE id >= ? ORDER BY id LIMIT 1", (probe,)).fetchone()
            except sqlite3.DatabaseError:
                r = None
            if r is not None:
                lo = int(r[0]) if lo is None else lo
                hi = int(r[0])
            elif lo is not None:
                break
            probe *= 2
        return None if lo is None else (lo, max(hi or lo, lo))

    def _build_index(self) -> None:
        """(timestamp, id, topic_id) of every row whose record and data pages read, in (timestamp, id) order. Reading
        ``substr(data, -1)`` walks the data's overflow pages, so a row indexed here can be read whole."""
        index: list[tuple[int, int, int]] = []
        bounds = self._id_bounds()
        q = "SELECT id, topic_id, timestamp, substr(data, -1) FROM messages WHERE id BETWEEN ? AND ?"
        todo = [] if bounds is None else [(a, min(a + _SQLITE_RANGE - 1, bounds[1]))
                                          for a in range(bounds[0], bounds[1] + 1, _SQLITE_RANGE)]
        todo.reverse()
        while todo:
            a, b = todo.pop()
            try:
                got = self.db.execute(q, (a, b)).fetchall()
            except sqlite3.DatabaseError:
                if a == b:
                    self.lost += 1
                else:
                    m = (a + b) // 2
                    todo += [(m + 1, b), (a, m)]
                continue
            for i, tid, ts, _ in got:
                if isinstance(i, int) and isinstance(tid, int) and isinstance(ts, int):
                    index.append((ts, i, tid))
                else:  # a record read back from zero-filled bytes (NULL or mistyped columns)
                    self.lost += 1
        index.sort()
        self._index = index

    def messages(self, topics: set[str]) -> Iterator[RawMessage]:
        ids = [tid for tid, (name, _) in self.topics.items() if name in topics]
        if not ids:
            return
        last: tuple[int, int] | None = None
        if self._index is None:
            q = f"SELECT topic_id, timestamp, data, id FROM messages WHERE topic_id IN ({','.join('?' * len(ids))}) " \
                "ORDER BY timestamp, id"
            try:
                for tid, ts, data, rid in self.db.execute(q, ids):
                    name, typ = self.topics[tid]
                    last = (int(ts), int(rid))
                    yield RawMessage(name, typ, int(ts), bytes(data))
                return
            except sqlite3.DatabaseError as exc:
                self._recover_midstream(exc)
        want = set(ids)
        for ts, rid, tid in self._index or []:
            if tid not in want or (last is not None and (ts, rid) <= last):
                continue
            try:
                row = self.db.execute("SELECT data FROM messages WHERE id = ?", (rid,)).fetchone()
            except sqlite3.DatabaseError:
                row = None
            if row is None:
                self.lost += 1
                continue
            name, typ = self.topics[tid]
            yield RawMessage(name, typ, ts, bytes(row[0]))

    def _recover_midstream(self, exc: sqlite3.DatabaseError) -> None:
        LOG.warning("%s: unreadable page while streaming (%s); continuing with row-id recovery", self.path, exc)
        with contextlib.suppress(sqlite3.Error):
            self.db.close()
        self.db = self._connect(recover=True)
        self._build_index()
        self.recovery = f"sqlite3 messages re-read by row-id ranges past unreadable pages ({exc})"

    def close(self) -> None:
        with contextlib.suppress(AttributeError, sqlite3.Error):
            self.db.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


class _Mcap:
    """One .mcap file (read with the ``mcap`` package; channels and schemas come from the file itself). Without a
    usable summary the file is indexed once front to back (``_scan``) and streamed again from that scan."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.recovery: str | None = None
        self.lost = 0
        # what mcap raises on damaged bytes (its own errors and whatever its parsing of garbage lengths trips on)
        self._err: tuple[type[BaseException], ...] = (McapError, ValueError, KeyError, EOFError, OSError,
                                                       AssertionError, IndexError, MemoryError, OverflowError,
                                                       struct.error)
        self._size = path.stat().st_size
        self.fh = path.open("rb")
        self.counts: dict[str, int] = {}
        self.types: dict[str, str] = {}
        self._sorted = True  # file order is log-time order (recovery streams in file order then)
        summary = None
        problem = "no summary section (half-written bag?)"
        try:
            self.reader = make_reader(self.fh)
            summary = self.reader.get_summary()
        except self._err as exc:
            problem = f"unreadable summary ({type(exc).__name__}: {exc})"
        if summary is not None:
            schemas = summary.schemas
            self.types = {ch.topic: schemas[ch.schema_id].name if ch.schema_id in schemas else "" for ch in
                          summary.channels.values()}
            stats = summary.statistics
            self.counts = {name: 0 for name in self.types}
            for cid, n in (stats.channel_message_counts if stats else {}).items():
                if cid in summary.channels:
                    self.counts[summary.channels[cid].topic] += n
            return
        self._scan(problem)

    def _records(self, stats: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
        """(topic, msgtype, Message) of every readable message in file order, with mcap's ``StreamReader``: one chunk
        at a time (a chunk that fails decompression or parsing is counted in ``stats["bad_chunks"]`` and skipped), up
        to the first unreadable record (``stats["stop"]`` = its description, ``stats["at"]`` = bytes read)."""
        self.fh.seek(0)
        schemas: dict[int, str] = {}
        channels: dict[int, tuple[str, int]] = {}

        def unpack(records: Iterable[Any]) -> Iterator[tuple[str, str, Any]]:
            for r in records:
                if isinstance(r, Schema):
                    schemas[r.id] = r.name
                elif isinstance(r, Channel):
                    channels[r.id] = (r.topic, r.schema_id)
                elif isinstance(r, Message):
                    if r.channel_id not in channels:  # its Channel record was in a lost part of the file
                        stats["orphans"] += 1
                        continue
                    topic, sid = channels[r.channel_id]
                    yield topic, schemas.get(sid, ""), r

        reader = StreamReader(self.fh, emit_chunks=True, record_size_limit=self._size)
        try:
            for rec in reader.records:
                if isinstance(rec, Chunk):
                    try:
                        inner = breakup_chunk(rec, validate_crc=False)
                    except self._err:
                        stats["bad_chunks"] += 1
                        continue
                    yield from unpack(inner)
                else:
                    yield from unpack([rec])
        except self._err as exc:
            stats["stop"] = f"{type(exc).__name__}: {exc}".rstrip(": ")
        stats["at"] = self.fh.tell()
        stats["channels"] = {topic: schemas.get(sid, "") for topic, sid in channels.values()}

    def _index(self) -> tuple[dict[str, int], dict[str, Any]]:
        """One recovery pass: readable messages per topic, whether file order is log-time order (``_sorted``) and
        the pass statistics."""
        stats: dict[str, Any] = {"bad_chunks": 0, "stop": None, "orphans": 0}
        counts: dict[str, int] = {}
        last = None
        self._sorted = True
        for topic, _typ, msg in self._records(stats):
            counts[topic] = counts.get(topic, 0) + 1
            if last is not None and msg.log_time < last:
                self._sorted = False
            last = msg.log_time
        return counts, stats

    def _scan(self, problem: str) -> None:
        self.counts, stats = self._index()
        self.lost += stats["orphans"]
        self.types = dict(stats["channels"])
        for t in self.types:
            self.counts.setdefault(t, 0)
        if not self.types:
            self.fh.close()
            raise BagError(f"{self.path}: corrupt or half-written MCAP bag, nothing recoverable ({problem}; "
                           f"mcap StreamReader: {stats['stop'] or 'no channel records'})")
        self.recovery = (f"mcap StreamReader front to back ({problem}): {sum(self.counts.values())} messages read up "
                         f"to byte {stats['at']} of {self._size}"
                         + (f", stopped at {stats['stop']}" if stats["stop"] else "")
                         + (f", {stats['bad_chunks']} damaged chunk(s) skipped" if stats["bad_chunks"] else "")
                         + (f", {stats['orphans']} messages of unknown channels" if stats["orphans"] else ""))

    def _recovered(self, topics: set[str], after: tuple[int, int] | None) -> Iterator[RawMessage]:
        """The recovery stream: messages of ``topics`` in log-time order (sorted in memory if the file is not in
        log-time order), skipping the first ``after[1]`` messages at log time ``after[0]`` and all earlier ones."""
        stats: dict[str, Any] = {"bad_chunks": 0, "stop": None, "orphans": 0}
        msgs: Iterator[tuple[str, str, Any]] = ((t, typ, m) for t, typ, m in self._records(stats) if t in topics)
        if not self._sorted:
            LOG.warning("%s: recovered MCAP messages are not in log-time order in the file; sorting them in memory",
                        self.path)
            msgs = iter(sorted(msgs, key=lambda x: x[2].log_time))
        skip_t, skip_n = after if after is not None else (-1, 0)
        for topic, typ, m in msgs:
            if m.log_time < skip_t or (m.log_time == skip_t and skip_n > 0):
                skip_n -= m.log_time == skip_t
                continue
            yield RawMessage(topic, typ or self.types.get(topic, ""), int(m.log_time), bytes(m.data))

    def messages(self, topics: set[str]) -> Iterator[RawMessage]:
        if self.recovery is not None:
            yield from self._recovered(topics, None)
            return
        at: tuple[int, int] | None = None  # (last log time yielded, how many at that time)
        n = 0
        try:
            for schema, channel, msg in self.reader.iter_messages(topics=sorted(topics), log_time_order=True):
                t = int(msg.log_time)
                at = (t, at[1] + 1) if at is not None and at[0] == t else (t, 1)
                n += 1
                yield RawMessage(channel.topic, schema.name if schema else self.types[channel.topic], t,
                                 bytes(msg.data))
            return
        except self._err as exc:
            problem = f"{type(exc).__name__}: {exc}"
        LOG.warning("%s: MCAP read failed mid-stream (%s); continuing with mcap's StreamReader", self.path, problem)
        self._index()  # learns whether the file order is log-time order
        self.recovery = f"mcap StreamReader front to back after a failed indexed read ({problem})"
        for raw in self._recovered(topics, at):
            n += 1
            yield raw
        self.lost += max(0, sum(self.counts.get(t, 0) for t in topics) - n)

    def close(self) -> None:
        self.fh.close()


class BagReader:
    """Read a rosbag2 bag (directory with ``metadata.yaml`` or a single .db3/.mcap file), streaming.

    Use as a context manager. ``topics`` maps topic -> ``TopicInfo`` (a ``str`` message type with ``.count``),
    ``message_counts`` maps topic -> number of messages, ``messages(topics)`` yields ``RawMessage``s in time order
    and ``deserialize(raw)`` turns one into a message object of the package's typestore.

    A damaged bag is read as far as it is intact (see the module docstring): ``recovery`` then names the recovery
    used per storage file (None for an intact bag), ``message_counts`` counts the readable messages and
    ``lost_messages`` the ones known to be unreadable (from the storage, or the counts ``metadata.yaml`` promises;
    it grows if more turn out unreadable while streaming). Each recovery is logged as a warning naming the bag.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        layout = _storage_files(self.path)
        self.storage = layout.storage
        self._expected = layout.expected
        kind = _Sqlite if self.storage is Storage.SQLITE3 else _Mcap
        self._files: list[Any] = []
        try:
            for f in layout.files:
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
        self._all_files = list(self._files)
        if self.recovery is not None:
            LOG.warning("%s: damaged bag; %d messages readable, %d lost; recovery: %s", self.path,
                        sum(counts.values()), self.lost_messages, self.recovery)

    @property
    def recovery(self) -> str | None:
        """How a damaged bag is being read (per storage file), or None while every file reads normally."""
        used = [f"{f.path.name}: {f.recovery}" for f in self._all_files if f.recovery is not None]
        return "; ".join(used) or None

    @property
    def lost_messages(self) -> int:
        """Messages known to be unreadable: the larger of what the storage reported unreadable and what is missing
        against the per-topic counts of ``metadata.yaml`` (0 for an intact bag)."""
        storage = sum(f.lost for f in self._all_files)
        promised = sum(max(0, n - self.message_counts.get(t, 0)) for t, n in self._expected.items())
        return max(storage, promised)

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
        listing its topics if a requested topic is not in it. Unreadable messages of a damaged bag are skipped and
        counted in ``lost_messages``."""
        want = set(self.topics) if topics is None else set(topics)
        missing = sorted(want - set(self.topics))
        if missing:
            raise BagError(f"{self.path}: no topic(s) {missing}; the bag has "
                           f"{ {t: str(i) for t, i in self.topics.items()} }")
        lost_before = self.lost_messages
        streams = [f.messages(want) for f in self._files]
        if len(streams) == 1:
            yield from streams[0]
        else:
            yield from heapq.merge(*streams, key=lambda m: m.t_ns)
        if self.lost_messages > lost_before:
            LOG.warning("%s: %d messages unreadable in all; recovery: %s", self.path, self.lost_messages,
                        self.recovery)

    def deserialize(self, raw: RawMessage) -> Any:
        """The message object for ``raw`` (``BagError`` if its type is unknown or its bytes do not parse)."""
        try:
            return self.typestore.deserialize_cdr(raw.data, raw.msgtype)
        except KeyError as exc:
            raise BagError(f"{self.path}: topic {raw.topic} has unregistered type {raw.msgtype}") from exc
        except Exception as exc:  # rosbags raises assorted errors on malformed CDR
            raise BagError(f"{self.path}: cannot deserialize a {raw.msgtype} on {raw.topic} at {raw.t_ns} ns "
                           f"({type(exc).__name__}: {exc})") from exc
