"""The NeuroGPR dataset layout (Zenodo 7827108, cognav/NeuroGPR; DESIGN.md section 8): reader and exporter.

One folder per traversal ``<env>_v<k>/``::

    dvs_frames/<stamp>.png        APS/RGB frame (grey or colour PNG; grey is replicated to 3 channels)
    dvs_7ms_3seq/<stamp>[.npy]    event counts [2, 3, H, W]: polarity (0 = OFF, 1 = ON) x 3 bins of 7 ms ending at
                                  <stamp>; ``torch.save`` (loaded with ``weights_only=True``) or ``.npy``
    position.txt, direction.txt   space-separated, column 0 = time in seconds (then x y z / a quaternion)

``<stamp>`` is decimal seconds (``1631175418.452437``) or integer nanoseconds; it is parsed exactly (``Decimal``).
Labels: equal-time bins ``int((t - t0) / (t1 - t0) * places)`` (NeuroGPR: 100 places) or distance along
``position.txt``. The reader yields the same :class:`~hstnn_ros.datasets.windows.FrameSample` stream as a bag, so a
dataset built from a bag and from that bag exported here are identical (tested).

Bad input is refused, naming the file and the fix: a frame without its event tensor (or a tensor without its
frame), two files with one stamp, a file name that is not a stamp in ``dvs_7ms_3seq/`` (tensors may have no
extension, so a stray file cannot be told from a misnamed tensor), an unreadable PNG or tensor, a tensor of the wrong
shape or with negative/non-finite counts, a missing ``position.txt`` when distance labels are asked. Refused rather
than skipped because a window is 3 consecutive frames: a silently dropped frame would make one window span twice the
time, and labels move. Only what cannot be data is skipped: hidden files, and non-PNG files in ``dvs_frames/`` (with
a warning). The exporter refuses a non-empty output folder (old files would mix in) and repeated frame stamps.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from hstnn_ros.datasets.errors import DatasetError
from hstnn_ros.datasets.labels import Labelling, LabelSpec, place_labels
from hstnn_ros.datasets.stamps import format_stamp, parse_stamp
from hstnn_ros.datasets.topics import Topics
from hstnn_ros.datasets.windows import BagFrames, FrameSample, WindowDataset, build_dataset_from
from hstnn_ros.perception.window import WindowSpec

log = logging.getLogger(__name__)

FRAMES_DIR = "dvs_frames"
EVENTS_DIR = "dvs_7ms_3seq"
POSITION = "position.txt"
DIRECTION = "direction.txt"
TENSOR_SUFFIXES = ("", ".npy", ".pt", ".pth")
_FOLDER = re.compile(r"^(?P<env>.+)_v(?P<k>\d+)$")
def traversal_env(folder: Path) -> str:
    """The environment of a ``<env>_v<k>`` folder."""
    m = _FOLDER.match(folder.name)
    if not m:
        raise DatasetError(f"{folder}: a NeuroGPR traversal folder is named <env>_v<k> (e.g. env1_v3); rename it")
    return m["env"]


def find_traversals(paths: Sequence[Path | str]) -> list[Path]:
    """Traversal folders given directly or as the children of a dataset root."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise DatasetError(f"{p}: no such NeuroGPR folder")
        if (p / FRAMES_DIR).is_dir():
            out.append(p)
        else:
            kids = sorted(c for c in p.iterdir() if (c / FRAMES_DIR).is_dir())
            if not kids:
                raise DatasetError(f"{p}: neither a traversal (no {FRAMES_DIR}/) nor a root of <env>_v<k> traversals")
            out.extend(kids)
    return out


def _load_tensor(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        import torch  # noqa: PLC0415 - only torch-saved tensors need it

        t = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(t, torch.Tensor):
            raise DatasetError(f"{path}: holds a {type(t).__name__}, not a tensor [2, 3, H, W]")
        return t.numpy()
    except DatasetError:
        raise
    except Exception as exc:  # numpy/torch raise many types for corrupt files
        raise DatasetError(f"{path}: unreadable event tensor ({exc}); restore it from the dataset archive") from exc


def _read_table(path: Path, columns: int) -> np.ndarray:
    """``[n, columns]`` of a space-separated table: column 0 (time) in nanoseconds, parsed exactly then held as
    float64 like the bag odometry, the rest as finite float64; extra columns ignored, times must not go back."""
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{i + 1}"
        if len(parts) < columns:
            raise DatasetError(f"{where}: {len(parts)} columns, need at least {columns} (time then values)")
        try:
            values = [float(v) for v in parts[1:columns]]
        except ValueError:
            raise DatasetError(f"{where}: not numbers: {line!r}") from None
        if not np.all(np.isfinite(values)):
            raise DatasetError(f"{where}: non-finite value in {line!r}")
        rows.append([parse_stamp(parts[0], where), *values])
    table = np.asarray(rows, np.float64).reshape(-1, columns)
    back = np.flatnonzero(np.diff(table[:, 0]) < 0)
    if len(back):
        raise DatasetError(f"{path}: time goes backwards after row {back[0] + 1}; sort the file by its first column")
    return table


def _list_stamped(folder: Path, suffixes: tuple[str, ...]) -> dict[int, Path]:
    """Files of ``folder`` by the stamp in their name (``<stamp><suffix>``). Hidden files are ignored; two files
    with one stamp (``1.5.png``, ``1.500.png``) are refused."""
    out: dict[int, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        suffix = next((x for x in suffixes if x and p.name.endswith(x)), "")
        if suffix == "" and "" not in suffixes:
            log.warning("%s: not a %s file; skipped", p, "/".join(suffixes))
            continue
        t = parse_stamp(p.name[: len(p.name) - len(suffix)], p)
        if t in out:
            raise DatasetError(f"{p}: same timestamp as {out[t].name}; delete one of them")
        out[t] = p
    return out


class NeuroGPRFrames:
    """The frames of one NeuroGPR traversal folder, as the same ``FrameSample`` stream a bag gives."""

    def __init__(self, folder: Path | str, *, window: WindowSpec | None = None, progress: bool = True) -> None:
        self.path = Path(folder)
        self.window, self.progress = window or WindowSpec(), progress
        window = self.window
        if window.depth:
            raise DatasetError(f"{self.path}: the NeuroGPR layout has no depth; build without --depth")
        frames_dir, events_dir = self.path / FRAMES_DIR, self.path / EVENTS_DIR
        for d in (frames_dir, events_dir):
            if not d.is_dir():
                raise DatasetError(f"{d}: missing; a NeuroGPR traversal has {FRAMES_DIR}/ and {EVENTS_DIR}/")
        frames, tensors = _list_stamped(frames_dir, (".png",)), _list_stamped(events_dir, TENSOR_SUFFIXES)
        for t in sorted(frames.keys() - tensors.keys())[:1]:
            raise DatasetError(f"{frames[t]}: its event tensor in {events_dir} is missing; restore it from the "
                               "dataset archive or delete the frame to drop it")
        for t in sorted(tensors.keys() - frames.keys())[:1]:
            raise DatasetError(f"{tensors[t]}: its frame in {frames_dir} is missing; restore it from the dataset "
                               "archive or delete the tensor to drop it")
        if not frames:
            raise DatasetError(f"{frames_dir}: no PNG frames")
        self.stamps = np.array(sorted(frames), np.int64)
        self._files = [(frames[t], tensors[t]) for t in self.stamps.tolist()]

    def positions(self) -> np.ndarray:
        """``[n, 3]`` t_ns, x, y of ``position.txt`` (what distance labels need; z, if present, is ignored)."""
        path = self.path / POSITION
        if not path.is_file():
            raise DatasetError(f"{path}: missing; distance labels need positions (or use --label time)")
        return _read_table(path, 3)

    def labels(self, mode: LabelSpec | Labelling, stamps: np.ndarray, places: int | None) -> tuple[np.ndarray, int]:
        spec = LabelSpec.of(mode)
        if spec.mode in (Labelling.ROUTE, Labelling.TOPIC):
            raise DatasetError(f"{self.path}: NeuroGPR has no route sidecar or label topic; use --label time "
                               "(NeuroGPR's own equal-time bins), distance or csv")
        odom = self.positions() if spec.mode is Labelling.DISTANCE else np.zeros((0, 3))
        return place_labels(self.path, spec, stamps, odom, places)

    def __iter__(self) -> Iterator[FrameSample]:
        shape = None
        for t, (png, ten) in tqdm(list(zip(self.stamps.tolist(), self._files, strict=True)),
                                  desc=f"frames {self.path.name}", disable=not self.progress, leave=False):
            img = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
            if img is None:
                raise DatasetError(f"{png}: unreadable PNG; restore it from the dataset archive")
            if img.ndim == 2:
                img = np.repeat(img[:, :, None], 3, axis=2)
            elif img.shape[2] == 4:
                img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
            else:
                img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            if img.dtype != np.uint8:
                raise DatasetError(f"{png}: {img.dtype} PNG; frames are 8-bit")
            ev = _load_tensor(ten)
            bins = self.window.bins_per_rgb
            if ev.ndim != 4 or ev.shape[:2] != (2, bins) or (shape is not None and ev.shape != shape):
                want = f"[2, {bins}, H, W]" + (f" = {list(shape)}" if shape else "")
                raise DatasetError(f"{ten}: event tensor of shape {list(ev.shape)}, expected {want}")
            shape = ev.shape
            if not np.isfinite(ev).all() or (ev < 0).any():
                raise DatasetError(f"{ten}: event tensor with negative or non-finite values; it must hold event "
                                   "counts (restore it from the dataset archive)")
            yield FrameSample(int(t), np.ascontiguousarray(ev.transpose(1, 0, 2, 3), np.float32), img)


def build_neurogpr_dataset(paths: Sequence[Path | str], out: Path, *, window: WindowSpec | None = None,
                           labelling: LabelSpec | Labelling = Labelling.TIME, places: int | None = 100,
                           progress: bool = True) -> WindowDataset:
    """A window dataset from NeuroGPR traversal folders (or roots holding them); splits by traversal per env."""
    window = window or WindowSpec()
    folders = find_traversals(paths)
    sources = [(NeuroGPRFrames(f, window=window, progress=progress), traversal_env(f)) for f in folders]
    return build_dataset_from(sources, out, window=window, labelling=labelling, places=places, progress=progress,
                              extra={"neurogpr": [str(f) for f in folders]})


def export_neurogpr(bag: Path | str, out: Path | str, *, topics: Topics | None = None,
                    window: WindowSpec | None = None, tensor_format: str = "npy",
                    progress: bool = True) -> Path:
    """Write one bag (one traversal) in the NeuroGPR layout into folder ``out`` (named ``<env>_v<k>``): per RGB frame
    the lossless PNG and the sensor-resolution counts of the bins ending at its stamp, cut by the same streaming code
    as the dataset builder; ``position.txt``/``direction.txt`` from the odometry topic (empty without one)."""
    if tensor_format not in ("npy", "torch"):
        raise DatasetError(f"tensor_format {tensor_format!r}: use 'npy' or 'torch'")
    out = Path(out)
    traversal_env(out)
    if out.exists() and any(out.iterdir()):
        raise DatasetError(f"{out}: not empty; export into a new folder (old files would mix into the traversal)")
    (out / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
    (out / EVENTS_DIR).mkdir(parents=True, exist_ok=True)
    source = BagFrames(Path(bag), topics=topics or Topics(), window=window or WindowSpec(),
                       sensor_resolution=True, progress=progress)
    n, last = 0, -1
    for s in source:
        if s.stamp_ns <= last:  # one file per stamp: a repeated stamp would overwrite a frame
            raise DatasetError(f"{bag}: RGB frame stamped {s.stamp_ns} ns is not after the previous one "
                               f"({last} ns); the NeuroGPR layout names files by stamp")
        name, last = format_stamp(s.stamp_ns), s.stamp_ns
        if not cv2.imwrite(str(out / FRAMES_DIR / f"{name}.png"), cv2.cvtColor(s.rgb, cv2.COLOR_RGB2BGR)):
            raise DatasetError(f"{out / FRAMES_DIR}: cannot write {name}.png")
        counts = np.ascontiguousarray(s.events.transpose(1, 0, 2, 3))  # -> [2, bins, h, w]
        if tensor_format == "npy":
            np.save(out / EVENTS_DIR / f"{name}.npy", counts)
        else:
            import torch  # noqa: PLC0415

            torch.save(torch.from_numpy(counts), out / EVENTS_DIR / name)
        n += 1
    with (out / POSITION).open("w") as fp, (out / DIRECTION).open("w") as fd:
        for t_ns, row in zip(source.odometry_ns.tolist(), source.odometry.tolist(), strict=True):
            t = format_stamp(t_ns)
            fp.write(f"{t} {row[1]!r} {row[2]!r} {row[3]!r}\n")
            fd.write(f"{t} {row[4]!r} {row[5]!r} {row[6]!r} {row[7]!r}\n")
    log.info("exported %d frames of %s to %s", n, bag, out)
    return out
