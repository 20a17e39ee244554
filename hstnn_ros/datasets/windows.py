"""Window datasets built from recorded routes: per traversal, the event frames and RGB(-D) frames of every RGB
stamp, stored once; a window (9 event frames + the 3 RGB frames spanning them) is the index of its last RGB frame.

Frames are made exactly as the online engine makes them (``events_to_frames`` over the 3 x 7 ms bins that end at
each RGB stamp; ``preprocess_rgbd``'s resize), so a model trained here sees at run time what it saw in training.
Bags are streamed (events older than the oldest pending frame are dropped); output is chunked safetensors files plus
``manifest.json`` with a data fingerprint. Never pickled.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file
from tqdm import tqdm

from hstnn_ros import defaults
from hstnn_ros.bags import BagError, BagReader
from hstnn_ros.datasets.errors import DatasetError
from hstnn_ros.perception.errors import DecodeError
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.framing import events_to_frames, split_interval
from hstnn_ros.perception.events.stream import StreamDecoder
from hstnn_ros.perception.images import decode_image

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "hstnn_ros.window_dataset"
FORMAT_VERSION = 1
ROUTE_SIDECAR = "route.json"
#: Largest event count stored per pixel and bin (float16 holds integers exactly up to 2048).
MAX_COUNT = 2047.0


class Labelling(enum.StrEnum):
    """How place ids are assigned to frames."""

    ROUTE = "route"  #: ``route.json`` sidecar (synthetic routes): odometry distance binned into equal places
    DISTANCE = "distance"  #: cumulative odometry path length of the traversal, binned into equal places
    TIME = "time"  #: equal-time bins over the traversal, as NeuroGPR: ``int((t - t0) / (t1 - t0) * places)``


@dataclass(frozen=True)
class Topics:
    """Topic names in the bags."""

    events: str = "/dvs/events"
    rgb: str = "/camera/color/image_raw"
    depth: str | None = "/camera/aligned_depth_to_color/image_raw"
    odom: str | None = "/odom"


@dataclass(frozen=True)
class FramingConfig:
    """How frames are cut (must equal the engine's: ``EngineConfig.bins``/``bin_ns``, the pipeline's framing)."""

    input_hw: tuple[int, int] = (defaults.FRONTEND_INPUT_WH[1], defaults.FRONTEND_INPUT_WH[0])
    bins: int = defaults.EVENT_BINS_PER_RGB
    bin_ns: int = 7_000_000
    mode: str = "scale"
    depth: bool = False
    depth_max_m: float = 10.0

    def framing_metadata(self) -> dict[str, Any]:
        """What a front-end bundle records so that the engine frames events the same way."""
        return {"mode": self.mode, "clip": None, "normalize": "none"}


@dataclass
class Traversal:
    """The frames of one traversal (all arrays indexed by RGB frame)."""

    name: str
    env: str
    events: np.ndarray  # float16 [n, bins, 2, H, W] event counts
    rgb: np.ndarray  # uint8 [n, 3, H, W] (resized exactly as preprocess_rgbd does)
    depth: np.ndarray | None  # float32 [n, 1, H, W] in [0, 1] (metres / depth_max_m)
    stamps_ns: np.ndarray  # int64 [n]
    labels: np.ndarray  # int64 [n]
    split: str = "train"
    source: str = ""

    def __len__(self) -> int:
        return len(self.stamps_ns)

    def rgb_input(self, idx: np.ndarray | slice) -> np.ndarray:
        """Front-end RGB(-D) input float32 ``[n, C, H, W]`` of the frames ``idx`` (== ``preprocess_rgbd``)."""
        col = self.rgb[idx].astype(np.float32) / np.float32(255.0)
        if self.depth is None:
            return col
        return np.concatenate([col, self.depth[idx].astype(np.float32)], axis=1)


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
    def window(self) -> int:
        return defaults.RGB_FRAMES_PER_WINDOW


def _stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _route_labels(bag: Path, stamps: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    path = bag / ROUTE_SIDECAR
    if not path.is_file():
        raise DatasetError(f"{bag}: labelling 'route' needs {ROUTE_SIDECAR} beside the bag; use --label distance or "
                           "time for recorded bags")
    meta = json.loads(path.read_text())
    enters = np.array([t if t is not None else np.iinfo(np.int64).max for t in meta["place_enter_ns"]], np.int64)
    lab = np.searchsorted(enters, stamps, side="right") - 1
    return np.clip(lab, 0, len(enters) - 1).astype(np.int64), meta


def _distance_labels(odom: np.ndarray, stamps: np.ndarray, places: int, bag: Path) -> np.ndarray:
    if len(odom) < 2:
        raise DatasetError(f"{bag}: labelling 'distance' needs odometry, found {len(odom)} messages; use --label time")
    d = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(odom[:, 1]), np.diff(odom[:, 2])))])
    at = np.interp(stamps.astype(np.float64), odom[:, 0], d)
    return np.clip((at / max(d[-1], 1e-9) * places).astype(np.int64), 0, places - 1)


def _time_labels(stamps: np.ndarray, places: int) -> np.ndarray:
    t0, t1 = stamps[0], stamps[-1]
    frac = (stamps - t0) / max(t1 - t0, 1)
    return np.clip((frac * places).astype(np.int64), 0, places - 1)


def read_traversal(bag: Path, *, env: str, topics: Topics = Topics(), framing: FramingConfig = FramingConfig(),
                   labelling: Labelling = Labelling.ROUTE, places: int | None = None,
                   progress: bool = True) -> Traversal:
    """Frames and labels of one bag (one traversal), streamed in timestamp order."""
    bag = Path(bag)
    H, W = framing.input_hw
    span = framing.bins * framing.bin_ns
    try:
        reader_cm = BagReader(bag)
    except BagError as exc:
        raise DatasetError(f"{bag}: cannot open bag ({exc}); re-record or re-generate it") from exc
    with reader_cm as reader:
        have = dict(reader.topics)
        want = [topics.events, topics.rgb]
        missing = [t for t in want if t not in have]
        if missing:
            raise DatasetError(f"{bag}: missing topic(s) {missing}; the bag has {sorted(have)} (pass --topics)")
        use_depth = framing.depth and topics.depth in have
        if framing.depth and not use_depth:
            raise DatasetError(f"{bag}: depth requested but topic {topics.depth!r} is absent; "
                               f"the bag has {sorted(have)}")
        sel = {topics.events, topics.rgb} | ({topics.depth} if use_depth else set())
        if topics.odom and topics.odom in have:
            sel.add(topics.odom)
        decoder = StreamDecoder()
        ev_chunks: deque[EventBatch] = deque()
        pending: deque[tuple[int, np.ndarray]] = deque()
        depth_by_stamp: dict[int, np.ndarray] = {}
        watermark = -1
        sensor_wh = (0, 0)
        out_ev: list[np.ndarray] = []
        out_rgb: list[np.ndarray] = []
        out_depth: list[np.ndarray] = []
        out_t: list[int] = []
        odom: list[tuple[int, float, float]] = []
        total = sum(have[t].count for t in sel)

        def emit(until: int | None) -> None:
            while pending and (until is None or pending[0][0] <= until):
                stamp, rgb = pending.popleft()
                lo = stamp - span
                parts = [b.slice_time(lo, stamp) for b in ev_chunks if len(b) and b.t_ns[-1] >= lo]
                w, h = sensor_wh
                batch = EventBatch.concat(parts) if parts else EventBatch.empty(w, h)
                fr = events_to_frames(batch, split_interval(lo, stamp, framing.bins), (W, H), mode=framing.mode)
                out_ev.append(np.minimum(fr, MAX_COUNT).astype(np.float16))
                out_rgb.append(cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA).transpose(2, 0, 1).copy())
                if use_depth:
                    dep = depth_by_stamp.pop(stamp, None)
                    if dep is None:
                        dep = np.zeros(rgb.shape[:2], np.float32)
                    d = cv2.resize(dep.astype(np.float32), (W, H), interpolation=cv2.INTER_NEAREST)
                    d = np.clip(np.nan_to_num(d), 0.0, framing.depth_max_m) / np.float32(framing.depth_max_m)
                    out_depth.append(d[None].astype(np.float32))
                out_t.append(stamp)
            # drop events no pending frame can need
            horizon = (pending[0][0] if pending else watermark) - span
            while ev_chunks and len(ev_chunks[0]) and ev_chunks[0].t_ns[-1] < horizon:
                ev_chunks.popleft()

        it = reader.messages(topics=sel)
        for raw in tqdm(it, total=total, desc=f"frames {bag.name}", unit="msg", disable=not progress, leave=False):
            try:
                if raw.topic == topics.events:
                    b = decoder.decode(raw.msgtype, raw.data)
                    if len(b):
                        sensor_wh = (b.width, b.height)
                        ev_chunks.append(b)
                        watermark = max(watermark, int(b.t_ns[-1]))
                        emit(watermark)
                elif raw.topic == topics.rgb:
                    msg = reader.deserialize(raw)
                    pending.append((_stamp_ns(msg.header), decode_image(msg)))
                elif use_depth and raw.topic == topics.depth:
                    msg = reader.deserialize(raw)
                    depth_by_stamp[_stamp_ns(msg.header)] = decode_image(msg)
                    if len(depth_by_stamp) > 64:  # bounded: depth without a colour frame is dropped
                        depth_by_stamp.pop(min(depth_by_stamp))
                elif raw.topic == topics.odom:
                    msg = reader.deserialize(raw)
                    p = msg.pose.pose.position
                    odom.append((_stamp_ns(msg.header), float(p.x), float(p.y)))
            except DecodeError as exc:
                log.warning("%s: skipped a malformed %s message at %d ns: %s", bag, raw.topic, raw.t_ns, exc)
        emit(None)
    if decoder.counters.messages == 0 or watermark < 0:
        raise DatasetError(f"{bag}: no events decoded on {topics.events}")
    stamps = np.asarray(out_t, np.int64)
    if len(stamps) < defaults.RGB_FRAMES_PER_WINDOW:
        raise DatasetError(f"{bag}: {len(stamps)} RGB frames, fewer than one window "
                           f"({defaults.RGB_FRAMES_PER_WINDOW}); record a longer traversal")
    first_ev = min((int(b.t_ns[0]) for b in ev_chunks if len(b)), default=watermark)
    if stamps[-1] < first_ev - span or watermark < stamps[0] - span:
        raise DatasetError(f"{bag}: event and image time ranges do not overlap; check the clocks of the recording")
    labels, nplaces = _labels(bag, labelling, stamps, np.asarray(odom, np.float64).reshape(-1, 3), places)
    log.info("%s: %d frames, %d places, %s", bag, len(stamps), nplaces, decoder.counters)
    return Traversal(
        name=bag.name, env=env, events=np.stack(out_ev), rgb=np.stack(out_rgb),
        depth=np.stack(out_depth) if use_depth else None, stamps_ns=stamps, labels=labels, source=str(bag),
    )


def _labels(bag: Path, mode: Labelling, stamps: np.ndarray, odom: np.ndarray, places: int | None
            ) -> tuple[np.ndarray, int]:
    mode = Labelling(mode)
    if mode is Labelling.ROUTE:
        lab, meta = _route_labels(bag, stamps)
        n = int(meta.get("num_places", len(meta["place_enter_ns"])))
        if places is not None and places != n:
            raise DatasetError(f"{bag}: route has {n} places but --places {places} was asked; drop --places or "
                               "use --label distance")
        return lab, n
    if places is None or places < 1:
        raise DatasetError(f"labelling {mode.value!r} needs a positive place count (--places)")
    if mode is Labelling.DISTANCE:
        return _distance_labels(odom, stamps, places, bag), places
    return _time_labels(stamps, places), places


def assign_splits(names_by_env: dict[str, list[str]]) -> dict[str, str]:
    """Splits by traversal, per environment: the last traversal is test, the one before validation, the rest
    training (paper set-up with 6 traversals: 4 / 1 / 1). Needs at least 3 traversals per environment."""
    out = {}
    for env, unsorted in names_by_env.items():
        names = sorted(unsorted)
        if len(names) < 3:
            raise DatasetError(f"environment {env!r} has {len(names)} traversal(s); at least 3 are needed "
                               "(train, validation, test are split by traversal)")
        for n in names[:-2]:
            out[n] = "train"
        out[names[-2]], out[names[-1]] = "val", "test"
    return out


def _chunks(n: int, size: int) -> Iterator[slice]:
    for s in range(0, n, size):
        yield slice(s, min(n, s + size))


def save_traversal(root: Path, trav: Traversal, chunk_frames: int = 256) -> list[dict[str, Any]]:
    """Write ``trav`` as chunk files under ``root``; returns their manifest entries (file, frames, sha256)."""
    entries = []
    for k, sl in enumerate(_chunks(len(trav), chunk_frames)):
        arrays = {"events": np.ascontiguousarray(trav.events[sl]), "rgb": np.ascontiguousarray(trav.rgb[sl]),
                  "stamps_ns": trav.stamps_ns[sl].copy(), "labels": trav.labels[sl].copy()}
        if trav.depth is not None:
            arrays["depth"] = np.ascontiguousarray(trav.depth[sl])
        name = f"{trav.name}_c{k:03d}.safetensors"
        save_file(arrays, str(root / name))
        entries.append({"file": name, "frames": sl.stop - sl.start,
                        "sha256": hashlib.sha256((root / name).read_bytes()).hexdigest()})
    return entries


def build_dataset(bags: Sequence[tuple[Path, str]], out: Path, *, topics: Topics = Topics(),
                  framing: FramingConfig = FramingConfig(), labelling: Labelling = Labelling.ROUTE,
                  places: int | None = None, progress: bool = True) -> WindowDataset:
    """Build a window dataset from ``(bag, env)`` pairs (one bag per traversal) into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by_env: dict[str, list[str]] = {}
    for bag, env in bags:
        by_env.setdefault(env, []).append(Path(bag).name)
    splits = assign_splits(by_env)
    entries = []
    nplaces: int | None = places
    fp = hashlib.sha256()
    for bag, env in tqdm(list(bags), desc="traversals", disable=not progress):
        trav = read_traversal(Path(bag), env=env, topics=topics, framing=framing, labelling=labelling,
                              places=places, progress=progress)
        n = int(json.loads((Path(bag) / ROUTE_SIDECAR).read_text())["num_places"]) \
            if labelling is Labelling.ROUTE else places
        if nplaces is not None and n != nplaces:
            raise DatasetError(f"{bag}: {n} places, other traversals have {nplaces}; one dataset is one route")
        nplaces = n
        chunks = save_traversal(out, trav)
        for c in chunks:
            fp.update(c["sha256"].encode())
        entries.append({"name": trav.name, "env": env, "split": splits[trav.name], "source": str(bag),
                        "frames": len(trav), "chunks": chunks})
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "num_places": nplaces, "labelling": str(labelling),
        "topics": vars(topics), "framing": {**vars(framing), "input_hw": list(framing.input_hw)},
        "environments": sorted(by_env), "traversals": entries, "fingerprint": fp.hexdigest(),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return load_dataset(out)


def load_dataset(root: Path | str, *, verify: bool = True) -> WindowDataset:
    """Read a dataset written by :func:`build_dataset` (checksums verified unless ``verify`` is False)."""
    root = Path(root)
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise DatasetError(f"{root}: no {MANIFEST}; build the dataset with `hstnn-dataset`")
    manifest = json.loads(mpath.read_text())
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise DatasetError(f"{mpath}: not a {FORMAT} v{FORMAT_VERSION} manifest")
    ds = WindowDataset(root, manifest)
    for t in manifest["traversals"]:
        parts: dict[str, list[np.ndarray]] = {}
        for c in t["chunks"]:
            path = root / c["file"]
            if not path.is_file():
                raise DatasetError(f"{path}: chunk listed in {mpath} is missing; rebuild the dataset")
            if verify and hashlib.sha256(path.read_bytes()).hexdigest() != c["sha256"]:
                raise DatasetError(f"{path}: checksum mismatch (corrupt or modified); rebuild the dataset")
            try:
                arrays = load_file(str(path))
            except (SafetensorError, OSError) as exc:
                raise DatasetError(f"{path}: unreadable chunk ({exc}); rebuild the dataset") from exc
            for k, v in arrays.items():
                parts.setdefault(k, []).append(v)
        cat = {k: np.concatenate(v) for k, v in parts.items()}
        ds.traversals.append(Traversal(
            name=t["name"], env=t["env"], events=cat["events"], rgb=cat["rgb"], depth=cat.get("depth"),
            stamps_ns=cat["stamps_ns"], labels=cat["labels"], split=t["split"], source=t["source"],
        ))
    return ds


def route_bags(route_dir: Path) -> list[tuple[Path, str]]:
    """``(bag, env)`` pairs of a synthetic route set (its ``index.json``)."""
    index = Path(route_dir) / "index.json"
    if not index.is_file():
        raise DatasetError(f"{route_dir}: no index.json; generate the route with `hstnn-synth-route`")
    data = json.loads(index.read_text())
    return [(Path(route_dir) / b["bag"], str(b["env"])) for b in data["bags"]]
