"""The one place where the synthetic route meets the package's bag layer and event encoders.

Bags are written with ``hstnn_ros.bags`` (typestore with the event messages registered, MCAP/sqlite3 writer) and
event payloads are produced by ``hstnn_ros.perception.events`` encoders; nothing here encodes events itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hstnn_ros import bags
from hstnn_ros.bags.enums import Storage
from hstnn_ros.datasets.synth.errors import SynthError
from hstnn_ros.datasets.synth.messages import FRAME_DVS
from hstnn_ros.perception import events as pev
from hstnn_ros.perception.events.enums import Encoding, EventMessageKind


class _Writer:
    """Narrow writer interface used by ``route``: connections, raw CDR writes, custom metadata, typestore."""

    def __init__(self, inner: Any, typestore: Any) -> None:
        self.inner, self.typestore = inner, typestore

    def add_connection(self, topic: str, msgtype: str) -> Any:
        return self.inner.add_connection(topic, msgtype)

    def write(self, conn: Any, t_ns: int, data: bytes) -> None:
        self.inner.write(conn, t_ns, data)

    def set_metadata(self, key: str, value: str) -> None:
        self.inner.set_custom_data(key, value)


@contextlib.contextmanager
def open_writer(bag_dir: Path, storage: Storage) -> Iterator[_Writer]:
    """A bag writer on ``bag_dir`` using the package's bag layer."""
    with bags.BagWriter(bag_dir, storage=storage.value) as w:
        yield _Writer(w, w.typestore)


class EventEncoder:
    """Turns event records into serialised event messages of the chosen type and encoding."""

    def __init__(self, message: EventMessageKind, encoding: Encoding, width: int, height: int) -> None:
        self.message, self.width, self.height = message, width, height
        self.pev = pev
        self.seq = 0
        #: the message's ``encoding`` field and the route metadata's (``dvs_msgs`` for arrays, which have no field)
        self.encoding: str
        if message is EventMessageKind.DVS_EVENT_ARRAY:
            self.encoding = "dvs_msgs"
        else:
            self.encoding = str(encoding)
            available = sorted(getattr(pev, "ENCODERS", {}))
            if encoding not in available:
                raise SynthError(f"event encoding {encoding!r} has no encoder; use one of {available}")
        self.msgtype = message.value

    def encode(self, rec: Any, mf: Any) -> bytes:
        """One serialised message for an ``EventsRecord``; the header stamp is the first event's time, as event
        camera drivers stamp packets (decoders anchor sensor time to it)."""
        ev = rec.events
        batch = self.pev.EventBatch(t_ns=ev.t_ns, x=ev.x, y=ev.y, p=ev.p, width=self.width, height=self.height)
        header = mf.header(int(ev.t_ns[0]) if len(ev) else rec.t_ns, FRAME_DVS)
        if self.message is EventMessageKind.DVS_EVENT_ARRAY:
            return self.pev.encode_dvs_event_array(batch, header=header, typestore=mf.ts)
        payload, time_base = self.pev.ENCODERS[self.encoding](batch)
        Packet = mf.ts.types[self.msgtype]
        msg = Packet(header=header, height=self.height, width=self.width, seq=self.seq, time_base=time_base,
                     encoding=self.encoding, is_bigendian=False,
                     events=np.frombuffer(payload, np.uint8))
        self.seq += 1
        return mf.serialize(msg, self.msgtype)
