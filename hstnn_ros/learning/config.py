"""Training configuration: a YAML file read into frozen dataclasses and checked before any training starts.

Every impossible value fails at load time with the key, the value found and what to change; unknown keys are
refused (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hstnn_ros import defaults
from hstnn_ros.learning.enums import EmptyPolicy, SelectionCriterion
from hstnn_ros.learning.errors import LearningError

#: Gradient-norm clip of the authors' reference code (DESIGN.md section 3).
DEFAULT_CLIP = 0.25
#: Sweep ratios of the paper's Fig. 2 style evaluation.
DEFAULT_RATIOS = (0.0, 0.25, 0.5, 0.75, 0.95, 1.0)


@dataclass(frozen=True)
class NetworkConfig:
    """Target network: ``hidden[n]`` neurons in hidden layer n after the three stages (M in the paper).

    ``model`` holds the remaining ``HSTNNConfig`` fields (neuron kinds, decay, v_th, surrogate, decoder) by name;
    they are checked by the model core when the first network is built, which happens before training.
    """

    hidden: tuple[int, ...] = (500, 500)
    model: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimConfig:
    """BPTT with Adam and gradient-norm clipping; ``device`` is where models train (``cpu``, ``cuda:0``...)."""

    lr: float = 1e-3
    batch_size: int = 64
    clip: float = DEFAULT_CLIP
    weight_decay: float = 0.0
    device: str = "cpu"


@dataclass(frozen=True)
class EpochsConfig:
    """Epoch budgets per stage; every stage stops early after ``patience`` epochs without a better val top-1.

    ``direct`` is the budget of the baselines trained from scratch (pure RNN, pure SNN, directly hybrid). ``None``
    (the default) gives them the three-stage model's whole budget, ``adaptation + restoration``, so that the
    comparison is at equal total training epochs; the report records both budgets and the epochs actually run.
    """

    adaptation: int = 150
    restoration: int = 100
    direct: int | None = None
    patience: int = 15

    @property
    def direct_epochs(self) -> int:
        """The baselines' epoch budget (``adaptation + restoration`` unless ``direct`` is set)."""
        return self.adaptation + self.restoration if self.direct is None else self.direct

    @property
    def hstnn_epochs(self) -> int:
        """The three-stage model's epoch budget: Adaptation, then Restoration of the selected network."""
        return self.adaptation + self.restoration


@dataclass(frozen=True)
class SelectionConfig:
    """Hessian-aware neuron scoring and ranking options.

    ``criterion``: what a neuron's score is (``SelectionCriterion``: ``removal`` = the loss change when the neuron
    is removed, to second order in its output gate, curvature by Hutchinson; ``removal_fisher`` = the same with the
    curvature from the per-sample gate gradients' empirical Fisher, one backward per batch and no probes;
    ``trace`` = the paper's Eq. 13 afferent Hessian trace). The
    network is pruned to the ratio's sizes in ``rounds`` steps, each re-scoring the neurons still present on the
    network with the earlier rounds' neurons removed (1 = the paper's one-shot ranking); the first round's scores
    are shared by every ratio. Per round, scores are averaged over batches of ``batch_size`` training windows,
    ``probes`` Rademacher vectors per batch, until the ranking's split-half reliability reaches
    ``rank_reliability`` (from 4 batches; ``None`` = off) or the standard error of the mean score vector falls below
    ``tolerance`` times its L2 norm, after ``min_batches``; else at ``max_batches`` (logged as not converged).
    """

    criterion: SelectionCriterion = SelectionCriterion.REMOVAL
    rounds: int = 16
    probes: int = 1
    batch_size: int = 256
    min_batches: int = 4
    max_batches: int = 16
    tolerance: float = 0.05
    rank_reliability: float | None = 0.9
    empty_layer: EmptyPolicy = EmptyPolicy.REPAIR
    keep_both_populations: bool = True
    hardware_friendly: bool = False
    multiple: int = 32


@dataclass(frozen=True)
class SweepConfig:
    """Which ratios and seeds to run, and which baselines/controls."""

    ratios: tuple[float, ...] = DEFAULT_RATIOS
    seeds: tuple[int, ...] = (0, 1, 2)
    direct_baselines: bool = True
    random_control: bool = True
    #: also restore the random control for the same epochs (Hessian vs random after Restoration; costs one more
    #: Restoration per hybrid unit)
    random_restoration: bool = False


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation: recall@1 counts a prediction within ``recall_tolerance`` places of the label as correct; ops are
    measured on ``ops_samples`` test windows spread evenly over every test traversal."""

    recall_tolerance: int = defaults.RECALL_TOLERANCE
    ops_samples: int = 256
    batch_size: int = 256


@dataclass(frozen=True)
class TrainConfig:
    """The whole training recipe (one YAML file)."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: EpochsConfig = field(default_factory=EpochsConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        validate_config(self)

    def with_sweep(self, ratios: tuple[float, ...] | None = None, seeds: tuple[int, ...] | None = None) -> TrainConfig:
        """A copy with the sweep's ratios and/or seeds replaced (CLI overrides)."""
        sweep = dataclasses.replace(
            self.sweep,
            ratios=tuple(float(r) for r in ratios) if ratios is not None else self.sweep.ratios,
            seeds=tuple(int(s) for s in seeds) if seeds is not None else self.sweep.seeds,
        )
        return dataclasses.replace(self, sweep=sweep)

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-serialisable form (enums by value); ``config_from_dict(cfg.to_dict()) == cfg``."""

        def conv(v: Any) -> Any:
            if isinstance(v, enum.Enum):
                return v.value
            if isinstance(v, tuple):
                return list(v)
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            return v

        return {f.name: {k: conv(v) for k, v in dataclasses.asdict(getattr(self, f.name)).items()}
                for f in dataclasses.fields(self)}


_SECTIONS: dict[str, type] = {
    "network": NetworkConfig,
    "optim": OptimConfig,
    "epochs": EpochsConfig,
    "selection": SelectionConfig,
    "sweep": SweepConfig,
    "eval": EvalConfig,
}


def _fail(key: str, value: Any, fix: str) -> LearningError:
    return LearningError(f"config {key}={value!r}: {fix}")


def validate_config(cfg: TrainConfig) -> None:
    """Raise :class:`LearningError` naming the first impossible value and what to change."""
    net = cfg.network
    if not net.hidden or any(int(m) < 1 for m in net.hidden):
        raise _fail("network.hidden", net.hidden, "give one positive target size per hidden layer, e.g. [500, 500]")
    _check_optim(cfg.optim)
    _check_epochs(cfg.epochs)
    _check_selection(cfg.selection, net)
    _check_sweep(cfg.sweep)
    ev = cfg.eval
    if ev.recall_tolerance < 0:
        raise _fail("eval.recall_tolerance", ev.recall_tolerance, "use a place tolerance >= 0")
    if ev.ops_samples < 1 or ev.batch_size < 1:
        raise _fail("eval.ops_samples/batch_size", (ev.ops_samples, ev.batch_size), "use values >= 1")
    for r in cfg.sweep.ratios:
        check_ratio(cfg, r)


def _check_optim(opt: OptimConfig) -> None:
    if not (opt.lr > 0 and math.isfinite(opt.lr)):
        raise _fail("optim.lr", opt.lr, "use a positive learning rate such as 1e-3")
    if opt.batch_size < 1:
        raise _fail("optim.batch_size", opt.batch_size, "use a batch size >= 1")
    if not opt.clip > 0:
        raise _fail("optim.clip", opt.clip, "use a positive gradient-norm clip (the paper's code uses 0.25)")
    if opt.weight_decay < 0:
        raise _fail("optim.weight_decay", opt.weight_decay, "use a weight decay >= 0")


def _check_epochs(ep: EpochsConfig) -> None:
    for name in ("adaptation", "restoration", "direct"):
        if getattr(ep, name) is not None and getattr(ep, name) < 1:
            raise _fail(f"epochs.{name}", getattr(ep, name), "use at least 1 epoch (direct: or null for "
                                                              "adaptation + restoration)")
    if ep.patience < 1:
        raise _fail("epochs.patience", ep.patience, "use a patience >= 1 epoch")


def _check_selection(sel: SelectionConfig, net: NetworkConfig) -> None:
    if sel.rounds < 1:
        raise _fail("selection.rounds", sel.rounds, "use at least 1 round (1 = one-shot ranking)")
    if sel.probes < 1:
        raise _fail("selection.probes", sel.probes, "use at least 1 Rademacher probe per batch")
    if sel.batch_size < 1:
        raise _fail("selection.batch_size", sel.batch_size, "use a batch size >= 1")
    if not 1 <= sel.min_batches <= sel.max_batches:
        raise _fail("selection.min_batches/max_batches", (sel.min_batches, sel.max_batches),
                    "need 1 <= min_batches <= max_batches")
    if not sel.tolerance >= 0:
        raise _fail("selection.tolerance", sel.tolerance, "use a relative tolerance >= 0 (e.g. 0.15)")
    if sel.rank_reliability is not None and not 0 < sel.rank_reliability <= 1:
        raise _fail("selection.rank_reliability", sel.rank_reliability,
                    "use a reliability in (0, 1] (e.g. 0.95) or null to stop on the standard error alone")
    if sel.multiple < 1:
        raise _fail("selection.multiple", sel.multiple, "use a positive size multiple (16 or 32 for TianjicX)")
    if sel.hardware_friendly:
        bad = [m for m in net.hidden if m % sel.multiple]
        if bad:
            raise _fail("network.hidden", net.hidden,
                        f"with selection.hardware_friendly every layer size must be a multiple of "
                        f"selection.multiple={sel.multiple}; change {bad} or the multiple")


def _check_sweep(sw: SweepConfig) -> None:
    if not sw.ratios:
        raise _fail("sweep.ratios", sw.ratios, "give at least one SNN ratio in [0, 1]")
    for r in sw.ratios:
        if not 0.0 <= r <= 1.0:
            raise _fail("sweep.ratios", sw.ratios, f"SNN ratio {r} is outside [0, 1]")
    if not sw.seeds:
        raise _fail("sweep.seeds", sw.seeds, "give at least one seed")
    if len(set(sw.seeds)) != len(sw.seeds):
        raise _fail("sweep.seeds", sw.seeds, "seeds must be distinct")
    if sw.random_restoration and not sw.random_control:
        raise _fail("sweep.random_restoration", sw.random_restoration,
                    "restoring the random control needs sweep.random_control: true")


def population_sizes(cfg: TrainConfig, ratio: float) -> list[tuple[int, int]]:
    """Per hidden layer ``(n_snn, n_rnn)`` of the final network at SNN ratio ``ratio`` for the directly-hybrid
    baseline and the hardware-friendly selection (fixed neurons per layer)."""
    sizes = []
    for m in cfg.network.hidden:
        if cfg.selection.hardware_friendly:
            q = cfg.selection.multiple
            n_snn = min(m, q * round(ratio * m / q))
        else:
            n_snn = round(ratio * m)
        sizes.append((int(n_snn), int(m - n_snn)))
    return sizes


def check_ratio(cfg: TrainConfig, ratio: float) -> None:
    """Refuse a ratio strictly between 0 and 1 that would leave a population empty while the config requires both."""
    if not 0.0 < ratio < 1.0 or not cfg.selection.keep_both_populations:
        return
    total = sum(cfg.network.hidden)
    n_snn = round(ratio * total)
    n_layers = len(cfg.network.hidden)
    if min(n_snn, total - n_snn) < n_layers:
        raise LearningError(
            f"SNN ratio {ratio} keeps {n_snn} SNN and {total - n_snn} RNN neurons of {total} over {n_layers} layers, "
            f"so some layer would lose a whole population while selection.keep_both_populations is true; "
            f"choose a ratio further from 0 and 1, larger layers, or set keep_both_populations: false"
        )
    if cfg.selection.hardware_friendly:
        for i, (s, r) in enumerate(population_sizes(cfg, ratio)):
            if min(s, r) == 0:
                raise LearningError(
                    f"SNN ratio {ratio} with hardware_friendly sizes in multiples of {cfg.selection.multiple} gives "
                    f"layer {i} {s} SNN + {r} RNN neurons, an empty population while keep_both_populations is true; "
                    f"choose another ratio, a smaller selection.multiple or set keep_both_populations: false"
                )


def _section(name: str, cls: type, raw: Any) -> Any:
    """The config section ``cls`` from its YAML mapping ``raw`` (None: every default); each value converted to the
    type of its default, unknown keys and unconvertible values refused naming ``name.key``."""
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise LearningError(f"config section {name!r} must be a mapping, got {type(raw).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise LearningError(f"config section {name!r}: unknown keys {unknown}; known keys are {sorted(known)}")
    kw: dict[str, Any] = {}
    for key, value in raw.items():
        default = getattr(cls(), key)
        typ = str(known[key].type)
        try:
            if "None" in typ:  # optional numbers (``float | None`` or ``int | None``); null leaves the setting off
                kw[key] = None if value is None else _optional_number(value, integer=typ.startswith("int"))
            else:
                kw[key] = _value_like(default, value)
        except (TypeError, ValueError) as exc:
            choices = f" (one of {[p.value for p in type(default)]})" if isinstance(default, enum.Enum) else ""
            raise LearningError(f"config {name}.{key}={value!r}: {exc}{choices}") from exc
    return cls(**kw)


def _optional_number(value: Any, *, integer: bool) -> int | float:
    """The non-null value of an ``int | None`` or ``float | None`` setting."""
    if isinstance(value, bool):
        raise TypeError("expected a number or null, got a boolean")
    if integer:
        if float(value) != int(value):
            raise TypeError("expected an integer or null")
        return int(value)
    return float(value)


def _value_like(default: Any, value: Any) -> Any:
    """``value`` converted to the type of the setting's ``default`` (TypeError or ValueError saying what was
    expected)."""
    if isinstance(default, enum.Enum):
        return type(default)(str(value).lower())
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError("expected true or false")
        return value
    if isinstance(default, tuple):
        elem = type(default[0]) if default else float
        return tuple(elem(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise TypeError("expected a mapping")
        return dict(value)
    if isinstance(default, (int, float)) and isinstance(value, bool):
        raise TypeError("expected a number, got a boolean")
    if isinstance(default, int):
        if float(value) != int(value):
            raise TypeError("expected an integer")
        return int(value)
    return type(default)(value)


def config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from a parsed YAML mapping."""
    if not isinstance(raw, dict):
        raise LearningError(f"training config must be a mapping of sections {sorted(_SECTIONS)}")
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise LearningError(f"training config: unknown sections {unknown}; known sections are {sorted(_SECTIONS)}")
    return TrainConfig(**{name: _section(name, cls, raw.get(name)) for name, cls in _SECTIONS.items()})


def load_config(path: Path | str) -> TrainConfig:
    """Read a YAML training config (see ``config/train_*.yaml``)."""
    path = Path(path)
    if not path.is_file():
        raise LearningError(f"{path}: no such training config (start from config/train_place_recognition.yaml)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise LearningError(f"{path}: not valid YAML ({exc})") from exc
    try:
        return config_from_dict(raw)
    except LearningError as exc:
        raise LearningError(f"{path}: {exc}") from exc
