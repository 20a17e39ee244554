"""Three-stage hybrid learning (Adaptation, Hessian-aware Selection, Restoration), baselines, resumable sweeps,
reports and robustness evaluation for the HSTNN (paper Methods; DESIGN.md section 4)."""

from hstnn_ros.learning.config import TrainConfig, config_from_dict, load_config, population_sizes
from hstnn_ros.learning.data import Split, TrainData, iter_batches, prepare_data
from hstnn_ros.learning.enums import EmptyPolicy, Perturbation, SelectionCriterion, UnitKind
from hstnn_ros.learning.errors import LearningError
from hstnn_ros.learning.hessian import (
    GateGroup,
    Importance,
    NeuronGroup,
    estimate_importance,
    estimate_removal_saliency,
    neuron_importance,
)
from hstnn_ros.learning.ranking import Kept, LayerScores, select_counts, select_fixed, select_global, select_random
from hstnn_ros.learning.robustness import evaluate_robustness, perturb, plot_robustness
from hstnn_ros.learning.sweep import Sweep, Unit, plan_units, run_sweep
from hstnn_ros.learning.trainer import FitResult, Metrics, evaluate, fit

__all__ = [
    "EmptyPolicy",
    "FitResult",
    "GateGroup",
    "Importance",
    "Kept",
    "LayerScores",
    "LearningError",
    "Metrics",
    "NeuronGroup",
    "Perturbation",
    "SelectionCriterion",
    "Split",
    "Sweep",
    "TrainConfig",
    "TrainData",
    "Unit",
    "UnitKind",
    "config_from_dict",
    "estimate_importance",
    "estimate_removal_saliency",
    "evaluate",
    "evaluate_robustness",
    "fit",
    "iter_batches",
    "load_config",
    "neuron_importance",
    "perturb",
    "plan_units",
    "plot_robustness",
    "population_sizes",
    "prepare_data",
    "run_sweep",
    "select_counts",
    "select_fixed",
    "select_global",
    "select_random",
]
