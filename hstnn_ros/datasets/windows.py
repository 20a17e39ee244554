"""Window datasets built from recorded routes: per traversal, the event frames and RGB(-D) frames of every RGB
stamp, stored once; a window (9 event frames + the 3 RGB frames spanning them) is the index of its last RGB frame.

Frames are made exactly as the online engine makes them (its cutter, ``EventBuffer``, over the ``WindowSpec``'s
3 x 7 ms bins that end at each RGB stamp, or at each ``VirtualClock`` stamp for events-only recordings;
``preprocess_rgbd``'s resize), so a model trained here sees at run time what it saw in training. Sources: bags
(``BagFrames``), NeuroGPR folders (``neurogpr``), frame folders, AEDAT4 and raw EVT3 files (``recordings``).
Bags are streamed (events older than the oldest pending frame are dropped); output is chunked safetensors files plus
``manifest.json`` with a data fingerprint. Never pickled. Loading memory-maps the chunks (``chunked``): a dataset's
frames stay on disk until read, so memory does not grow with the route.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from safetensors.numpy import save_file
from tqdm import tqdm

from hstnn_ros import defaults
from hstnn_ros.bags import BagError, BagReader
from hstnn_ros.datasets.chunked import ChunkedArray, memmap_safetensors
from hstnn_ros.datasets.errors import DatasetError
from hstnn_ros.datasets.labels import Labelling, LabelSpec, place_labels
from hstnn_ros.datasets.topics import Topics, resolve_topics
from hstnn_ros.perception.errors import DecodeError
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.framing import downscale_counts
from hstnn_ros.perception.events.stream import StreamDecoder
from hstnn_ros.perception.images import decode_image
from hstnn_ros.perception.pairing import Paired, RgbdPairer
from hstnn_ros.perception.window import EventBuffer, VirtualClock, WindowSpec, window_from_metadata

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "hstnn_ros.window_dataset"
FORMAT_VERSION = 3  # v2: labels in a per-traversal file; v3: the window as one ``WindowSpec`` (``window``)
#: Largest event count stored per pixel and bin (float16 holds integers exactly up to 2048).
MAX_COUNT = 2047.0


@dataclass
class Traversal:
    """The frames of one traversal (all arrays indexed by decision frame: an RGB frame, or a virtual frame of an
    events-only recording). A loaded dataset's frame arrays are ``ChunkedArray`` views of its memory-mapped chunks:
    index them along frames (``t.events[i]``, ``t.rgb[a:b]``) to read those frames; stamps and labels are in memory."""

    name: str
    env: str
    events: np.ndarray | ChunkedArray  # float16 [n, bins, 2, H, W] event counts
    rgb: np.ndarray | ChunkedArray | None  # uint8 [n, 3, H, W] (resized as preprocess_rgbd does); None: events only
    depth: np.ndarray | ChunkedArray | None  # float32 [n, 1, H, W] in [0, 1] (metres / depth_max_m)
    stamps_ns: np.ndarray  # int64 [n]
    labels: np.ndarray  # int64 [n]
    split: str = "train"
    source: str = ""

    def __len__(self) -> int:
        return len(self.stamps_ns)

    def rgb_input(self, idx: np.ndarray | slice) -> np.ndarray:
        """Front-end RGB(-D) input float32 ``[n, C, H, W]`` of the frames ``idx`` (== ``preprocess_rgbd``)."""
        if self.rgb is None:
            raise DatasetError(f"{self.source or self.name}: an events-only traversal has no RGB frames")
        return rgb_input(self.rgb[idx], None if self.depth is None else self.depth[idx])


def rgb_input(rgb: np.ndarray, depth: np.ndarray | None) -> np.ndarray:
    """Front-end RGB(-D) input float32 ``[n, C, H, W]`` from stored frames: colour uint8 ``[n, 3, H, W]`` scaled to
    [0, 1], then depth ``[n, 1, H, W]`` if given (== ``preprocess_rgbd``)."""
    col = rgb.astype(np.float32) / np.float32(255.0)
    return col if depth is None else np.concatenate([col, depth.astype(np.float32)], axis=1)


@dataclass
class WindowDataset:
    """A built dataset: traversals plus the manifest."""

    root: Path
    manifest: dict[str, Any]
    traversals: list[Traversal] = field(default_factory=list)

    @property
    def num_places(self) -> int:
        return int(self.manifest["num_places"])

    @property
    def events_only(self) -> bool:
        """True when no traversal has RGB frames (recordings without a colour camera)."""
        return all(t.rgb is None for t in self.traversals)

    @property
    def window(self) -> WindowSpec:
        """How the frames were cut (v2 manifests recorded the same facts as ``framing``)."""
        m, source = self.manifest, str(self.root / MANIFEST)
        if "window" in m:
            return WindowSpec.from_dict(m["window"], source=source)
        fr = m["framing"]
        return window_from_metadata({"input_hw": fr["input_hw"], "bins": fr["bins"], "bin_ns": fr["bin_ns"],
                                     "event_framing": {"mode": fr["mode"]}, "rgb_channels": 4 if fr["depth"] else 3},
                                    source=source)


def _stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


@dataclass
class FrameSample:
    """One decision frame of a traversal with the event frames of the bins ending at its stamp, as recorded: an RGB
    frame, or (events-only recordings) a virtual frame of the ``VirtualClock`` without an image."""

    stamp_ns: int
    events: np.ndarray  # float32 [bins, 2, h, w] event counts (sensor resolution or the front-end grid)
    rgb: np.ndarray | None  # uint8 [h, w, 3] RGB as decoded; None: events only
    depth: np.ndarray | None = None  # float32 [h, w] metres


class FrameSource(Protocol):
    """A traversal as a stream of :class:`FrameSample` (a bag, a NeuroGPR folder, a frame folder, an AEDAT4 or raw
    EVT3 file, ...)."""

    path: Path

    def __iter__(self) -> Iterator[FrameSample]: ...

    def labels(self, mode: LabelSpec | Labelling, stamps: np.ndarray, places: int | None
               ) -> tuple[np.ndarray, int]:
        """Place ids of the iterated frames (valid after iteration)."""
        ...


class BagFrames:
    """The frames of one bag (one traversal), streamed in timestamp order: memory holds a few frames, never the bag.
    Event bins are cut by the engine's own cutter (``EventBuffer`` over the ``WindowSpec``), at the front-end grid or
    (``sensor_resolution``) at the sensor's own resolution; colour and depth pair by the one pairing rule
    (``RgbdPairer``). A bag without a colour topic is events-only: its frames are the ``VirtualClock``'s, as the
    engine runs an events-only model. Topics left ``None`` are found by type (``resolve_topics``)."""

    #: Bound of the event buffer: events are cut and pruned at every frame, so only a bag whose colour stream
    #: stops for minutes comes near it (drops are counted and reported).
    MAX_BUFFERED_EVENTS = 50_000_000

    def __init__(self, bag: Path, *, topics: Topics = Topics(), window: WindowSpec = WindowSpec(),
                 sensor_resolution: bool = False, progress: bool = True,
                 frame_period_ns: int = defaults.EVENTS_ONLY_FRAME_PERIOD_NS) -> None:
        self.path = Path(bag)
        self.topics, self.window = topics, window
        self.sensor_resolution, self.progress = sensor_resolution, progress
        self.frame_period_ns = frame_period_ns
        #: ``[n, 8]`` t_ns, x, y, z, qx, qy, qz, qw of the odometry topic (filled by iteration; exact stamps in
        #: ``odometry_ns``, float64 rounds epoch nanoseconds)
        self.odometry = np.zeros((0, 8), np.float64)
        self.odometry_ns = np.zeros(0, np.int64)
        #: ``(stamps_ns, places)`` of the label topic (receive time, as replay reads it); filled by iteration
        self.topic_labels: tuple[np.ndarray, np.ndarray] | None = None
        #: the topics read (resolved at iteration)
        self.resolved: Topics | None = None

    def labels(self, mode: LabelSpec | Labelling, stamps: np.ndarray, places: int | None) -> tuple[np.ndarray, int]:
        return place_labels(self.path, mode, stamps, self.odometry, places, topic_labels=self.topic_labels)

    def with_label_topic(self, topic: str | None) -> BagFrames:
        """This source reading ``topic`` as its place-label topic too (``--label topic:NAME``)."""
        if topic:
            self.topics = Topics(self.topics.events, self.topics.rgb, self.topics.depth, self.topics.odom, topic)
        return self

    def __iter__(self) -> Iterator[FrameSample]:  # noqa: C901, PLR0912, PLR0915  bag stream loop; shared state
        bag, window = self.path, self.window
        try:
            reader_cm = BagReader(bag)
        except BagError as exc:
            raise DatasetError(f"{bag}: cannot open bag ({exc}); re-record or re-generate it") from exc
        with reader_cm as reader:
            if reader.recovery is not None:  # a lost stretch would silently stretch the windows across it
                raise DatasetError(f"{bag}: cannot open bag as a dataset: it is damaged ({reader.lost_messages} "
                                   f"messages unreadable; {reader.recovery}); re-record it or cut it to its intact "
                                   "part first")
            have = dict(reader.topics)
            topics = self.resolved = resolve_topics({t: str(info.msgtype) for t, info in have.items()}, self.topics,
                                                    source=bag)
            events_only = topics.rgb is None
            use_depth = window.depth and topics.depth is not None and not events_only
            if window.depth and not use_depth:
                raise DatasetError(f"{bag}: depth requested but the bag has no depth image topic (or no colour "
                                   f"topic); the bag has {sorted(have)} (pass --depth-topic or build without --depth)")
            # (resolve_topics always finds the event topic)
            sel = {t for t in (topics.events, topics.rgb, topics.odom, topics.label) if t}
            if use_depth and topics.depth is not None:
                sel.add(topics.depth)
            decoder = StreamDecoder()
            events = EventBuffer(window, self.MAX_BUFFERED_EVENTS)
            clock = VirtualClock(self.frame_period_ns)
            pairer: RgbdPairer[np.ndarray | None, np.ndarray] = RgbdPairer()  # shares `pending` with events-only
            pending: deque[Paired[np.ndarray | None, np.ndarray]] = deque()  # colour None: events-only
            watermark, n_out, first_stamp, last_stamp, prev = -1, 0, 0, 0, None
            odom: list[tuple[float, ...]] = []
            labels: list[tuple[int, int]] = []

            def emit(until: int | None) -> Iterator[FrameSample]:
                nonlocal n_out, first_stamp, last_stamp, prev
                while pending and (until is None or pending[0].stamp_ns <= until):
                    f = pending.popleft()
                    batch, edges = events.cut(f.stamp_ns, prev)
                    prev = f.stamp_ns
                    fr = window.frames(batch, edges, (batch.width, batch.height) if self.sensor_resolution else None)
                    dep = f.depth
                    if use_depth and dep is None and f.colour is not None:
                        dep = np.zeros(f.colour.shape[:2], np.float32)
                    first_stamp = f.stamp_ns if n_out == 0 else first_stamp
                    n_out, last_stamp = n_out + 1, f.stamp_ns
                    yield FrameSample(f.stamp_ns, fr, f.colour, dep)

            total = sum(have[t].count for t in sel)
            it = reader.messages(topics=sel)
            for raw in tqdm(it, total=total, desc=f"frames {bag.name}", unit="msg", disable=not self.progress,
                            leave=False):
                try:
                    if raw.topic == topics.events:
                        b = decoder.decode(raw.msgtype, raw.data)
                        if len(b):
                            events.push(b)
                            watermark = max(watermark, int(b.t_ns[-1]))
                            if events_only:
                                pending.extend(Paired(t, None, None) for t in clock.due(events.first_ns, watermark))
                            yield from emit(watermark)
                    elif raw.topic == topics.rgb:
                        msg = reader.deserialize(raw)
                        pending.extend(pairer.push_colour(_stamp_ns(msg.header), decode_image(msg)))
                    elif use_depth and raw.topic == topics.depth:
                        msg = reader.deserialize(raw)
                        pending.extend(pairer.push_depth(_stamp_ns(msg.header), decode_image(msg)))
                    elif raw.topic == topics.odom:
                        msg = reader.deserialize(raw)
                        p, q = msg.pose.pose.position, msg.pose.pose.orientation
                        odom.append((_stamp_ns(msg.header), p.x, p.y, p.z, q.x, q.y, q.z, q.w))
                    elif raw.topic == topics.label:
                        labels.append((raw.t_ns, int(reader.deserialize(raw).data)))
                except DecodeError as exc:
                    log.warning("%s: skipped a malformed %s message at %d ns: %s", bag, raw.topic, raw.t_ns, exc)
            if decoder.counters.messages == 0 or events.first_ns is None:
                raise DatasetError(f"{bag}: no events decoded on {topics.events}")
            first_ev = events.first_ns
            pending.extend(pairer.flush())
            yield from emit(None)
        self.odometry = np.asarray(odom, np.float64).reshape(-1, 8)
        self.odometry_ns = np.asarray([o[0] for o in odom], np.int64)
        if topics.label:
            lab = np.asarray(labels, np.int64).reshape(-1, 2)
            self.topic_labels = (lab[:, 0], lab[:, 1])
        if n_out and (last_stamp < first_ev - window.span_ns or watermark < first_stamp - window.span_ns):
            raise DatasetError(f"{bag}: event and image time ranges do not overlap; check the clocks of the recording")
        if use_depth and pairer.counters.colour_without_depth:
            log.warning("%s: %d of %d colour frames had no depth within %.0f ms (zero depth used)", bag,
                        pairer.counters.colour_without_depth, pairer.counters.colour_in, pairer.slop_ns / 1e6)
        if events.counters.dropped_overflow:
            log.warning("%s: %d events dropped by the event buffer bound (the colour stream stopped?)", bag,
                        events.counters.dropped_overflow)
        log.info("%s: %d frames, %s", bag, n_out, decoder.counters)


def cut_frames(batches: Iterable[EventBatch], images: Iterable[tuple[int, np.ndarray]] | None, window: WindowSpec,
               *, sensor_resolution: bool = False, frame_period_ns: int = defaults.EVENTS_ONLY_FRAME_PERIOD_NS,
               source: Path | str = "recording") -> Iterator[FrameSample]:
    """Frame samples of a time-ordered event stream and (optionally) time-ordered ``(stamp_ns, rgb)`` images: the
    events of each frame's bins are cut by ``EventBuffer`` once every event before the frame's stamp has arrived.
    Without images the frames are the ``VirtualClock``'s (events-only, as the engine runs it). File recordings
    (AEDAT4, raw EVT3) use this; bags interleave their own messages in ``BagFrames``."""
    events = EventBuffer(window, BagFrames.MAX_BUFFERED_EVENTS)
    it = iter(batches)
    prev: int | None = None
    newest = -(2**62)

    def sample(stamp: int, rgb: np.ndarray | None) -> FrameSample:
        nonlocal prev
        batch, edges = events.cut(stamp, prev)
        prev = stamp
        return FrameSample(stamp, window.frames(batch, edges, (batch.width, batch.height) if sensor_resolution
                                                else None), rgb)

    if images is None:
        clock = VirtualClock(frame_period_ns)
        for b in it:
            if len(b):
                events.push(b)
                newest = max(newest, int(b.t_ns.max()))
                for stamp in clock.due(events.first_ns, newest):
                    yield sample(stamp, None)
    else:
        exhausted = False
        for stamp, rgb in images:
            while not exhausted and newest < stamp:
                nxt = next(it, None)
                if nxt is None:
                    exhausted = True
                elif len(nxt):
                    events.push(nxt)
                    newest = max(newest, int(nxt.t_ns.max()))
            if events.first_ns is not None:
                yield sample(int(stamp), rgb)
    if events.first_ns is None:
        raise DatasetError(f"{source}: no events")
    if events.counters.dropped_late:
        log.warning("%s: %d events arrived after their frame was cut (time-disordered stream); dropped", source,
                    events.counters.dropped_late)


def prepare_frame(sample: FrameSample, window: WindowSpec
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A sample as stored in a window dataset: float16 event counts on the front-end grid (sensor-resolution counts
    are summed onto it with the window's coordinate map), RGB resized as ``preprocess_rgbd`` does (``None``: events
    only), depth in [0, 1]."""
    H, W = window.input_hw
    ev = sample.events
    if ev.shape[-2:] != (H, W):
        ev = downscale_counts(ev, (W, H), window.resize)
    ev = np.minimum(ev, MAX_COUNT).astype(np.float16)
    rgb = None
    if sample.rgb is not None:
        rgb = cv2.resize(sample.rgb, (W, H), interpolation=cv2.INTER_AREA).transpose(2, 0, 1).copy()
    dep = None
    if sample.depth is not None:
        d = cv2.resize(sample.depth.astype(np.float32), (W, H), interpolation=cv2.INTER_NEAREST)
        d = np.clip(np.nan_to_num(d), 0.0, window.depth_max_m) / np.float32(window.depth_max_m)
        dep = d[None].astype(np.float32)
    return ev, rgb, dep


def _check_length(source: Path, n: int) -> None:
    if n < defaults.RGB_FRAMES_PER_WINDOW:
        raise DatasetError(f"{source}: {n} frames, fewer than one window "
                           f"({defaults.RGB_FRAMES_PER_WINDOW}); record a longer traversal")


def _stack_optional(frames: list[np.ndarray | None], path: Path, what: str) -> np.ndarray | None:
    """``frames`` stacked, or None when the traversal has none of them (a traversal has them for all frames or
    for none)."""
    present = [f for f in frames if f is not None]
    if not present:
        return None
    if len(present) != len(frames):
        raise DatasetError(f"{path}: {len(frames) - len(present)} of {len(frames)} frames have no {what} image")
    return np.stack(present)


def load_traversal(source: FrameSource, *, env: str, window: WindowSpec = WindowSpec(),
                   labelling: LabelSpec | Labelling = Labelling.ROUTE, places: int | None = None) -> Traversal:
    """All frames and labels of one traversal in memory (small traversals and tests; datasets stream instead)."""
    ev: list[np.ndarray] = []
    rgb: list[np.ndarray | None] = []
    dep: list[np.ndarray | None] = []
    stamps: list[int] = []
    for sample in source:
        e, r, d = prepare_frame(sample, window)
        ev.append(e)
        rgb.append(r)
        dep.append(d)
        stamps.append(sample.stamp_ns)
    _check_length(source.path, len(stamps))
    st = np.asarray(stamps, np.int64)
    labels, _ = source.labels(labelling, st, places)
    return Traversal(name=source.path.name, env=env, events=np.stack(ev),
                     rgb=_stack_optional(rgb, source.path, "colour"),
                     depth=_stack_optional(dep, source.path, "depth"), stamps_ns=st, labels=labels,
                     source=str(source.path))


def read_traversal(bag: Path, *, env: str, topics: Topics = Topics(), window: WindowSpec = WindowSpec(),
                   labelling: LabelSpec | Labelling = Labelling.ROUTE, places: int | None = None,
                   progress: bool = True) -> Traversal:
    """Frames and labels of one bag (one traversal), in memory."""
    spec = LabelSpec.of(labelling)
    src = BagFrames(bag, topics=topics, window=window, progress=progress)
    return load_traversal(src.with_label_topic(spec.arg if spec.mode is Labelling.TOPIC else None), env=env,
                          window=window, labelling=spec, places=places)


def _natural_key(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def assign_splits(names_by_env: dict[str, list[str]]) -> dict[str, str]:
    """Splits by traversal, per environment: the last traversal is test, the one before validation, the rest
    training (paper set-up with 6 traversals: 4 / 1 / 1). Names sort naturally (``v2`` before ``v10``). Needs at
    least 3 traversals per environment."""
    out = {}
    for env, unsorted in names_by_env.items():
        names = sorted(unsorted, key=_natural_key)
        if len(names) < 3:
            raise DatasetError(f"environment {env!r} has {len(names)} traversal(s); at least 3 are needed "
                               "(train, validation, test are split by traversal)")
        for n in names[:-2]:
            out[n] = "train"
        out[names[-2]], out[names[-1]] = "val", "test"
    return out


def _write_chunk(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    save_file(arrays, str(path))
    n = len(next(iter(arrays.values())))
    return {"file": path.name, "frames": n, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def write_traversal(root: Path, name: str, source: FrameSource, *, window: WindowSpec,
                    labelling: LabelSpec | Labelling, places: int | None, chunk_frames: int = 256
                    ) -> tuple[dict[str, Any], int]:
    """Stream ``source`` into chunk files under ``root`` (memory: one chunk); labels, which may need the whole
    traversal (time bins, path length), go in a small labels file written last. Returns the manifest entry
    (without env/split) and the place count."""
    buf: dict[str, list[Any]] = {"events": [], "rgb": [], "depth": [], "stamps_ns": []}
    chunks: list[dict[str, Any]] = []
    stamps: list[int] = []

    def flush() -> None:
        if not buf["stamps_ns"]:
            return
        arrays = {k: np.ascontiguousarray(np.stack(v)) for k, v in buf.items() if v and v[0] is not None}
        arrays["stamps_ns"] = np.asarray(buf["stamps_ns"], np.int64)
        chunks.append(_write_chunk(root / f"{name}_c{len(chunks):03d}.safetensors", arrays))
        for v in buf.values():
            v.clear()

    for sample in source:
        ev, rgb, dep = prepare_frame(sample, window)
        buf["events"].append(ev)
        buf["rgb"].append(rgb)
        buf["depth"].append(dep)
        buf["stamps_ns"].append(sample.stamp_ns)
        stamps.append(sample.stamp_ns)
        if len(buf["stamps_ns"]) >= chunk_frames:
            flush()
    flush()
    _check_length(source.path, len(stamps))
    labels, nplaces = source.labels(labelling, np.asarray(stamps, np.int64), places)
    lab = _write_chunk(root / f"{name}_labels.safetensors", {"labels": labels.astype(np.int64)})
    return {"name": name, "source": str(source.path), "frames": len(stamps), "chunks": chunks, "labels": lab}, nplaces


def write_manifest(out: Path, entries: Sequence[dict[str, Any]], *, window: WindowSpec,
                   labelling: LabelSpec | Labelling, num_places: int, extra: dict[str, Any] | None = None) -> Path:
    """Write ``manifest.json`` for traversal ``entries`` (from :func:`write_traversal`, plus ``env`` and ``split``);
    the fingerprint hashes every chunk's and labels file's checksum in order."""
    fp = hashlib.sha256()
    for e in entries:
        for c in [*e["chunks"], e["labels"]]:
            fp.update(c["sha256"].encode())
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "num_places": num_places,
        "labelling": str(LabelSpec.of(labelling)),
        **(extra or {}), "window": window.to_dict(),
        "environments": sorted({e["env"] for e in entries}), "traversals": list(entries),
        "fingerprint": fp.hexdigest(),
    }
    path = Path(out) / MANIFEST
    path.write_text(json.dumps(manifest, indent=1))
    return path


def build_dataset_from(sources: Sequence[tuple[FrameSource, str]], out: Path, *,
                       window: WindowSpec = WindowSpec(), labelling: LabelSpec | Labelling = Labelling.ROUTE,
                       places: int | None = None, progress: bool = True, extra: dict[str, Any] | None = None
                       ) -> WindowDataset:
    """Build a window dataset from ``(frame source, env)`` pairs (one per traversal) into ``out``, streaming.
    Traversals of the route share place ids; for labellings that carry ids (topic, csv) without ``places`` the place
    count is the largest id of any traversal + 1."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = LabelSpec.of(labelling)
    by_env: dict[str, list[str]] = {}
    seen: dict[str, Path] = {}
    for src, env in sources:
        name = src.path.name
        if name in seen:
            raise DatasetError(f"{src.path}: same name as {seen[name]}; traversals are stored by name, rename one "
                               "of the recordings")
        seen[name] = src.path
        by_env.setdefault(env, []).append(name)
    splits = assign_splits(by_env)
    entries = []
    counts: list[int] = []
    for src, env in tqdm(list(sources), desc="traversals", disable=not progress):
        entry, n = write_traversal(out, src.path.name, src, window=window, labelling=spec, places=places)
        inferred = places is None and spec.mode in (Labelling.TOPIC, Labelling.CSV)  # max over traversals
        if counts and n != counts[0] and not inferred:
            raise DatasetError(f"{src.path}: {n} places, other traversals have {counts[0]}; one dataset is one route")
        counts.append(n)
        entries.append({**entry, "env": env, "split": splits[src.path.name]})
    write_manifest(out, entries, window=window, labelling=spec, num_places=max(counts, default=0), extra=extra)
    return load_dataset(out, progress=progress)


def build_dataset(bags: Sequence[tuple[Path, str]], out: Path, *, topics: Topics = Topics(),
                  window: WindowSpec = WindowSpec(), labelling: LabelSpec | Labelling = Labelling.ROUTE,
                  places: int | None = None, progress: bool = True) -> WindowDataset:
    """Build a window dataset from ``(bag, env)`` pairs (one bag per traversal) into ``out``."""
    spec = LabelSpec.of(labelling)
    label_topic = spec.arg if spec.mode is Labelling.TOPIC else None
    sources = [(BagFrames(Path(b), topics=topics, window=window, progress=progress).with_label_topic(label_topic), env)
               for b, env in bags]
    return build_dataset_from(sources, out, window=window, labelling=spec, places=places, progress=progress,
                              extra={"topics": vars(topics)})


def _chunked(parts: list[np.ndarray], where: str) -> ChunkedArray:
    try:
        return ChunkedArray(parts)
    except ValueError as exc:  # chunks of one traversal disagree on frame shape or type
        raise DatasetError(f"{where}: its chunks do not fit together ({exc}); rebuild the dataset") from exc


def load_dataset(root: Path | str, *, verify: bool = True, progress: bool = False) -> WindowDataset:
    """Read a dataset written by :func:`build_dataset` (checksums verified unless ``verify`` is False). The frame
    arrays are memory-mapped (``Traversal``): loading holds only stamps and labels in memory, whatever the route's
    length; the chunk files must stay in place while the dataset is used."""
    root = Path(root)
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise DatasetError(f"{root}: no {MANIFEST}; build the dataset with `hstnn-dataset`")
    manifest = json.loads(mpath.read_text())
    if manifest.get("format") != FORMAT or manifest.get("format_version") not in (2, FORMAT_VERSION):
        raise DatasetError(f"{mpath}: not a {FORMAT} v{FORMAT_VERSION} manifest (found {manifest.get('format')} "
                           f"v{manifest.get('format_version')}); rebuild the dataset with `hstnn-dataset`")
    ds = WindowDataset(root, manifest)
    for t in tqdm(manifest["traversals"], desc=f"load {root.name}", unit="traversal", disable=not progress,
                  leave=False):
        parts: dict[str, list[np.ndarray]] = {}
        for c in [*t["chunks"], t["labels"]]:
            path = root / c["file"]
            if not path.is_file():
                raise DatasetError(f"{path}: chunk listed in {mpath} is missing; rebuild the dataset")
            if verify:
                with path.open("rb") as f:
                    digest = hashlib.file_digest(f, "sha256").hexdigest()
                if digest != c["sha256"]:
                    raise DatasetError(f"{path}: checksum mismatch (corrupt or modified); rebuild the dataset")
            for k, v in memmap_safetensors(path).items():
                parts.setdefault(k, []).append(v)
        missing = {"events", "stamps_ns", "labels"} - parts.keys()
        if missing:
            raise DatasetError(f"{root}: traversal {t['name']} has no {', '.join(sorted(missing))} in its chunks; "
                               "rebuild the dataset")
        where = f"{root}: traversal {t['name']}"
        rgb, depth = (_chunked(parts[k], where) if k in parts else None for k in ("rgb", "depth"))
        ds.traversals.append(Traversal(
            name=t["name"], env=t["env"], events=_chunked(parts["events"], where), rgb=rgb, depth=depth,
            stamps_ns=np.concatenate(parts["stamps_ns"]),
            labels=np.concatenate(parts["labels"]), split=t["split"], source=t["source"],
        ))
    return ds
