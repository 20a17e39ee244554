"""The live node's logic without rclpy: receiving is decoupled from inference, and nothing is lost silently.

ROS callbacks only hand messages to ``OnlineRecognizer.offer_*`` (cheap: a bounded queue append). One worker thread
decodes, pairs colour with depth, drives the engine and hands results to the shell's ``publish`` callback, so a slow
decision never blocks the middleware's delivery of event packets. What could be lost is counted where it happens:

- middleware loss: gaps in ``EventPacket.seq`` (per topic). A restart of the sequence (a bag played again, a driver
  restarted) is a resynchronisation; it is taken to start where the first sequence did, so packets lost at its head
  count too. Packets lost at the very end of a sequence that then restarts cannot be seen by any receiver;
``bag_player --renumber-seq`` numbers on across loops as a running driver does;
- the work queue: when full, an arriving message is refused (``*_dropped_queue``);
- malformed messages: the decoder's counters (unknown encoding, truncated, out of bounds, time backwards, undecodable
  CDR) and undecodable images;
- the engine's own drops (late, duplicate, overflow, cleared by a time jump).

Invariant for events: every message the publisher sent is ``event_msgs_received`` (accepted into the queue) or
``event_msgs_lost`` (seq gap or queue drop). A jump back in time (the same bag played again, sim time reset) resets
the decoder, the pairing and the engine (one log line) and decisions go on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hstnn_ros.enums import Environment
from hstnn_ros.errors import HstnnError
from hstnn_ros.perception.pairing import RgbdPairer
from hstnn_ros.runtime.engine import PlaceResult
from hstnn_ros.runtime.enums import ItemKind
from hstnn_ros.runtime.loading import load_pipeline
from hstnn_ros.runtime.params import NodeSettings
from hstnn_ros.runtime.pipeline import Pipeline
from hstnn_ros.runtime.presets import load_references
from hstnn_ros.runtime.ros_codec import image_to_array, make_event_decoder, packet_header
from hstnn_ros.runtime.session import Session, open_session

LOG = logging.getLogger(__name__)

#: Sensor time the ``auto`` preset measures before choosing an environment (s).


@dataclass
class MessageCounters:
    """Monotone counts since start (see the module docstring for what each means)."""

    event_msgs_received: int = 0
    event_msgs_seq_gaps: int = 0
    event_msgs_dropped_queue: int = 0
    event_msgs_malformed: int = 0
    frames_received: int = 0
    frames_dropped_queue: int = 0
    frames_malformed: int = 0
    depth_received: int = 0
    depth_dropped_queue: int = 0
    seq_restarts: int = 0
    decisions: int = 0

    @property
    def event_msgs_lost(self) -> int:
        """Event messages that never reached decoding: middleware loss (seq gaps) + queue drops."""
        return self.event_msgs_seq_gaps + self.event_msgs_dropped_queue


@dataclass(frozen=True)
class Diagnostics:
    """One diagnostics report: ``level`` 0 OK / 1 WARN, a message, and named values (cumulative and per period)."""

    level: int
    message: str
    values: dict[str, str]


class OnlineRecognizer:
    """Queue -> worker -> engine -> ``publish(results, frame_id)``; see the module docstring.

    Args:
        settings: validated node parameters.
        publish: called from the worker thread with each batch of new results and the colour frame id.
        session: an opened session (default: opened from ``settings``).
    """

    def __init__(self, settings: NodeSettings, publish: Callable[[list[PlaceResult], str], None],
                 session: Session | None = None) -> None:
        self.settings = settings
        self.session = session or open_session(settings.model_bundle or None, settings.preset,
                                               config=settings.engine)
        self._publish = publish
        self.counters = MessageCounters()
        kind = settings.event_msg_type
        self._kind = kind
        self._decode_raw = make_event_decoder(kind)
        self._stream = self._decode_raw.decoder
        self._pairer: RgbdPairer[Any, Any] = RgbdPairer(slop_ns=settings.sync_slop_ns)
        self._scene = load_references(self.session.models_dir).meter() if self.session.awaiting_scene else None
        self._loader: ThreadPoolExecutor | None = None
        self._loading: Future[tuple[Environment | None, Path, Pipeline]] | None = None
        self._queue: deque[tuple[ItemKind, Any]] = deque()
        self._cv = threading.Condition()
        self._stop = False
        self._first_seq: int | None = None
        self._last_seq = 0
        self._last_stamp: int | None = None
        self._frame_id = ""
        self._latency: deque[float] = deque(maxlen=512)
        self._period_t = time.monotonic()
        self._period_base = self._snapshot()
        self._worker = threading.Thread(target=self._run, name="hstnn-inference", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ receiving (ROS callback threads)
    def offer_events(self, raw: bytes) -> None:
        """An event message as serialized CDR bytes (an rclpy ``raw=True`` subscription)."""
        head = packet_header(self._kind, raw)
        with self._cv:
            if head is not None and head.seq is not None:
                if self._first_seq is None:
                    self._first_seq = head.seq
                elif head.seq > self._last_seq + 1:
                    self.counters.event_msgs_seq_gaps += head.seq - self._last_seq - 1
                elif head.seq <= self._last_seq:
                    # a restarted sequence (a bag played again, a driver restart) starts where the first one did:
                    # packets before this one in the new sequence were lost
                    self.counters.seq_restarts += 1
                    self.counters.event_msgs_seq_gaps += max(0, head.seq - self._first_seq)
                self._last_seq = head.seq
            self._put((ItemKind.EVENTS, raw), "event_msgs_dropped_queue", "event_msgs_received")

    def offer_image(self, msg: Any) -> None:
        """A colour ``sensor_msgs/Image``."""
        with self._cv:
            self._put((ItemKind.IMAGE, msg), "frames_dropped_queue", "frames_received")

    def offer_depth(self, msg: Any) -> None:
        """An aligned depth ``sensor_msgs/Image``."""
        with self._cv:
            self._put((ItemKind.DEPTH, msg), "depth_dropped_queue", "depth_received")

    def _put(self, item: tuple[ItemKind, Any], dropped: str, received: str) -> None:
        """Queue ``item`` and count it ``received``; a full queue refuses it and counts it ``dropped`` (the queue
        stays as fresh either way: once it is full, its length bounds the delay)."""
        c = self.counters
        if len(self._queue) >= self.settings.work_queue_size:
            setattr(c, dropped, getattr(c, dropped) + 1)
            return
        setattr(c, received, getattr(c, received) + 1)
        self._queue.append(item)
        self._cv.notify()

    # ------------------------------------------------------------------ the worker
    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._stop:
                    self._cv.wait(timeout=0.1)
                    self._adopt_loaded_model()
                if self._stop and not self._queue:
                    return
                kind, payload = self._queue.popleft()
            try:
                self._handle(kind, payload)
            except Exception:
                LOG.exception("unexpected error while handling a %s message (counted as malformed)", kind.value)
                if kind is ItemKind.EVENTS:
                    self.counters.event_msgs_malformed += 1
                else:
                    self.counters.frames_malformed += 1

    def _handle(self, kind: ItemKind, payload: Any) -> None:
        if kind is ItemKind.EVENTS:
            self._handle_events(payload)
        else:
            self._handle_image(kind, payload)

    def _handle_events(self, payload: Any) -> None:
        """Decode one event message into the engine; a malformed one is counted and dropped."""
        engine = self.session.engine
        head = packet_header(self._kind, payload)
        if head is not None:
            self._note_time(head.stamp_ns)
        before = self._decoder_problems()
        try:
            batches = self._decode_raw(payload)
        except HstnnError as exc:
            self.counters.event_msgs_malformed += 1
            LOG.warning("malformed event message dropped: %s", exc)
            return
        if self._decoder_problems() > before:
            self.counters.event_msgs_malformed += 1
            LOG.warning("malformed event message: %s", self._stream.counters.recent[-1]
                        if self._stream.counters.recent else "see counters")
        for batch in batches:
            engine.push_events(batch)
            if self._scene is not None:
                self._scene.add_events(batch)

    def _handle_image(self, kind: ItemKind, payload: Any) -> None:
        """A colour (``ItemKind.IMAGE``) or depth (``ItemKind.DEPTH``) image into the pairer and on to the engine; a
        malformed one is counted and dropped."""
        engine = self.session.engine
        stamp = payload.header.stamp.sec * 1_000_000_000 + payload.header.stamp.nanosec
        try:
            arr = image_to_array(payload)
        except HstnnError as exc:
            self.counters.frames_malformed += 1
            LOG.warning("image dropped: %s", exc)
            return
        self._note_time(stamp)
        if kind is ItemKind.IMAGE:
            self._frame_id = str(payload.header.frame_id)
            if self._scene is not None:
                self._scene.add_image(stamp, arr)
            ready = self._pairer.push_colour(stamp, arr) if self.settings.use_depth else None
            if ready is None:
                engine.push_frame(stamp, arr, None)
        else:
            ready = self._pairer.push_depth(stamp, arr)
        for f in ready or ():
            engine.push_frame(f.stamp_ns, f.colour, f.depth)
        self._maybe_choose_environment()
        self._adopt_loaded_model()
        self._emit(engine.poll())

    def _decoder_problems(self) -> int:
        c = self._stream.counters
        return c.unknown_encoding + c.truncated + c.malformed + c.out_of_bounds + c.time_backwards

    def _note_time(self, stamp_ns: int) -> None:
        """A jump back in time (a replayed bag, a sim-time reset) restarts the stream decoder and the pairing; the
        engine resets itself on the same input."""
        last = self._last_stamp
        if last is not None and last - stamp_ns > self.settings.engine.time_jump_ns:
            LOG.warning("input time jumped back %.3f s: decoder, pairing and engine restart", (last - stamp_ns) / 1e9)
            self._stream.reset()
            self._emit_frames(self._pairer.flush())
            self._pairer = RgbdPairer(slop_ns=self.settings.sync_slop_ns)
            self._last_stamp = stamp_ns
            return
        self._last_stamp = stamp_ns if last is None else max(last, stamp_ns)

    def _emit_frames(self, frames: list[Any]) -> None:
        for f in frames:
            self.session.engine.push_frame(f.stamp_ns, f.colour, f.depth)

    def _emit(self, results: list[PlaceResult]) -> None:
        if not results:
            return
        self.counters.decisions += len(results)
        for r in results:
            self._latency.append(r.latency_s)
        self._publish(results, self._frame_id)

    # ------------------------------------------------------------------ auto preset
    def _maybe_choose_environment(self) -> None:
        """``auto``: once the references' window of sensor time is measured, load the chosen bundle off this
        thread."""
        if self._scene is None or not self._scene.ready:
            return
        stats, self._scene = self._scene.stats(), None
        env, bundle = self.session.choose(stats)
        LOG.info("auto preset: %s -> %s (%s)", stats, env.value if env else "unsure: default model", bundle)
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hstnn-model-load")
        self._loading = self._loader.submit(lambda: (env, bundle, load_pipeline(bundle)))

    def _adopt_loaded_model(self) -> None:
        if self._loading is None or not self._loading.done():
            return
        fut, self._loading = self._loading, None
        try:
            env, bundle, pipeline = fut.result()
            self.session.adopt(env, bundle, pipeline)
            LOG.info("auto preset: running %s", bundle)
        except HstnnError as exc:
            LOG.error("auto preset: could not load the chosen model (%s); staying on %s", exc, self.session.bundle)
        if self._loader is not None:
            self._loader.shutdown(wait=False)
            self._loader = None

    # ------------------------------------------------------------------ reporting
    def _snapshot(self) -> dict[str, int]:
        c = asdict(self.counters)
        c["event_msgs_lost"] = self.counters.event_msgs_lost
        e = self.session.engine.counters
        c["frames_dropped"] = self.counters.frames_dropped_queue + self.counters.frames_malformed + e.frames_dropped
        c["events_dropped"] = e.events_dropped
        c["time_jumps"] = e.time_jumps
        return c

    def diagnostics(self) -> Diagnostics:
        """Cumulative counts since start, rates over the last period, latency, and WARN only while the last period
        had losses, drops or malformed input (it clears once the input is clean again)."""
        now = time.monotonic()
        snap = self._snapshot()
        dt = max(now - self._period_t, 1e-6)
        base, self._period_base, self._period_t = self._period_base, snap, now
        delta = {k: snap[k] - base.get(k, 0) for k in snap}
        values = {k: str(v) for k, v in snap.items()}
        values["event_msgs_malformed"] = str(snap["event_msgs_malformed"])
        for k in ("event_msgs_received", "frames_received", "decisions"):
            values[f"{k}_rate_hz"] = f"{delta[k] / dt:.2f}"
        bad = {k: delta[k] for k in ("event_msgs_lost", "event_msgs_malformed", "frames_dropped", "events_dropped",
                                     "frames_malformed", "depth_dropped_queue") if delta[k]}
        lat = sorted(self._latency)
        if lat:
            values["latency_p50_ms"] = f"{lat[len(lat) // 2] * 1e3:.2f}"
            values["latency_p99_ms"] = f"{lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1e3:.2f}"
        values["queue"] = str(len(self._queue))
        values["model"] = str(self.session.bundle)
        decoder = self._stream.counters
        for k in ("unknown_encoding", "truncated", "malformed", "out_of_bounds", "time_backwards"):
            values[f"decoder_{k}"] = str(getattr(decoder, k))
        if bad:
            return Diagnostics(1, "last period: " + ", ".join(f"{k} +{v}" for k, v in bad.items()), values)
        return Diagnostics(0, "ok", values)

    # ------------------------------------------------------------------ lifecycle
    def drain(self, timeout_s: float = 10.0) -> bool:
        """Wait until the work queue is empty (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._cv:
                if not self._queue:
                    return True
            time.sleep(0.01)
        return False

    def close(self, flush: bool = True) -> None:
        """Stop the worker (after the queued messages) and, with ``flush``, publish the engine's last decisions."""
        with self._cv:
            self._stop = True
            self._cv.notify()
        self._worker.join(timeout=30.0)
        if flush:
            self._emit_frames(self._pairer.flush())
            self._emit(self.session.engine.flush())
        if self._loader is not None:
            self._loader.shutdown(wait=False)
