"""Presets: which shipped model bundle to run, by name or (``auto``) chosen from the measured scene.

``auto`` measures the scene (``SceneMeter``: brightness, event rate, brightness variation over time, RGB noise, ON/OFF
balance) and picks the lighting environment whose reference statistics are nearest in log space, each feature scaled
by its measured spread plus a 30 % measurement error; when two environments are too close to call it keeps the
default model. The reference statistics of the
shipped models live in ``models/presets.json`` (written by ``hstnn-fit-route``: per environment the median of every
``SceneMeter`` feature over 1 s windows of its training traversals, and each feature's spread); built-in fallbacks
follow the paper's environments (env1 bright indoor, env2 outdoor varying light, env3 dim indoor: dark, noisy).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hstnn_ros import defaults
from hstnn_ros.enums import Environment
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.runtime.enums import ItemKind, Preset
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.replay import ReplayItem

LOG = logging.getLogger(__name__)

PRESETS_FILE = "presets.json"
PRESETS_FORMAT = "hstnn_ros.presets"


@dataclass(frozen=True)
class SceneStats:
    """Measured illumination and activity of a scene (``nan``: not measured, e.g. no RGB):

    - ``brightness``: mean RGB brightness in [0, 1];
    - ``event_rate_hz_px``: events per second per pixel;
    - ``brightness_variation``: how much the frame brightness changes over the measured time (standard deviation of
      the frames' mean brightness over its mean; drifting outdoor light and cloud shadows raise it);
    - ``rgb_noise``: per-pixel sensor noise of the colour frames (Immerkaer's estimator on the grey image, in
      [0, 1] units; low light raises it);
    - ``on_fraction``: share of ON events (background activity pulls it towards its own balance).
    """

    brightness: float
    event_rate_hz_px: float
    brightness_variation: float = math.nan
    rgb_noise: float = math.nan
    on_fraction: float = math.nan

    def features(self) -> dict[str, float]:
        """The measured features by name (``nan`` where not measured)."""
        return {f: float(getattr(self, f)) for f in SCENE_FEATURES}

    @classmethod
    def from_features(cls, values: dict[str, float]) -> SceneStats:
        """Inverse of ``features`` (missing features are ``nan``)."""
        return cls(**{f: float(values.get(f, math.nan)) for f in SCENE_FEATURES})


#: Every feature ``SceneMeter`` measures, in ``SceneStats`` order.
SCENE_FEATURES = ("brightness", "event_rate_hz_px", "brightness_variation", "rgb_noise", "on_fraction")

#: Immerkaer (1996) noise kernel: zero response to planes and ramps, so mostly noise (and fine texture) remains.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def rgb_noise_level(rgb: np.ndarray) -> float:
    """Immerkaer's fast noise estimate of an RGB frame (uint8 ``[H, W, 3]``) in [0, 1] units:
    ``sqrt(pi / 2) / (6 (W - 2) (H - 2)) * sum |grey * N|``."""
    grey = rgb.astype(np.float32).mean(axis=2) / np.float32(255.0)
    h, w = grey.shape
    if h < 3 or w < 3:
        return math.nan
    resp = cv2.filter2D(grey, cv2.CV_32F, _NOISE_KERNEL)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2) * np.abs(resp).sum() / (6.0 * (w - 2) * (h - 2)))


class SceneMeter:
    """Accumulates the scene features of ``SceneStats`` from live inputs until ``seconds`` of sensor time are
    covered: the one scene measurement of the node's ``auto`` preset, of bag replay (``BagSource.scene_stats``) and
    of the references ``hstnn-fit-route`` writes to ``presets.json``."""

    def __init__(self, seconds: float = 2.0) -> None:
        self.seconds = seconds
        self._t0: int | None = None
        self._t1 = 0
        self._events = 0
        self._on = 0
        self._pixels = 0
        self._bright: list[float] = []
        self._noise: list[float] = []

    def _span(self, t_ns: int) -> None:
        self._t0 = t_ns if self._t0 is None else min(self._t0, t_ns)
        self._t1 = max(self._t1, t_ns)

    def add_events(self, batch: EventBatch) -> None:
        """Count an ``EventBatch`` (columnar ``t_ns``, ``p`` plus ``width``/``height``)."""
        t = batch.t_ns
        if len(t):
            self._span(int(t[0]))
            self._span(int(t[-1]))
            self._events += len(t)
            self._on += int(np.count_nonzero(batch.p))
            self._pixels = int(batch.width) * int(batch.height)

    def add_image(self, stamp_ns: int, rgb: np.ndarray) -> None:
        """Record the brightness and noise of an RGB frame (uint8 ``[H, W, 3]``)."""
        self._span(stamp_ns)
        self._bright.append(float(rgb.mean()) / 255.0)
        self._noise.append(rgb_noise_level(rgb))

    @property
    def ready(self) -> bool:
        """True once ``seconds`` of sensor time have been seen."""
        return self._t0 is not None and (self._t1 - self._t0) >= self.seconds * 1e9

    def stats(self) -> SceneStats:
        """The measured statistics (RGB features ``nan`` without RGB, ``on_fraction`` ``nan`` without events)."""
        span = max((self._t1 - (self._t0 or 0)) / 1e9, 1e-3)
        rate = self._events / span / self._pixels if self._pixels else 0.0
        b = np.asarray(self._bright, np.float64)
        mean_b = float(b.mean()) if len(b) else math.nan
        var_b = float(b.std() / max(mean_b, 1e-6)) if len(b) >= 2 else math.nan
        noise = float(np.nanmedian(self._noise)) if self._noise else math.nan
        on = self._on / self._events if self._events else math.nan
        return SceneStats(mean_b, rate, var_b, noise, on)


class SceneReferences(Mapping[Environment, SceneStats]):
    """Reference scene statistics per environment (a mapping ``Environment -> SceneStats``) and, per feature, the
    measured spread of its log within an environment (``spread``: pooled standard deviation over the measurement
    windows of the training traversals; features without it count as spread 0)."""

    def __init__(self, stats: Mapping[Environment, SceneStats], spread: Mapping[str, float] | None = None, *,
                 seconds: float = defaults.SCENE_SECONDS) -> None:
        self.stats = dict(stats)
        self.spread = {k: float(v) for k, v in (spread or {}).items()}
        #: the window the references were measured over: a scene is measured over as long (``meter``)
        self.seconds = float(seconds)

    def meter(self) -> SceneMeter:
        """A ``SceneMeter`` measuring over the references' window."""
        return SceneMeter(self.seconds)

    def __getitem__(self, env: Environment) -> SceneStats:
        return self.stats[env]

    def __iter__(self) -> Iterator[Environment]:
        return iter(self.stats)

    def __len__(self) -> int:
        return len(self.stats)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SceneReferences):
            return self.stats == other.stats and self.spread == other.spread
        return isinstance(other, Mapping) and self.stats == dict(other) and not self.spread

    __hash__ = None  # type: ignore[assignment]  # unhashable on purpose: equal to plain mappings (typeshed wants a method)


#: Fallback reference statistics per environment when ``models/presets.json`` does not provide them (the paper's
#: environments: env1 bright and steady, env2 outdoor: bright, busy and drifting, env3 dim and noisy).
DEFAULT_REFERENCES = SceneReferences({
    Environment.ENV1: SceneStats(0.55, 0.5, 0.005, 0.002),
    Environment.ENV2: SceneStats(0.65, 2.0, 0.04, 0.002),
    Environment.ENV3: SceneStats(0.12, 0.1, 0.005, 0.02),
})

#: Relative measurement error every scene feature is assumed to carry on a new recording on top of its measured
#: spread (a scene measured over 1-2 s of another day, camera or route section): 30 %, i.e. 0.3 in log. Features
#: whose environments differ by less than this weigh little in the choice.
MEASUREMENT_LOG_ERROR = 0.3
#: ``auto`` falls back to the default model when the second-nearest environment is within this of the nearest
#: (difference of squared normalised distances): too close to call.
UNSURE_MARGIN = 1.0
_FLOOR = {"brightness": 1e-3, "event_rate_hz_px": 1e-6, "brightness_variation": 1e-4, "rgb_noise": 1e-4,
          "on_fraction": 1e-3}


def parse_preset(name: str | Preset) -> Preset:
    """``"env1"`` / ``"default"`` / ``"auto"`` / ``"events_only"`` -> ``Preset``; unknown names raise naming the
    choices."""
    if isinstance(name, Preset):
        return name
    try:
        return Preset(str(name).strip().lower())
    except ValueError as exc:
        choices = ", ".join(p.value for p in Preset)
        raise RuntimeEngineError(f"unknown preset {name!r}: choose one of {choices}") from exc


def environment_distances(stats: SceneStats, references: Mapping[Environment, SceneStats] | None = None
                          ) -> dict[Environment, float]:
    """Squared distance of ``stats`` to each environment's reference: the sum over features measured in both of
    ``((log q - log r) / s)**2`` with ``s = sqrt(spread**2 + MEASUREMENT_LOG_ERROR**2)`` (features in log space, so a
    relative error weighs the same at any scale)."""
    refs = references if references is not None else DEFAULT_REFERENCES
    spread = getattr(refs, "spread", {})
    q = stats.features()
    out: dict[Environment, float] = {}
    for env, ref in refs.items():
        d = 0.0
        for name, r in ref.features().items():
            v = q[name]
            if math.isnan(v) or math.isnan(r):
                continue
            scale = math.hypot(spread.get(name, 0.0), MEASUREMENT_LOG_ERROR)
            d += ((math.log(max(v, _FLOOR[name])) - math.log(max(r, _FLOOR[name]))) / scale) ** 2
        out[env] = d
    return out


def choose_environment(stats: SceneStats, references: Mapping[Environment, SceneStats] | None = None, *,
                       margin: float = 0.0) -> Environment | None:
    """The environment whose references are nearest to ``stats`` (``environment_distances``; features not measured,
    e.g. brightness without RGB, are left out). With ``margin > 0``: ``None`` (unsure: run the default model) when
    the second-nearest environment is within ``margin`` of the nearest."""
    dist = environment_distances(stats, references)
    if not dist:
        raise RuntimeEngineError("choose_environment: no reference statistics")
    ranked = sorted(dist, key=dist.__getitem__)
    if margin > 0 and len(ranked) > 1 and dist[ranked[1]] - dist[ranked[0]] < margin:
        return None
    return ranked[0]


def load_references(models_dir: Path | None = None) -> SceneReferences:
    """Reference statistics from ``models/presets.json`` (``references``: per environment the ``SceneStats``
    features, ``spread``: per feature the within-environment log spread), else the built-in defaults."""
    path = (models_dir or defaults.shipped_models_dir()) / PRESETS_FILE
    if not path.is_file():
        return DEFAULT_REFERENCES
    try:
        raw = json.loads(path.read_text())
        refs = {Environment(k): SceneStats.from_features({f: float(x) for f, x in v.items() if f in SCENE_FEATURES})
                for k, v in raw.get("references", {}).items()}
        for env, st in refs.items():
            if math.isnan(st.event_rate_hz_px):
                raise KeyError(f"{env.value}: event_rate_hz_px")
        spread = {k: float(v) for k, v in raw.get("spread", {}).items() if k in SCENE_FEATURES}
        seconds = float(raw.get("seconds", defaults.SCENE_SECONDS))
        if not seconds > 0:
            raise ValueError(f"seconds {seconds}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RuntimeEngineError(f"{path}: malformed presets file ({exc}); rebuild it with hstnn-fit-route") from exc
    return SceneReferences(refs, spread, seconds=seconds) if refs else DEFAULT_REFERENCES


def write_references(models_dir: Path | str, references: SceneReferences, *,
                     extra: dict[str, Any] | None = None) -> Path:
    """Write ``presets.json`` (read back by ``load_references``): the references, their spreads, the measurement
    window in seconds and ``extra`` facts (e.g. windows measured per environment)."""
    doc = {"format": PRESETS_FORMAT, "format_version": 2, "seconds": references.seconds,
           "features": list(SCENE_FEATURES),
           "references": {env.value: {k: v for k, v in st.features().items() if not math.isnan(v)}
                          for env, st in references.items()},
           "spread": references.spread, **(extra or {})}
    path = Path(models_dir) / PRESETS_FILE
    path.write_text(json.dumps(doc, indent=1))
    return path


def measure_scene(items: Iterable[ReplayItem], seconds: float) -> list[SceneStats]:
    """Scene statistics of consecutive ``seconds``-long windows of a time-ordered stream of replay items (events
    items with an ``EventBatch`` payload and image items with ``(rgb, depth)`` are measured, other kinds skipped); a
    last partial window is dropped."""
    out = []
    meter = SceneMeter(seconds)
    for item in items:
        if item.kind is ItemKind.EVENTS:
            meter.add_events(item.payload)
        elif item.kind is ItemKind.IMAGE:
            meter.add_image(item.stamp_ns, item.payload[0])
        if meter.ready:
            out.append(meter.stats())
            meter = SceneMeter(seconds)
    return out


def references_from_windows(windows: Mapping[Environment, Sequence[SceneStats]], *,
                            seconds: float = defaults.SCENE_SECONDS) -> SceneReferences:
    """References from scene measurements per environment (windows of ``seconds``): each feature's median, and its
    within-environment log spread pooled over environments (``spread``)."""
    stats: dict[Environment, SceneStats] = {}
    spread: dict[str, float] = {}
    for name in SCENE_FEATURES:
        dev = []
        for ws in windows.values():
            v = np.array([w.features()[name] for w in ws], np.float64)
            v = v[np.isfinite(v)]
            if len(v):
                lv = np.log(np.maximum(v, _FLOOR[name]))
                dev.append(lv - np.median(lv))
        if dev and sum(len(d) for d in dev) > len(dev):
            spread[name] = float(np.sqrt(np.mean(np.concatenate(dev) ** 2)))
    for env, ws in windows.items():
        if not ws:
            raise RuntimeEngineError(f"no scene measurement for {env.value}: its recordings are shorter than the "
                                     "measurement window")
        med = {}
        for name in SCENE_FEATURES:
            v = np.array([w.features()[name] for w in ws], np.float64)
            v = v[np.isfinite(v)]
            med[name] = float(np.median(v)) if len(v) else math.nan
        stats[env] = SceneStats.from_features(med)
    return SceneReferences(stats, spread, seconds=seconds)


def resolve_bundle(preset: str | Preset, models_dir: Path | None = None) -> Path:
    """Path of the bundle directory of a preset: ``models/<preset>/`` of the shipped models (found in every kind of
    install, see ``defaults.shipped_models_dir``). ``auto`` resolves to the default bundle here (the session switches
    once it has measured the scene); a missing environment bundle falls back to ``default`` with a warning."""
    p = parse_preset(preset)
    root = models_dir or defaults.shipped_models_dir()
    name = Preset.DEFAULT.value if p is Preset.AUTO else p.value
    path = root / name
    if (path / "bundle.json").is_file():
        return path
    fallback = root / Preset.DEFAULT.value
    if p.environment is not None and (fallback / "bundle.json").is_file():
        LOG.warning("no bundle for preset %s in %s: using the default bundle", p.value, root)
        return fallback
    raise RuntimeEngineError(
        f"no model bundle for preset {p.value!r} in {root}: rebuild the shipped models (`make models`), fit your "
        "own (`hstnn-fit-route`) or pass an explicit bundle directory"
    )
