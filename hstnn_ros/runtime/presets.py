"""Presets: which shipped model bundle to run, by name or (``auto``) chosen from the measured scene.

``auto`` measures the scene (mean RGB brightness in [0, 1] and event rate in events/s per pixel) and picks the
lighting environment whose reference statistics are nearest in normalised log space. The reference statistics of the
shipped models live in ``models/presets.json`` (written by ``build_models``); built-in fallbacks follow the paper's
environments (env1 bright indoor, env2 outdoor varying light: bright and busy, env3 dim indoor: dark, few events).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from hstnn_ros import defaults
from hstnn_ros.enums import Environment
from hstnn_ros.runtime.enums import Preset
from hstnn_ros.runtime.errors import RuntimeEngineError

LOG = logging.getLogger(__name__)

PRESETS_FILE = "presets.json"


@dataclass(frozen=True)
class SceneStats:
    """Measured illumination and activity of a scene: mean RGB brightness in [0, 1] (``nan`` without RGB) and
    events per second per pixel."""

    brightness: float
    event_rate_hz_px: float


class SceneMeter:
    """Accumulates brightness and event counts from live inputs until ``seconds`` of sensor time are covered (the
    ``auto`` preset of the node; replay measures from the bag instead)."""

    def __init__(self, seconds: float = 2.0) -> None:
        self.seconds = seconds
        self._t0: int | None = None
        self._t1 = 0
        self._events = 0
        self._pixels = 0
        self._bright: list[float] = []

    def _span(self, t_ns: int) -> None:
        self._t0 = t_ns if self._t0 is None else min(self._t0, t_ns)
        self._t1 = max(self._t1, t_ns)

    def add_events(self, batch: object) -> None:
        """Count an ``EventBatch`` (columnar ``t_ns`` plus ``width``/``height``)."""
        t = batch.t_ns  # type: ignore[attr-defined]
        if len(t):
            self._span(int(t[0]))
            self._span(int(t[-1]))
            self._events += len(t)
            self._pixels = int(batch.width) * int(batch.height)  # type: ignore[attr-defined]

    def add_image(self, stamp_ns: int, rgb: object) -> None:
        """Record the mean brightness of an RGB frame (uint8)."""
        self._span(stamp_ns)
        self._bright.append(float(rgb.mean()) / 255.0)  # type: ignore[attr-defined]

    @property
    def ready(self) -> bool:
        """True once ``seconds`` of sensor time have been seen."""
        return self._t0 is not None and (self._t1 - self._t0) >= self.seconds * 1e9

    def stats(self) -> SceneStats:
        """The measured statistics (brightness ``nan`` without RGB)."""
        span = max((self._t1 - (self._t0 or 0)) / 1e9, 1e-3)
        rate = self._events / span / self._pixels if self._pixels else 0.0
        return SceneStats(sum(self._bright) / len(self._bright) if self._bright else math.nan, rate)


#: Fallback reference statistics per environment when ``models/presets.json`` does not provide them.
DEFAULT_REFERENCES: dict[Environment, SceneStats] = {
    Environment.ENV1: SceneStats(0.55, 0.5),
    Environment.ENV2: SceneStats(0.65, 2.0),
    Environment.ENV3: SceneStats(0.12, 0.1),
}


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


def choose_environment(stats: SceneStats, references: dict[Environment, SceneStats] | None = None) -> Environment:
    """The environment whose reference statistics are nearest to ``stats`` (log brightness and log event rate,
    each scaled by its spread across the references; brightness ignored when unknown)."""
    refs = references or DEFAULT_REFERENCES
    envs = list(refs)
    lb = [math.log(max(refs[e].brightness, 1e-3)) for e in envs]
    lr = [math.log(max(refs[e].event_rate_hz_px, 1e-6)) for e in envs]
    sb = (max(lb) - min(lb)) or 1.0
    sr = (max(lr) - min(lr)) or 1.0
    q_r = math.log(max(stats.event_rate_hz_px, 1e-6))
    has_b = not math.isnan(stats.brightness)
    q_b = math.log(max(stats.brightness, 1e-3)) if has_b else 0.0

    def dist(i: int) -> float:
        d = ((q_r - lr[i]) / sr) ** 2
        if has_b:
            d += ((q_b - lb[i]) / sb) ** 2
        return d

    return envs[min(range(len(envs)), key=dist)]


def load_references(models_dir: Path | None = None) -> dict[Environment, SceneStats]:
    """Reference statistics from ``models/presets.json`` (``{"env1": {"brightness":..., "event_rate_hz_px":...}}``),
    else the built-in defaults."""
    path = (models_dir or defaults.shipped_models_dir()) / PRESETS_FILE
    if not path.is_file():
        return dict(DEFAULT_REFERENCES)
    try:
        raw = json.loads(path.read_text())
        refs = {
            Environment(k): SceneStats(float(v["brightness"]), float(v["event_rate_hz_px"]))
            for k, v in raw.get("references", {}).items()
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeEngineError(f"{path}: malformed presets file ({exc}); rebuild it with build_models") from exc
    return refs or dict(DEFAULT_REFERENCES)


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
