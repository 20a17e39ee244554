"""rosbag2 writer (sqlite3 or MCAP) using the package typestore, accepting message objects or raw CDR bytes."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

from rosbags.rosbag2 import StoragePlugin, Writer, WriterError
from rosbags.rosbag2.storage_sqlite3 import Connection

from hstnn_ros.bags.enums import Storage
from hstnn_ros.bags.errors import BagError
from hstnn_ros.bags.types import typestore

_PLUGIN = {Storage.SQLITE3: StoragePlugin.SQLITE3, Storage.MCAP: StoragePlugin.MCAP}


class BagWriter:
    """Write a new rosbag2 bag directory ``path`` (must not exist). Use as a context manager.

    ``add_connection(topic, msgtype)`` returns a connection; ``write(conn, t_ns, msg_or_bytes)`` appends one
    message (objects are serialized to CDR with ``typestore``); ``set_custom_data(key, value)`` adds metadata.
    """

    def __init__(self, path: Path | str, storage: Storage | str = Storage.MCAP) -> None:
        self.path = Path(path)
        try:
            self.storage = Storage(storage)
        except ValueError as exc:
            raise BagError(f"{self.path}: unknown storage {storage!r}; use one of "
                           f"{[s.value for s in Storage]}") from exc
        if self.path.exists():
            raise BagError(f"{self.path}: exists already; remove it or choose another output path")
        self.typestore = typestore()
        self._w = Writer(self.path, version=9, storage_plugin=_PLUGIN[self.storage])
        self._open = False

    def __enter__(self) -> BagWriter:
        try:
            self._w.open()
        except WriterError as exc:
            raise BagError(f"{self.path}: cannot create the bag ({exc})") from exc
        self._open = True
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml)."""
        if self._open:
            self._w.close()
            self._open = False

    def add_connection(self, topic: str, msgtype: str) -> Connection:
        """A connection for ``topic`` of ``msgtype`` (must be in the typestore)."""
        if msgtype not in self.typestore.types:
            raise BagError(f"{self.path}: message type {msgtype} is not registered in hstnn_ros.bags.typestore()")
        try:
            return self._w.add_connection(topic, msgtype, typestore=self.typestore)
        except WriterError as exc:
            raise BagError(f"{self.path}: cannot add topic {topic} ({exc})") from exc

    def write(self, connection: Connection, t_ns: int, msg: Any) -> None:
        """Append ``msg`` (a message object or CDR ``bytes``) at log time ``t_ns``."""
        data = msg if isinstance(msg, bytes | bytearray | memoryview) else \
            self.typestore.serialize_cdr(msg, connection.msgtype)
        try:
            self._w.write(connection, int(t_ns), bytes(data))
        except WriterError as exc:
            raise BagError(f"{self.path}: cannot write to {connection.topic} ({exc})") from exc

    def set_custom_data(self, key: str, value: str) -> None:
        """Free-form metadata stored in ``metadata.yaml``."""
        self._w.set_custom_data(key, value)
