"""TianjicX-style deployment: bit-exact integer primitives (P04, P07, P08), INT8 quantisation of the HSTNN, core
mapping, program export (JSON manifest + weights + ONNX) and an integer simulator with cycle and energy estimates."""

from hstnn_ros.tianjicx.enums import FireType, LutWidth, MappingStrategy, PopulationKind, ResetMode
from hstnn_ros.tianjicx.errors import TianjicxError
from hstnn_ros.tianjicx.export import ExportResult, export_program, float_net_from_hstnn, simulate_program
from hstnn_ros.tianjicx.manifest import build_program, check_manifest, load_program, network_shapes, save_program
from hstnn_ros.tianjicx.mapping import CoreLimits, Mapping, PopulationShape, map_network
from hstnn_ros.tianjicx.primitives import LifParams, lut_lookup, p04_matvec, p07_lut, p08_lif
from hstnn_ros.tianjicx.quant import FloatLayer, FloatNet, QuantHSTNN, quantise
from hstnn_ros.tianjicx.sim import CostModel, SimReport, plot_vs_snn_ratio, run_program

__all__ = [
    "CoreLimits",
    "CostModel",
    "ExportResult",
    "FireType",
    "FloatLayer",
    "FloatNet",
    "LifParams",
    "LutWidth",
    "Mapping",
    "MappingStrategy",
    "PopulationKind",
    "PopulationShape",
    "QuantHSTNN",
    "ResetMode",
    "SimReport",
    "TianjicxError",
    "build_program",
    "check_manifest",
    "export_program",
    "float_net_from_hstnn",
    "load_program",
    "lut_lookup",
    "map_network",
    "network_shapes",
    "p04_matvec",
    "p07_lut",
    "p08_lif",
    "plot_vs_snn_ratio",
    "quantise",
    "run_program",
    "save_program",
    "simulate_program",
]
