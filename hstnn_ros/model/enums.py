"""Choices of the model core: neuron kinds, surrogate gradients, readout decoders, population roles."""

from __future__ import annotations

from enum import Enum, StrEnum


class SpikingKind(Enum):
    """Spiking population dynamics: LIF (HSTNN Eq. 6) or adaptive-threshold ALIF (Eq. 7, SRNN time constants)."""

    LIF = "lif"
    ALIF = "alif"


class NonSpikingKind(Enum):
    """Non-spiking population dynamics: vanilla sigmoid RNN (Eq. 3) or LSTM (Eq. 4)."""

    RNN = "rnn"
    LSTM = "lstm"


class SurrogateKind(Enum):
    """Pseudo-derivative of the Heaviside spike function used in the backward pass."""

    RECT = "rect"
    SIGMOID = "sigmoid"
    MULTI_GAUSSIAN = "multi_gaussian"


class Decoder(Enum):
    """How the readout sees the last layer's spikes: mean over time (rate) or the last step only."""

    RATE = "rate"
    LAST = "last"


class Role(StrEnum):
    """Which population of a hybrid layer: ``str(Role.SNN) == "snn"``."""

    SNN = "snn"
    RNN = "rnn"
