"""AEDAT4 files and live iniVation cameras through dv-processing, as ``EventBatch``es."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hstnn_ros.perception.errors import DecodeError
from hstnn_ros.perception.events.batch import EventBatch


def _to_batch(store: object, width: int, height: int) -> EventBatch:
    a = store.numpy()  # type: ignore[attr-defined]  # structured: timestamp (us), x, y, polarity
    return EventBatch(a["timestamp"].astype(np.int64) * 1000, a["x"], a["y"], a["polarity"], width, height)


def iter_aedat4(path: Path | str) -> Iterator[EventBatch]:
    """The event stream of an AEDAT4 file as batches (as stored), times in ns since the epoch."""
    import dv_processing as dv  # noqa: PLC0415

    p = Path(path)
    if not p.is_file():
        raise DecodeError(f"{p}: no such AEDAT4 file")
    try:
        rec = dv.io.MonoCameraRecording(str(p))
    except RuntimeError as exc:
        raise DecodeError(f"{p}: not a readable AEDAT4 file ({exc})") from exc
    if not rec.isEventStreamAvailable():
        raise DecodeError(f"{p}: AEDAT4 file has no event stream")
    w, h = rec.getEventResolution()
    while True:
        store = rec.getNextEventBatch()
        if store is None:
            return
        if store.size():
            yield _to_batch(store, w, h)


def read_aedat4(path: Path | str) -> EventBatch:
    """All events of an AEDAT4 file in one batch."""
    batches = list(iter_aedat4(path))
    if not batches:
        raise DecodeError(f"{path}: AEDAT4 file holds no events")
    return EventBatch.concat(batches)


class LiveCamera:
    """A connected iniVation camera (DVXplorer, DAVIS) through ``dv.io.camera.open`` (first camera, or the one
    named ``name``); ``read()`` returns the events since the last call or None when nothing arrived.

    Not testable without hardware: it is a thin wrapper whose only logic is the conversion shared with AEDAT4.
    """

    def __init__(self, name: str = "") -> None:
        import dv_processing as dv  # noqa: PLC0415

        try:
            self._cam = dv.io.camera.open(name) if name else dv.io.camera.open()
        except RuntimeError as exc:
            raise DecodeError(f"cannot open iniVation camera {name or '(any)'}: {exc}") from exc
        if not self._cam.isEventStreamAvailable():
            raise DecodeError(f"camera {name or '(any)'} has no event stream")
        self.width, self.height = self._cam.getEventResolution()

    def read(self) -> EventBatch | None:
        """Events that arrived since the previous call (None if none yet)."""
        store = self._cam.getNextEventBatch()
        if store is None or store.size() == 0:
            return None
        return _to_batch(store, self.width, self.height)
