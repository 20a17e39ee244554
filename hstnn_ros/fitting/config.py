"""What ``fit_route`` is asked to do: the recordings, how to label and window them, and the training recipes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hstnn_ros import defaults
from hstnn_ros.datasets.frontend_training import PretrainConfig
from hstnn_ros.datasets.labels import Labelling, LabelSpec
from hstnn_ros.datasets.topics import Topics
from hstnn_ros.enums import Environment
from hstnn_ros.fitting.errors import FitError
from hstnn_ros.learning import TrainConfig, config_from_dict, load_config
from hstnn_ros.perception.window import WindowSpec
from hstnn_ros.runtime.enums import Preset

#: Names of the bundles ``fit_route`` writes besides one per environment.
DEFAULT_TARGET = Preset.DEFAULT.value
EVENTS_ONLY_TARGET = Preset.EVENTS_ONLY.value
#: Environment of off-route recordings given without ``ENV=``.
OFF_ROUTE_ENV = "unnamed"
#: Front-end grid of the shipped small front-ends (``perception.frontends.SMALL``).
FIT_INPUT_HW = (90, 120)


def train_recipe(config: Path | None = None, *, quick: bool = False, hidden: tuple[int, ...] | None = None,
                 ratios: tuple[float, ...] | None = None) -> TrainConfig:
    """The HSTNN training recipe of a fit: ``config`` as given (baselines and seeds it asks for included), or the
    package's recipe (``config/train_place_recognition.yaml``) with one seed and no baselines. ``quick`` shrinks the
    epochs, the Selection budget and the sweep to ratios 0.5 / 0.95 (and the network to 128 + 128 unless
    ``hidden``), and trains on batches of 128 at twice the learning rate (a BPTT step over 9 time steps is many small
    operations: twice the batch costs far less than twice the time); ``hidden`` and ``ratios`` override."""
    if config is not None:
        cfg = load_config(config).to_dict()
    else:
        cfg = load_config(defaults.share_dir() / "config" / "train_place_recognition.yaml").to_dict()
        cfg["sweep"].update(seeds=[0], direct_baselines=False, random_control=False)
    if quick:
        cfg["network"]["hidden"] = [128, 128]
        # direct: None = the baselines get adaptation + restoration epochs (equal total epochs)
        cfg["epochs"] = {"adaptation": 15, "restoration": 10, "direct": None, "patience": 5}
        cfg["selection"]["max_batches"] = 5
        cfg["optim"].update(batch_size=128, lr=2 * cfg["optim"]["lr"])
        cfg["sweep"].update(ratios=[0.5, 0.95], seeds=cfg["sweep"]["seeds"][:1])
        if config is None:
            cfg["sweep"].update(direct_baselines=False, random_control=False)
    if hidden:
        cfg["network"]["hidden"] = list(hidden)
    if ratios:
        cfg["sweep"]["ratios"] = list(ratios)
    return config_from_dict(cfg)


@dataclass(frozen=True)
class FitRouteConfig:
    """A route fit.

    Attributes:
        recordings: ``(recording, environment)`` per traversal (bags, NeuroGPR or frame folders, AEDAT4, raw EVT3);
            traversals of one route share place ids, splits are by traversal (per environment: last = test, one
            before = validation).
        out: where the deployable bundles go (``<env>/``, ``default/``, ``events_only/``, ``frontends/``,
            ``presets.json``, ``MODEL_CARD.md``, ``build_report.json``, ``plots/``): the layout
            ``runtime.presets.resolve_bundle`` reads, so ``out`` can be used as the models directory.
        work: intermediate files and the stage log (default ``out/.work``); a rerun resumes there.
        label, places: how frames get place ids.
        window: how inputs are cut (grid, depth); what the recordings fix (``datasets.recordings.window_for``) wins.
        topics: bag topics (``None``: found by type).
        train: the HSTNN recipe (``train_recipe``).
        pretrain: the front-end recipe; ``full_size``: the paper's front-end widths.
        quick: recorded in the card and report (the recipes were shrunk by the caller).
        embed_frontends: put the front-ends into every bundle instead of a shared ``frontends/`` bundle.
        events_only_model: also train ``events_only`` (RGB block zeroed) when the recordings have colour.
        scene_seconds: the window of the scene measurements in ``presets.json``.
        store_fp16: store shipped HSTNN weights in float16 (half the size; they run in float32).
        unknown_true_accept: the shipped "unknown place" thresholds accept this share of the validation traversals'
            decisions (``fitting.route_calibration``).
        off_route: ``(recording, environment)`` of places NOT on the route (another route, off-map driving): the
            shipped unknown-place rules' false-accept rates are measured on them (``fitting.off_route``); empty:
            the card says the rate is unknown.
        command: the command line, for the model card.
    """

    recordings: tuple[tuple[Path, str], ...]
    out: Path
    work: Path | None = None
    label: LabelSpec = field(default_factory=lambda: LabelSpec(Labelling.DISTANCE))
    places: int | None = None
    window: WindowSpec = WindowSpec(input_hw=FIT_INPUT_HW)
    topics: Topics = Topics()
    train: TrainConfig = field(default_factory=train_recipe)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    full_size: bool = False
    quick: bool = False
    embed_frontends: bool = False
    events_only_model: bool = True
    scene_seconds: float = defaults.SCENE_SECONDS
    store_fp16: bool = True
    unknown_true_accept: float = 0.95
    off_route: tuple[tuple[Path, str], ...] = ()
    command: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "recordings", tuple((Path(p), str(e)) for p, e in self.recordings))
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "label", LabelSpec.of(self.label))
        object.__setattr__(self, "off_route", tuple((Path(p), str(e) or OFF_ROUTE_ENV) for p, e in self.off_route))
        if not self.recordings:
            raise FitError("no recordings: give --bags ENV=REC ... or --route DIR")
        for _, env in self.recordings:
            if env in (DEFAULT_TARGET, EVENTS_ONLY_TARGET) or not env or "/" in env:
                raise FitError(f"environment name {env!r} is not allowed (it names a bundle folder; "
                               f"{DEFAULT_TARGET!r} and {EVENTS_ONLY_TARGET!r} are taken); use e.g. env1")
        if self.places is not None and self.places < 1:
            raise FitError(f"--places {self.places}: use a positive place count")
        if not 0 < self.unknown_true_accept <= 1:
            raise FitError(f"unknown_true_accept {self.unknown_true_accept}: use a share in (0, 1], e.g. 0.95")
        if self.scene_seconds <= 0:
            raise FitError(f"scene_seconds {self.scene_seconds}: use a positive measurement window")

    @property
    def work_dir(self) -> Path:
        """Where intermediate files and the stage log live."""
        return self.work if self.work is not None else self.out / ".work"

    @property
    def environments(self) -> list[str]:
        """The environments of the recordings, in first-seen order."""
        return list(dict.fromkeys(env for _, env in self.recordings))

    @property
    def preset_environments(self) -> list[Environment]:
        """The environments that are lighting ``Environment``s (selectable by the ``auto`` preset)."""
        return [Environment(e) for e in self.environments if e in {x.value for x in Environment}]

    def describe(self) -> dict[str, Any]:
        """JSON-ready facts for the report and the stage keys."""
        return {"recordings": [[str(p), e] for p, e in self.recordings], "label": str(self.label),
                "places": self.places, "window": self.window.to_dict(), "topics": dataclasses.asdict(self.topics),
                "train": self.train.to_dict(), "pretrain": dataclasses.asdict(self.pretrain),
                "full_size": self.full_size, "quick": self.quick, "embed_frontends": self.embed_frontends,
                "events_only_model": self.events_only_model, "scene_seconds": self.scene_seconds,
                "store_fp16": self.store_fp16, "unknown_true_accept": self.unknown_true_accept,
                "off_route": [[str(p), e] for p, e in self.off_route]}
