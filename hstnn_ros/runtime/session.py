"""A session: a model (a bundle directory, or a preset that names one) loaded into a running engine.

``open_session`` is the one place where a preset or bundle becomes a pipeline and an engine: the node, ``hstnn-replay``,
the demo and the benchmarks all call it. The ``auto`` preset starts on the default bundle and switches once the scene
is measured (``Session.adopt_scene``), without losing queued input.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from hstnn_ros.enums import Environment
from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine
from hstnn_ros.runtime.enums import Preset
from hstnn_ros.runtime.loading import load_pipeline
from hstnn_ros.runtime.pipeline import Pipeline
from hstnn_ros.runtime.presets import (
    UNSURE_MARGIN,
    SceneStats,
    choose_environment,
    load_references,
    parse_preset,
    resolve_bundle,
)

LOG = logging.getLogger(__name__)


@dataclass
class Session:
    """A loaded model and the engine running it.

    Attributes:
        engine: the online engine (its ``pipeline`` is the loaded model).
        bundle: the bundle directory in use.
        preset: the preset asked for (``None`` when a bundle directory was given).
        environment: the lighting environment whose model runs (``None``: default, events-only or a given bundle).
        models_dir: where presets are resolved (``None``: the shipped models).
    """

    engine: PlaceRecognitionEngine
    bundle: Path
    preset: Preset | None
    environment: Environment | None = None
    models_dir: Path | None = None
    scene_measured: bool = False  #: ``auto``: a scene measurement has decided (environment None: unsure, default)

    @property
    def pipeline(self) -> Pipeline:
        """The model the engine runs."""
        return self.engine.pipeline

    @property
    def awaiting_scene(self) -> bool:
        """True for ``auto`` until a scene measurement has chosen the environment."""
        return self.preset is Preset.AUTO and self.environment is None and not self.scene_measured

    def choose(self, stats: SceneStats) -> tuple[Environment | None, Path]:
        """The environment ``auto`` picks for ``stats`` and its bundle (nothing is loaded); ``None`` and the default
        bundle when two environments are too close to call (``UNSURE_MARGIN``)."""
        env = choose_environment(stats, load_references(self.models_dir), margin=UNSURE_MARGIN)
        return env, resolve_bundle(Preset.of(env) if env is not None else Preset.DEFAULT, self.models_dir)

    def adopt(self, env: Environment | None, bundle: Path, pipeline: Pipeline | None = None) -> None:
        """Run ``bundle`` (already loaded as ``pipeline``, or loaded here) from the next decision on. Queued frames
        and buffered events are kept; only the feature window restarts."""
        if Path(bundle).resolve() != self.bundle.resolve():
            self.engine.replace_pipeline(pipeline or load_pipeline(bundle))
            self.bundle = Path(bundle)
        self.environment = env
        self.scene_measured = True

    def adopt_scene(self, stats: SceneStats) -> Environment | None:
        """``auto``: choose the environment of ``stats`` and switch to its model (loading it in the caller's thread;
        the node loads off its callbacks with ``choose`` + ``load_pipeline`` + ``adopt``)."""
        env, bundle = self.choose(stats)
        self.adopt(env, bundle)
        return env


def open_session(
    model: Path | str | None = None,
    preset: Preset | str = Preset.DEFAULT,
    *,
    config: EngineConfig | None = None,
    scene: SceneStats | None = None,
    models_dir: Path | None = None,
    frontends: Path | str | None = None,
) -> Session:
    """Load a model into a new engine.

    Args:
        model: a bundle directory; it wins over ``preset``.
        preset: a ``Preset`` (or its name) resolved to a shipped bundle (``models_dir`` overrides where).
        config: engine settings (queues, delays, device); how inputs are windowed comes from the bundle.
        scene: for ``auto``, the scene statistics measured already (a bag's first seconds); without them the
            session starts on the default bundle and ``adopt_scene`` switches later.
        frontends: with ``model``, a front-end bundle for a model that names none (``load_pipeline``).

    Raises:
        RuntimeEngineError: unknown preset, missing or invalid bundle, impossible engine settings.
    """
    if model is not None and str(model):
        bundle = Path(model)
        return Session(PlaceRecognitionEngine(load_pipeline(bundle, frontends), config), bundle, None,
                       models_dir=models_dir)
    p = parse_preset(preset)
    env = p.environment
    measured = p is Preset.AUTO and scene is not None
    if measured:
        env = choose_environment(scene, load_references(models_dir), margin=UNSURE_MARGIN)
        LOG.info("auto preset: %s -> %s", scene, env.value if env else "unsure: default model")
    bundle = resolve_bundle(Preset.of(env) if env is not None else p, models_dir)
    return Session(PlaceRecognitionEngine(load_pipeline(bundle), config), bundle, p, env, models_dir, measured)
