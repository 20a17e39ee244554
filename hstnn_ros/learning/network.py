"""Glue between the learning stages and the model core (``hstnn_ros.model``): building an HSTNN from the training
config, its populations as :class:`NeuronGroup` s, shrinking by kept indices, measured ops and spike rates, and
bundles. Everything model-specific in the learning layer lives here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from hstnn_ros.learning.config import TrainConfig
from hstnn_ros.learning.data import TrainData
from hstnn_ros.learning.errors import LearningError
from hstnn_ros.learning.hessian import GateGroup, NeuronGroup
from hstnn_ros.learning.ranking import Kept, LayerScores
from hstnn_ros.model.bundle import load_bundle, save_bundle
from hstnn_ros.model.enums import Role
from hstnn_ros.model.network import HSTNN, HSTNNConfig, KeptNeurons
from hstnn_ros.model.ops import count_ops
from hstnn_ros.model.shrink import shrink

log = logging.getLogger(__name__)

#: Component name of the HSTNN inside a model bundle.
COMPONENT = "hstnn"


def build_model(cfg: TrainConfig, data: TrainData, sizes: list[tuple[int, int]], seed: int) -> HSTNN:
    """A freshly initialised HSTNN with ``sizes[n] = (n_snn, n_rnn)`` in hidden layer n, sized for ``data``.

    Initialisation is seeded without touching the global RNG state of the caller.
    """

    raw: dict[str, Any] = dict(cfg.network.model)
    raw.update(input_size=data.feature_size, num_classes=data.num_classes, input_spiking=data.input_spiking,
               hidden=[{"n_snn": s, "n_rnn": r} for s, r in sizes])
    try:
        mcfg = HSTNNConfig.from_dict(raw)
    except Exception as exc:  # the model core's validation: report it against the training config
        raise LearningError(f"config network.model={cfg.network.model!r} is not a valid HSTNN config: {exc}") from exc
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HSTNN(mcfg)
    try:
        return model.to(cfg.optim.device)
    except (RuntimeError, AssertionError) as exc:
        raise LearningError(f"config optim.device={cfg.optim.device!r} is not usable here ({exc}); use cpu") from exc


def neuron_groups(model: HSTNN) -> list[NeuronGroup]:
    """Every population of the model as a :class:`NeuronGroup` (afferent parameters + per-neuron view)."""
    return [NeuronGroup(layer=int(layer), kind=kind, params=list(pop.afferent_parameters()),
                        per_neuron=pop.per_neuron)
            for layer, kind, pop in model.populations()]


def gate_groups(model: HSTNN) -> list[GateGroup]:
    """Every population of every hidden layer (empty ones too), SNN then RNN, in the order of ``HSTNN.run``'s
    ``gates``."""
    return [GateGroup(layer=i, kind=kind, size=int(n)) for i, spec in enumerate(model.config.hidden)
            for kind, n in ((Role.SNN, spec.n_snn), (Role.RNN, spec.n_rnn))]


def kept_of(alive: list[tuple[torch.Tensor, torch.Tensor]]) -> list[Any]:
    """The model core's ``KeptNeurons`` of per-layer (SNN, RNN) bool masks of the neurons still present."""
    return [KeptNeurons(snn=torch.nonzero(a).flatten(), rnn=torch.nonzero(b).flatten()) for a, b in alive]


def layer_scores(model: HSTNN, scores: dict[str, torch.Tensor]) -> list[LayerScores]:
    """Per hidden layer the SNN and RNN importance vectors (empty when a layer has no such population)."""
    n_layers = len(model.config.hidden)
    empty = torch.zeros(0)
    return [LayerScores(snn=scores.get(f"L{i}.{Role.SNN}", empty), rnn=scores.get(f"L{i}.{Role.RNN}", empty))
            for i in range(n_layers)]


def shrink_model(model: HSTNN, kept: list[Kept]) -> HSTNN:
    """The compact network keeping ``kept`` neurons (the model core's ``shrink``, Eq. 14-17)."""
    device = next(model.parameters()).device
    return shrink(model, [KeptNeurons(snn=k.snn.long(), rnn=k.rnn.long()) for k in kept]).to(device)


def sizes_of(model: HSTNN) -> list[tuple[int, int]]:
    """``(n_snn, n_rnn)`` per hidden layer."""
    return [(int(spec.n_snn), int(spec.n_rnn)) for spec in model.config.hidden]


@torch.no_grad()
def measure_ops(model: HSTNN, x: torch.Tensor) -> dict[str, Any]:
    """Measured MACs and ACs per sample (Eq. 23-25, via the model core's ``count_ops``) and the spike rate of each
    hidden layer's SNN population (None where a layer has none), on windows ``x``."""
    model.eval()
    x = x.to(next(model.parameters()).device)
    record = model.run(x)
    ops = count_ops(model, x, record)
    return {"mac": ops.mac_per_sample, "ac": ops.ac_per_sample, "spike_rates": list(ops.spike_rates)}


def save_model(out_dir: Path, model: HSTNN, metadata: dict[str, Any]) -> Path:
    """Write ``model`` as a bundle (the model core's ``save_bundle``) with ``metadata``."""
    save_bundle(out_dir, {COMPONENT: model}, metadata)
    return out_dir


def load_model(bundle_dir: Path, device: str = "cpu") -> tuple[HSTNN, dict[str, Any]]:
    """The HSTNN component (on ``device``) and the metadata of a bundle written by :func:`save_model`."""
    bundle = load_bundle(bundle_dir)
    return bundle.hstnn(COMPONENT).to(device), dict(bundle.metadata)
