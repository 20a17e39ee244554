"""HSTNN model core: neuron populations, surrogate gradients, the hybrid network, shrinking, op counts, bundles."""

from hstnn_ros.model.bundle import (
    Bundle,
    Component,
    bundle_digest,
    hstnn_from_component,
    load_bundle,
    save_bundle,
)
from hstnn_ros.model.enums import Decoder, NonSpikingKind, Role, SpikingKind, SurrogateKind
from hstnn_ros.model.errors import BundleError, ModelError
from hstnn_ros.model.network import HSTNN, HSTNNConfig, HybridLayer, KeptNeurons, LayerSpec, NetState, RunRecord
from hstnn_ros.model.neurons import ALIF, LIF, LSTM, RNN, ConvLIF, ConvRNN, Population
from hstnn_ros.model.ops import OpsReport, active_blocks, count_conv_ops, count_ops
from hstnn_ros.model.shrink import shrink
from hstnn_ros.model.surrogate import Surrogate, spike

__all__ = [
    "ALIF",
    "HSTNN",
    "LIF",
    "LSTM",
    "RNN",
    "Bundle",
    "BundleError",
    "Component",
    "ConvLIF",
    "ConvRNN",
    "Decoder",
    "HSTNNConfig",
    "HybridLayer",
    "KeptNeurons",
    "LayerSpec",
    "ModelError",
    "NetState",
    "NonSpikingKind",
    "OpsReport",
    "Population",
    "Role",
    "RunRecord",
    "SpikingKind",
    "Surrogate",
    "SurrogateKind",
    "active_blocks",
    "bundle_digest",
    "count_conv_ops",
    "count_ops",
    "hstnn_from_component",
    "load_bundle",
    "save_bundle",
    "shrink",
    "spike",
]
