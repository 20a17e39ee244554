"""Choices of the TianjicX primitives and mapping (program-field codes as in BiMap's behaviour simulator)."""

from __future__ import annotations

import enum


class ResetMode(enum.IntEnum):
    """P08 reset of a neuron that fired (program field ``reset_mode``)."""

    TO_VALUE = 0  #: V' = reset_value (VR)
    SUBTRACT_THRESHOLD = 1  #: V' = V - th (the clipped, floored threshold of this step)
    SUBTRACT_DV = 2  #: V' = V - reset_subtract_dv (dV)
    NONE = 3  #: V' = V


class FireType(enum.IntEnum):
    """P08 INT8 output (program field ``fire_type``); only the covered types are implemented."""

    HALF_V_INTEGRATED = 2  #: clamp(trunc(V / 2)) of V after integration (before reset and leak)
    HALF_V_NEW = 3  #: clamp(trunc(Vn / 2)) of the new potential
    SPIKE = 4  #: the spike as 0/1


class LutWidth(enum.IntEnum):
    """P07 address width in bits (program code 0..3); the table has 2**bits entries."""

    BITS_4 = 4
    BITS_8 = 8
    BITS_12 = 12
    BITS_16 = 16

    @property
    def code(self) -> int:
        """The program code (0..3) of this width."""
        return (int(self) // 4) - 1


class MappingStrategy(enum.Enum):
    """How a hybrid layer is spread over its core group (paper Fig. 5b)."""

    FIXED = "fixed"  #: one SNN core + one RNN core, workload varies with the SNN ratio
    VARIABLE = "variable"  #: as many cores as needed, fixed workload per core, cores proportional to neurons


class PopulationKind(enum.Enum):
    """Kind of a population placed on cores."""

    SNN = "snn"
    RNN = "rnn"
    READOUT = "readout"
