"""Map a hybrid network onto TianjicX-style cores: one core group per layer, fixed- or variable-core (paper Fig. 5b).

Core resources come from BiMap (openBII/BiMap, Apache-2.0), file ``top/config.toml`` ("TianjicX Compiler Config"):

* ``[chip_arch] CORE_X_MAX = 16, CORE_Y_MAX = 10, CORE_MAX = 160``: 160 cores per chip on a 16 x 10 mesh.
* ``PHASE_MAX = 32``: at most 32 phases (primitive groups) per core and step.
* ``[memory] RUNTIME_MEM = 0x7fff`` with ``MEM1_END = 0x7fff`` commented "memory size in the resource model, unit
  4B": 0x8000 words = 128 KiB of runtime memory per core for weights, state and activation buffers.
* ``[computation] MAC_X_SIZE = 4, MAC_Y_SIZE = 32``: the MAC array takes 4 input words x 32 output columns per
  clock; with INT8 packed 4 per word (``behavior_simulator/patch.cpp``) that is 16 inputs x 32 outputs per clock,
  which is why P04 pads inputs to 16 and outputs to 32 (and why the paper sizes populations that way).
* ``[router] NOC_BANDWIDTH = 8`` bytes per hop and clock, ``RUNTIME_BANDWIDTH = 32`` bytes per clock.

Fan-in and neuron limits per core are not separate fields in BiMap: they follow from the memory. A core must hold at
least one 32-column weight block of its fan-in (``fan_in_padded * 32`` bytes) plus the buffers, so the fan-in limit
and the neurons a core can host are derived from ``memory_bytes`` below (:meth:`CoreLimits.max_columns`).
The behaviour simulator's core loop (``behavior_simulator/core.h``) runs each phase as axon (P04) -> soma1 (P07/P08)
-> router -> soma2; the primitives listed per core follow that order.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from hstnn_ros.tianjicx.enums import MappingStrategy, PopulationKind
from hstnn_ros.tianjicx.errors import TianjicxError
from hstnn_ros.tianjicx.primitives import INPUT_ALIGN, OUTPUT_ALIGN, ceil_to

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoreLimits:
    """Per-core and per-chip resources (BiMap ``top/config.toml``; see the module docstring)."""

    cores_per_chip: int = 160
    mesh_xy: tuple[int, int] = (16, 10)
    memory_bytes: int = 0x8000 * 4
    mac_inputs_per_clock: int = 16
    mac_outputs_per_clock: int = 32
    max_phases: int = 32
    noc_bytes_per_clock: int = 8
    mem_bytes_per_clock: int = 32

    def core_bytes(self, fan_in_padded: int, columns: int, spiking: bool, lut_entries: int) -> int:
        """Memory a core needs: INT8 weights, INT32 bias, packed state (+theta for LIF), LUT, I/O buffers."""
        weights = fan_in_padded * columns
        bias = 4 * columns
        state = 4 * columns * (2 if spiking else 1)  # V/ref word (+ theta) or INT32 pre-activation
        lut = lut_entries  # INT8 table
        buffers = fan_in_padded + 2 * columns  # INT8 input vector, INT8 output double buffer
        return weights + bias + state + lut + buffers

    def max_columns(self, fan_in_padded: int, spiking: bool, lut_entries: int) -> int:
        """Most output columns (a multiple of 32) one core can hold for this fan-in; 0 when not even 32 fit."""
        per_col = fan_in_padded + 4 + 4 * (2 if spiking else 1) + 2
        free = self.memory_bytes - fan_in_padded - lut_entries
        return max(0, free // per_col) // OUTPUT_ALIGN * OUTPUT_ALIGN


@dataclass(frozen=True)
class PopulationShape:
    """One population to place: its kind, neuron count and fan-in (recurrent inputs included for RNNs)."""

    layer: int
    kind: PopulationKind
    neurons: int
    fan_in: int

    @property
    def name(self) -> str:
        return f"layer{self.layer}.{self.kind.value}" if self.kind != PopulationKind.READOUT else "readout"


@dataclass
class CorePlacement:
    """One core: which population slice it computes and its resources."""

    core_id: int
    xy: tuple[int, int]
    group: int
    population: str
    kind: PopulationKind
    columns: tuple[int, int]  #: [start, stop) of the population's neurons
    fan_in_padded: int
    columns_padded: int
    memory_bytes: int


@dataclass
class CoreGroup:
    """All cores of one layer (or of the readout)."""

    group: int
    name: str
    strategy: MappingStrategy
    cores: list[CorePlacement] = field(default_factory=list)


@dataclass
class Mapping:
    """The placement of a whole network."""

    groups: list[CoreGroup]
    limits: CoreLimits

    @property
    def cores(self) -> list[CorePlacement]:
        return [c for g in self.groups for c in g.cores]

    def to_dict(self) -> dict:
        return {
            "limits": asdict(self.limits),
            "groups": [
                {
                    "group": g.group,
                    "name": g.name,
                    "strategy": g.strategy.value,
                    "cores": [{**asdict(c), "kind": c.kind.value} for c in g.cores],
                }
                for g in self.groups
            ],
        }


def _split(pop: PopulationShape, per_core: int) -> list[tuple[int, int]]:
    return [(s, min(s + per_core, pop.neurons)) for s in range(0, pop.neurons, per_core)]


def map_network(
    layers: list[list[PopulationShape]],
    limits: CoreLimits | None = None,
    strategy: MappingStrategy | None = None,
    lut_entries: int = 256,
    variable_columns: int | None = None,
) -> Mapping:
    """Place each layer's populations on a core group and refuse what does not fit.

    Args:
        layers: per core group (hidden layers, then the readout), its populations.
        limits: core resources (default: TianjicX from BiMap's config).
        strategy: force a strategy for every layer; ``None`` picks FIXED when each population of the layer fits on
            one core (one SNN core + one RNN core) and VARIABLE otherwise.
        lut_entries: P07 table entries per RNN core.
        variable_columns: fixed workload (output columns) per core for VARIABLE layers; default: the most that fit.
    Raises:
        TianjicxError: a population's fan-in leaves no room for one 32-column block (names the layer and the bytes
            over), or the network needs more cores than the chip has (names the count over).
    """
    lim = limits or CoreLimits()
    groups: list[CoreGroup] = []
    core_id = 0
    for gi, layer_pops in enumerate(layers):
        pops = [p for p in layer_pops if p.neurons > 0]
        cap: dict[str, int] = {}
        for p in pops:
            fin = ceil_to(p.fan_in, INPUT_ALIGN)
            spiking = p.kind == PopulationKind.SNN
            lut = _lut_bytes(p.kind, lut_entries)
            cols = lim.max_columns(fin, spiking, lut)
            if cols == 0:
                need = lim.core_bytes(fin, OUTPUT_ALIGN, spiking, lut)
                raise TianjicxError(
                    f"{p.name}: fan-in {p.fan_in} (padded {fin}) needs {need} bytes for one 32-neuron block, "
                    f"exceeding the {lim.memory_bytes}-byte core memory by {need - lim.memory_bytes} bytes; "
                    f"reduce this layer's input size to at most {_max_fan_in(lim, spiking, lut)}"
                )
            cap[p.name] = cols
        fits_one = all(ceil_to(p.neurons, OUTPUT_ALIGN) <= cap[p.name] for p in pops)
        strat = strategy or (MappingStrategy.FIXED if fits_one else MappingStrategy.VARIABLE)
        if strat == MappingStrategy.FIXED and not fits_one:
            bad = next(p for p in pops if ceil_to(p.neurons, OUTPUT_ALIGN) > cap[p.name])
            raise TianjicxError(
                f"{bad.name}: {bad.neurons} neurons exceed the {cap[bad.name]} one core holds at fan-in "
                f"{bad.fan_in} (by {ceil_to(bad.neurons, OUTPUT_ALIGN) - cap[bad.name]}); use variable-core mapping"
            )
        name = "readout" if pops and pops[0].kind == PopulationKind.READOUT else f"layer{gi}"
        group = CoreGroup(group=gi, name=name, strategy=strat)
        for p in pops:
            fin = ceil_to(p.fan_in, INPUT_ALIGN)
            if strat == MappingStrategy.FIXED:
                per = ceil_to(p.neurons, OUTPUT_ALIGN)
            else:
                per = min(cap[p.name], variable_columns or cap[p.name])
                per = max(OUTPUT_ALIGN, per // OUTPUT_ALIGN * OUTPUT_ALIGN)
            for lo, hi in _split(p, per):
                colp = ceil_to(hi - lo, OUTPUT_ALIGN)
                spiking = p.kind == PopulationKind.SNN
                lut = _lut_bytes(p.kind, lut_entries)
                xy = (core_id % lim.mesh_xy[0], (core_id // lim.mesh_xy[0]) % lim.mesh_xy[1])
                group.cores.append(
                    CorePlacement(
                        core_id=core_id,
                        xy=xy,
                        group=gi,
                        population=p.name,
                        kind=p.kind,
                        columns=(lo, hi),
                        fan_in_padded=fin,
                        columns_padded=colp,
                        memory_bytes=lim.core_bytes(fin, colp, spiking, lut),
                    )
                )
                core_id += 1
        groups.append(group)
    if core_id > lim.cores_per_chip:
        per_group = ", ".join(f"{g.name}: {len(g.cores)}" for g in groups)
        raise TianjicxError(
            f"the network needs {core_id} cores ({per_group}), exceeding the {lim.cores_per_chip}-core chip by "
            f"{core_id - lim.cores_per_chip}; shrink the largest layer or lower the SNN/RNN sizes"
        )
    log.info("mapped %d core groups onto %d cores", len(groups), core_id)
    return Mapping(groups=groups, limits=lim)


def _lut_bytes(kind: PopulationKind, rnn_lut_entries: int) -> int:
    """INT8 table bytes on a core: the sigmoid table (RNN) or the 256-entry spike-level table (SNN)."""
    return {PopulationKind.RNN: rnn_lut_entries, PopulationKind.SNN: 256}.get(kind, 0)


def _max_fan_in(lim: CoreLimits, spiking: bool, lut: int) -> int:
    """Largest padded fan-in for which one 32-column block still fits a core."""
    lo, hi = 0, lim.memory_bytes
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if lim.core_bytes(mid, OUTPUT_ALIGN, spiking, lut) <= lim.memory_bytes:
            lo = mid
        else:
            hi = mid - 1
    return lo // INPUT_ALIGN * INPUT_ALIGN
