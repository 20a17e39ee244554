"""Recordings other than bags as frame sources: a folder of frame images with a stamps file, AEDAT4 files
(dv-processing) and raw EVT3 files (Prophesee ``.raw``); and ``open_recording``, which picks the source of a path.

Every source yields the ``FrameSample`` stream a bag gives, so datasets, front-ends and models do not care where the
frames came from. Events are cut by the engine's own cutter (``windows.cut_frames`` over ``EventBuffer``); recordings
without colour frames are events-only, their decision frames those of the engine's ``VirtualClock``.

Frame folder layout (one folder per traversal)::

    stamps.txt     one stamp per frame, in order: decimal seconds or integer nanoseconds (``#`` comments allowed)
    events/        event-count images, ``bins`` per frame (in natural name order): a grey image holds the count of
                   each pixel (polarity unknown: the window merges ON and OFF, ``WindowSpec.polarity = False``); a
                   colour image holds ON counts in red and OFF counts in green. 8- or 16-bit.
    rgb/           optional: one colour (or grey) image per frame
    labels.csv     optional: ``stamp,place`` rows for ``--label csv``

A folder holding only images and ``stamps.txt`` (no ``events/``) is a folder of event-count frames.
Raw EVT3 times are sensor time (microseconds from the camera's start) in nanoseconds: label CSVs of raw files use
that clock.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
from tqdm import tqdm

from hstnn_ros import defaults
from hstnn_ros.datasets.enums import RecordingKind
from hstnn_ros.datasets.errors import DatasetError
from hstnn_ros.datasets.labels import Labelling, LabelSpec, place_labels
from hstnn_ros.datasets.neurogpr import FRAMES_DIR, NeuroGPRFrames
from hstnn_ros.datasets.stamps import parse_stamp
from hstnn_ros.datasets.topics import Topics
from hstnn_ros.datasets.windows import (
    BagFrames,
    FrameSample,
    FrameSource,
    WindowDataset,
    build_dataset_from,
    cut_frames,
)
from hstnn_ros.perception.errors import DecodeError
from hstnn_ros.perception.events import iter_aedat4
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.codecs import Evt3State, decode_evt3
from hstnn_ros.perception.window import WindowSpec

log = logging.getLogger(__name__)

STAMPS_FILE = "stamps.txt"
EVENTS_DIR = "events"
RGB_DIR = "rgb"
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg", ".pgm", ".ppm")
AEDAT4_SUFFIX = ".aedat4"
RAW_SUFFIX = ".raw"


def _natural_key(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _no_places_from(source: Path, spec: LabelSpec, kinds: str) -> None:
    if spec.mode not in (Labelling.TIME, Labelling.CSV):
        raise DatasetError(f"{source}: {kinds} carry no {spec.mode.value} labels; use --label time or csv "
                           f"(`stamp,place` rows in {LabelSpec(Labelling.CSV).csv_path(source)})")


# ---------------------------------------------------------------------------------------------------- frame folders
def read_stamps_file(path: Path | str) -> np.ndarray:
    """Stamps (int64 ns) of a stamps file: one stamp per line (``parse_stamp``: decimal seconds or integer
    nanoseconds), blank lines and ``#`` comments skipped, strictly increasing (a repeated or earlier stamp is refused
    naming ``file:line``: frames are a time series)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable stamps file ({exc}); write one stamp per frame and line") from exc
    out: list[int] = []
    for i, line in enumerate(text.splitlines(), start=1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        where = f"{path}:{i}"
        if len(body.split()) != 1:
            raise DatasetError(f"{where}: {line!r} holds more than one value; write one stamp per line")
        t = parse_stamp(body, where)
        if out and t <= out[-1]:
            raise DatasetError(f"{where}: stamp {body} is not after the previous one; stamps must increase")
        out.append(t)
    if not out:
        raise DatasetError(f"{path}: no stamps")
    return np.asarray(out, np.int64)


def _images(folder: Path) -> list[Path]:
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
                   key=lambda p: _natural_key(p.name))
    skipped = [p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES
               and not p.name.startswith(".") and p.name not in (STAMPS_FILE, "labels.csv")]
    if skipped:
        log.warning("%s: %d files that are not images skipped (e.g. %s)", folder, len(skipped), skipped[0])
    return files


def _read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DatasetError(f"{path}: unreadable image; re-export it")
    if img.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f"{path}: {img.dtype} image; frames are 8- or 16-bit")
    return img


def _event_counts(img: np.ndarray, path: Path) -> np.ndarray:
    """``[2, h, w]`` float32 (OFF, ON) counts of an event-count image (grey: the total in both channels)."""
    if img.ndim == 2:
        c = img.astype(np.float32)
        return np.stack([c, c])
    if img.ndim == 3 and img.shape[2] in (3, 4):  # OpenCV order: B, G, R
        return np.stack([img[:, :, 1], img[:, :, 2]]).astype(np.float32)
    raise DatasetError(f"{path}: event image of shape {img.shape}; use grey or colour (red ON, green OFF)")


def _colour(img: np.ndarray, path: Path) -> np.ndarray:
    if img.dtype != np.uint8:
        raise DatasetError(f"{path}: {img.dtype} colour frame; RGB frames are 8-bit")
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class FrameFolder:
    """A traversal given as a folder of frame images with a stamps file (see the module docstring). ``polarity``
    (False for grey event images) and ``bins`` (event images per frame) are what the data fixes about the window
    (``window_hints``)."""

    def __init__(self, folder: Path | str, *, window: WindowSpec | None = None, progress: bool = True) -> None:
        self.path = Path(folder)
        self.window, self.progress = window or WindowSpec(), progress
        stamps_file = self.path / STAMPS_FILE
        if not stamps_file.is_file():
            raise DatasetError(f"{self.path}: no {STAMPS_FILE}; a frame folder needs one stamp per frame and line "
                               f"(decimal seconds or integer nanoseconds)")
        self.stamps = read_stamps_file(stamps_file)
        n = len(self.stamps)
        ev_dir = self.path / EVENTS_DIR
        self.event_files = _images(ev_dir if ev_dir.is_dir() else self.path)
        rgb_dir = self.path / RGB_DIR
        self.rgb_files = _images(rgb_dir) if rgb_dir.is_dir() else []
        if not self.event_files:
            raise DatasetError(f"{ev_dir if ev_dir.is_dir() else self.path}: no event-count images; a frame folder "
                               f"needs {EVENTS_DIR}/ (or images beside {STAMPS_FILE})")
        if len(self.event_files) % n:
            raise DatasetError(f"{self.path}: {len(self.event_files)} event images for {n} stamps; give the same "
                               "number of event images (bins) for every stamp")
        self.bins = len(self.event_files) // n
        if self.rgb_files and len(self.rgb_files) != n:
            raise DatasetError(f"{self.path / RGB_DIR}: {len(self.rgb_files)} colour frames for {n} stamps; give one "
                               "per stamp")
        first = _read_image(self.event_files[0])
        self.polarity = first.ndim == 3
        self.events_only = not self.rgb_files

    def window_hints(self) -> dict[str, Any]:
        """Window fields this recording fixes: event images per frame and whether they carry polarity."""
        return {"bins_per_rgb": self.bins, "polarity": self.polarity}

    def labels(self, mode: LabelSpec | Labelling, stamps: np.ndarray, places: int | None) -> tuple[np.ndarray, int]:
        spec = LabelSpec.of(mode)
        _no_places_from(self.path, spec, "frame folders")
        return place_labels(self.path, spec, stamps, np.zeros((0, 3)), places)

    def __iter__(self) -> Iterator[FrameSample]:
        w = self.window
        if w.bins_per_rgb != self.bins:
            raise DatasetError(f"{self.path}: {self.bins} event image(s) per stamp but the window cuts "
                               f"{w.bins_per_rgb} bins per frame; build with a matching window (hstnn-dataset and "
                               "hstnn-fit-route take it from the folder)")
        if w.polarity != self.polarity:
            raise DatasetError(f"{self.path}: event images {'carry' if self.polarity else 'lack'} polarity but the "
                               f"window has polarity={w.polarity}; build with a matching window")
        if w.depth:
            raise DatasetError(f"{self.path}: frame folders have no depth; build without --depth")
        shape = None
        for k, t in enumerate(tqdm(self.stamps.tolist(), desc=f"frames {self.path.name}", disable=not self.progress,
                                   leave=False)):
            files = self.event_files[k * self.bins:(k + 1) * self.bins]
            ev = np.stack([_event_counts(_read_image(p), p) for p in files])
            if shape is not None and ev.shape != shape:
                raise DatasetError(f"{files[0]}: event image of size {ev.shape[-2:]}, earlier ones are "
                                   f"{shape[-2:]}; one sensor per traversal")
            shape = ev.shape
            rgb = _colour(_read_image(self.rgb_files[k]), self.rgb_files[k]) if self.rgb_files else None
            yield FrameSample(int(t), ev, rgb)


# ---------------------------------------------------------------------------------------------------------- AEDAT4
class Aedat4Frames:
    """An AEDAT4 file (iniVation, through dv-processing): its event stream, and its frame stream as the colour
    frames when it has one (DAVIS; grey frames are replicated to RGB), else events-only on the ``VirtualClock``."""

    def __init__(self, path: Path | str, *, window: WindowSpec | None = None, progress: bool = True,
                 use_frames: bool = True, frame_period_ns: int = defaults.EVENTS_ONLY_FRAME_PERIOD_NS) -> None:
        import dv_processing as dv  # noqa: PLC0415

        self.path = Path(path)
        self.window, self.progress = window or WindowSpec(), progress
        self.frame_period_ns = frame_period_ns
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: no such AEDAT4 file")
        try:
            rec = dv.io.MonoCameraRecording(str(self.path))
        except RuntimeError as exc:
            raise DatasetError(f"{self.path}: not a readable AEDAT4 file ({exc})") from exc
        if not rec.isEventStreamAvailable():
            raise DatasetError(f"{self.path}: the AEDAT4 file has no event stream")
        self.has_frames = bool(use_frames and rec.isFrameStreamAvailable())
        self.events_only = not self.has_frames

    def window_hints(self) -> dict[str, Any]:
        return {}

    def labels(self, mode: LabelSpec | Labelling, stamps: np.ndarray, places: int | None) -> tuple[np.ndarray, int]:
        spec = LabelSpec.of(mode)
        _no_places_from(self.path, spec, "AEDAT4 files")
        return place_labels(self.path, spec, stamps, np.zeros((0, 3)), places)

    def _frames(self) -> Iterator[tuple[int, np.ndarray]]:
        import dv_processing as dv  # noqa: PLC0415

        rec = dv.io.MonoCameraRecording(str(self.path))
        last = None
        while True:
            f = rec.getNextFrame()
            if f is None:
                return
            t = int(f.timestamp) * 1000
            if last is not None and t <= last:
                log.warning("%s: frame at %d us is not after the previous one; skipped", self.path, f.timestamp)
                continue
            last = t
            img = f.image
            yield t, (np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else
                      cv2.cvtColor(img, cv2.COLOR_BGR2RGB)).astype(np.uint8)

    def __iter__(self) -> Iterator[FrameSample]:
        try:
            yield from cut_frames(iter_aedat4(self.path), self._frames() if self.has_frames else None, self.window,
                                  frame_period_ns=self.frame_period_ns, source=self.path)
        except DecodeError as exc:
            raise DatasetError(f"{self.path}: {exc}") from exc


# --------------------------------------------------------------------------------------------------------- raw EVT3
@dataclass(frozen=True)
class RawHeader:
    """The ASCII header of a Prophesee ``.raw`` file: ``% key value`` lines up to ``% end`` (or the first line not
    starting with ``% ``); ``fields`` maps keys to values, ``data_offset`` is where the event words start."""

    fields: dict[str, str] = field(default_factory=dict)
    width: int = 0
    height: int = 0
    data_offset: int = 0


def read_raw_header(fh: BinaryIO, source: Path | str = "raw file") -> RawHeader:
    """Parse the header at the start of ``fh`` (left positioned at the first event word). Only EVT 3.0 is read; the
    sensor size comes from ``format EVT3;height=H;width=W`` or ``geometry WxH``. Refused, naming ``source``: another
    encoding, a missing or malformed size, a non-ASCII header line."""
    fields: dict[str, str] = {}
    fh.seek(0)
    offset = 0
    while True:
        line = fh.readline(1 << 16)  # bounded: without `% end` the first data "line" is binary
        if not line.startswith(b"% "):
            break
        offset += len(line)
        try:
            text = line[2:].decode("ascii").rstrip("\r\n")
        except UnicodeDecodeError:
            raise DatasetError(f"{source}: header line {line[:40]!r} is not ASCII; not a Prophesee RAW file") from None
        key, _, value = text.partition(" ")
        if key == "end":
            break
        fields[key.strip()] = value.strip()
    fh.seek(offset)
    fmt = fields.get("format", "")
    evt = fields.get("evt", "")
    parts = dict(p.split("=", 1) for p in fmt.split(";")[1:] if "=" in p)
    name = fmt.split(";")[0].strip().upper() if fmt else ("EVT3" if evt.startswith("3") else evt)
    if name not in ("EVT3", "EVT3.0"):
        raise DatasetError(f"{source}: encoding {name or 'unknown (no `% format` or `% evt` line)'!r}; only EVT 3.0 "
                           "raw files are read (convert others with metavision_file_to_hdf5 or record in EVT3)")
    try:
        if "width" in parts and "height" in parts:
            w, h = int(parts["width"]), int(parts["height"])
        elif "geometry" in fields:
            w, h = (int(v) for v in fields["geometry"].lower().split("x"))
        else:
            w = h = 0
    except ValueError:
        raise DatasetError(f"{source}: malformed sensor size in the header ({fmt!r}, {fields.get('geometry')!r})"
                           ) from None
    if not (0 < w <= 2048 and 0 < h <= 2048):
        raise DatasetError(f"{source}: header gives no usable sensor size ({w}x{h}); it needs `% format "
                           "EVT3;height=H;width=W` or `% geometry WxH`")
    return RawHeader(fields, w, h, offset)


def write_raw_header(width: int, height: int, extra: dict[str, str] | None = None) -> bytes:
    """A ``.raw`` header for an EVT3 stream of a ``width`` x ``height`` sensor (tests and exporters)."""
    lines = [f"% {k} {v}" for k, v in (extra or {}).items()]
    lines += ["% evt 3.0", f"% format EVT3;height={height};width={width}", f"% geometry {width}x{height}", "% end"]
    return ("\n".join(lines) + "\n").encode("ascii")


class RawEvt3Frames:
    """A Prophesee raw EVT3 file, decoded in chunks by the package's evt3 decoder (``decode_evt3``); events-only
    frames on the ``VirtualClock``. Events outside the sensor are dropped (counted in a warning)."""

    CHUNK_BYTES = 1 << 22

    def __init__(self, path: Path | str, *, window: WindowSpec | None = None, progress: bool = True,
                 frame_period_ns: int = defaults.EVENTS_ONLY_FRAME_PERIOD_NS) -> None:
        self.path = Path(path)
        self.window, self.progress = window or WindowSpec(), progress
        self.frame_period_ns = frame_period_ns
        self.events_only = True
        try:
            with self.path.open("rb") as fh:
                self.header = read_raw_header(fh, self.path)
        except OSError as exc:
            raise DatasetError(f"{self.path}: cannot read the raw file ({exc})") from exc
        self.dropped = 0

    def window_hints(self) -> dict[str, Any]:
        return {}

    def labels(self, mode: LabelSpec | Labelling, stamps: np.ndarray, places: int | None) -> tuple[np.ndarray, int]:
        spec = LabelSpec.of(mode)
        _no_places_from(self.path, spec, "raw EVT3 files")
        return place_labels(self.path, spec, stamps, np.zeros((0, 3)), places)

    def batches(self) -> Iterator[EventBatch]:
        """The file's events as batches (one per chunk of words), sensor time in ns."""
        w, h = self.header.width, self.header.height
        state = Evt3State()
        size = self.path.stat().st_size - self.header.data_offset
        if size % 2:
            log.warning("%s: odd number of data bytes; the last byte is ignored (truncated file?)", self.path)
        with self.path.open("rb") as fh, tqdm(total=size, unit="B", unit_scale=True, desc=f"decode {self.path.name}",
                                              disable=not self.progress, leave=False) as bar:
            fh.seek(self.header.data_offset)
            while True:
                data = fh.read(self.CHUNK_BYTES)
                if len(data) < 2:
                    break
                bar.update(len(data))
                d = decode_evt3(np.frombuffer(data, np.uint8, count=len(data) // 2 * 2), state)
                keep = (d.x < w) & (d.y < h)
                if not keep.all():
                    self.dropped += int((~keep).sum())
                if keep.any():
                    yield EventBatch(d.t_ns[keep], d.x[keep].astype(np.uint16), d.y[keep].astype(np.uint16),
                                     d.p[keep].astype(np.uint8), w, h)
        if self.dropped:
            log.warning("%s: %d events outside the %dx%d sensor dropped", self.path, self.dropped, w, h)

    def __iter__(self) -> Iterator[FrameSample]:
        yield from cut_frames(self.batches(), None, self.window, frame_period_ns=self.frame_period_ns,
                              source=self.path)


# ------------------------------------------------------------------------------------------------------- dispatch
def recording_kind(path: Path | str) -> RecordingKind:
    """What ``open_recording`` reads ``path`` as; a path that is none of them is refused, naming it."""
    p = Path(path)
    if p.is_file():
        suffix = p.suffix.lower()
        if suffix == AEDAT4_SUFFIX:
            return RecordingKind.AEDAT4
        if suffix == RAW_SUFFIX:
            return RecordingKind.RAW
        if suffix in (".mcap", ".db3"):
            return RecordingKind.BAG
        raise DatasetError(f"{p}: unknown recording file type {suffix!r}; give a rosbag2 folder, a .mcap/.db3 file, "
                           f"an {AEDAT4_SUFFIX} or {RAW_SUFFIX} file, or a frame folder with {STAMPS_FILE}")
    if p.is_dir():
        if (p / "metadata.yaml").is_file() or any(p.glob("*.mcap")) or any(p.glob("*.db3")):
            return RecordingKind.BAG
        if (p / FRAMES_DIR).is_dir():
            return RecordingKind.NEUROGPR
        if (p / STAMPS_FILE).is_file():
            return RecordingKind.FRAMES
        raise DatasetError(f"{p}: neither a rosbag2 folder, a NeuroGPR traversal nor a frame folder (no "
                           f"metadata.yaml/.mcap/.db3, {FRAMES_DIR}/ or {STAMPS_FILE})")
    raise DatasetError(f"{p}: no such recording")


def open_recording(path: Path | str, *, window: WindowSpec | None = None, topics: Topics = Topics(),
                   label: LabelSpec | Labelling | str = Labelling.TIME, progress: bool = True) -> FrameSource:
    """The frame source of one traversal's recording, by what ``path`` is (``recording_kind``)."""
    window = window or WindowSpec()
    spec = LabelSpec.of(label)
    kind = recording_kind(path)
    if kind is RecordingKind.BAG:
        return BagFrames(Path(path), topics=topics, window=window, progress=progress).with_label_topic(
            spec.arg if spec.mode is Labelling.TOPIC else None)
    if spec.mode is Labelling.TOPIC:
        raise DatasetError(f"{path}: --label {spec} reads a bag topic, and this is a {kind} recording; use --label "
                           "csv or time")
    if kind is RecordingKind.NEUROGPR:
        return NeuroGPRFrames(path, window=window, progress=progress)
    if kind is RecordingKind.FRAMES:
        return FrameFolder(path, window=window, progress=progress)
    if kind is RecordingKind.AEDAT4:
        return Aedat4Frames(path, window=window, progress=progress)
    return RawEvt3Frames(path, window=window, progress=progress)


def window_for(paths: Sequence[Path | str], base: WindowSpec) -> WindowSpec:
    """``base`` with what the recordings fix (event images per frame and polarity of frame folders) applied, so the
    user never types what the data already says; recordings that disagree are refused, naming them."""
    fixed: dict[str, tuple[Any, Path]] = {}
    for p in paths:
        if recording_kind(p) is not RecordingKind.FRAMES:
            continue
        for k, v in FrameFolder(p, progress=False).window_hints().items():
            if k in fixed and fixed[k][0] != v:
                raise DatasetError(f"{p}: {k}={v}, but {fixed[k][1]} has {k}={fixed[k][0]}; one dataset needs one "
                                   "window")
            fixed[k] = (v, Path(p))
    if not fixed:
        return base
    kw: dict[str, Any] = {}
    if "bins_per_rgb" in fixed:
        bins = int(fixed["bins_per_rgb"][0])
        kw["event_frames"] = bins * base.rgb_frames
        kw["rgb_steps"] = tuple(bins * (j + 1) - 1 for j in range(base.rgb_frames))
    if "polarity" in fixed:
        kw["polarity"] = bool(fixed["polarity"][0])
        if not kw["polarity"]:
            kw["clip"], kw["normalize"] = None, "none"
    return dataclasses.replace(base, **kw)


def parse_recording_args(items: Sequence[str], *, default_env: str | None = None, option: str = "--bags"
                         ) -> list[tuple[Path, str]]:
    """``ENV=PATH [PATH ...] [ENV=PATH ...]`` (what ``--bags`` takes) as ``(path, env)`` pairs: a bare path belongs to
    the environment named before it (``default_env`` before any is named; ``None``: refused)."""
    out: list[tuple[Path, str]] = []
    env: str | None = default_env
    for item in items:
        head, sep, rest = item.partition("=")
        path = item
        if sep and head and "/" not in head:
            env, path = head, rest
        if env is None:
            raise DatasetError(f"{option} item {item!r}: name its environment first, e.g. env1={item} (ENV=PATH ...)")
        if not path:
            raise DatasetError(f"{option} item {item!r}: no recording after the environment name")
        out.append((Path(path), env))
    return out


def build_recordings_dataset(recordings: Sequence[tuple[Path | str, str]], out: Path | str, *,
                             window: WindowSpec | None = None, label: LabelSpec | Labelling | str = Labelling.TIME,
                             places: int | None = None, topics: Topics = Topics(), progress: bool = True,
                             ) -> WindowDataset:
    """A window dataset from ``(recording, env)`` pairs of any kind (bags, NeuroGPR or frame folders, AEDAT4, raw
    EVT3; one per traversal), with the window the recordings fix (``window_for``)."""
    spec = LabelSpec.of(label)
    window = window_for([p for p, _ in recordings], window or WindowSpec())
    sources = [(open_recording(p, window=window, topics=topics, label=spec, progress=progress), env)
               for p, env in recordings]
    kinds = sorted({recording_kind(p).value for p, _ in recordings})
    return build_dataset_from(sources, Path(out), window=window, labelling=spec, places=places, progress=progress,
                              extra={"recordings": kinds, "topics": vars(topics)})
