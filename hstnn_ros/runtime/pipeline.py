"""The inference pipeline the online engine drives: event front-end, optional RGB(-D) front-end and the HSTNN.

The engine only relies on the small protocols below, so the same engine runs the shipped bundles
(``load_pipeline``), randomly initialised pipelines (tests, benchmarks) and future front-ends. Every call returns
the operations it *measured* on its input (MACs for real-valued inputs, ACs for spikes weighted by their rate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from hstnn_ros import defaults
from hstnn_ros.model.unknown_place import KnnNovelty
from hstnn_ros.perception.window import WindowSpec
from hstnn_ros.runtime.errors import RuntimeEngineError


@dataclass(frozen=True)
class FrontendResult:
    """Output of one front-end call on ``N`` frames.

    Attributes:
        features: ``[N, F]`` float32 features (spikes for the SCNN, real values for the CNN).
        macs: multiply-accumulates measured for the ``N`` frames together.
        acs: accumulates (spike-driven) measured for the ``N`` frames together.
        spike_rate: mean rate of the output spikes (``None`` for a non-spiking front-end).
    """

    features: torch.Tensor
    macs: float
    acs: float
    spike_rate: float | None = None


@dataclass(frozen=True)
class ClassifierResult:
    """Output of the HSTNN on ``B`` windows: logits ``[B, C]``, the ops measured on those windows and the readout's
    input ``[B, n]`` (the windows' representation; needed by a bundle's unknown-place detector)."""

    logits: torch.Tensor
    macs: float
    acs: float
    spike_rates: tuple[float, ...] = ()
    readout_input: torch.Tensor | None = None


@runtime_checkable
class FrontEnd(Protocol):
    """A per-frame, stateless feature extractor: ``x[N, C, H, W] -> FrontendResult`` with ``features[N, feature_size]``.
    Stateless per frame is what lets the engine cache features in ring buffers."""

    feature_size: int

    def __call__(self, x: torch.Tensor) -> FrontendResult: ...


@runtime_checkable
class Classifier(Protocol):
    """The HSTNN: ``x[B, T, input_size] -> ClassifierResult``."""

    num_classes: int
    input_size: int

    def __call__(self, x: torch.Tensor) -> ClassifierResult: ...


@dataclass
class Pipeline:
    """Everything needed to turn a window of inputs into a place decision.

    Attributes:
        event_frontend: features of one event frame ``[N, 2, H, W]`` (counts per polarity).
        rgb_frontend: features of one preprocessed RGB(-D) frame ``[N, rgb_channels, H, W]``; ``None`` for an
            events-only model.
        classifier: the HSTNN on ``[B, T, event_features + rgb_feature_size]``.
        window: how inputs are cut and framed into a window (``WindowSpec``, from the front-end bundle): front-end
            grid, event bins, RGB steps, depth channel.
        rgb_feature_size: size of the RGB block of each step. For an events-only model this is the block that was
            zero during training (0 if the model never had one).
        place_names: optional names of the place ids (``class_id`` strings); defaults to the id itself.
        metadata: free provenance (bundle path, SNN ratio, environment).
        event_transform: applied to the ``[bins, 2, H, W]`` event frames before the event front-end (an extra
            transform a custom front-end needs beyond the window's clip/normalise); ``None`` = none.
        unknown_detector: the bundle's calibrated unknown-place detector (``model.unknown_place``; the classifier
            must then return ``readout_input``); ``None``: unknown places by the softmax threshold.
    """

    event_frontend: FrontEnd
    rgb_frontend: FrontEnd | None
    classifier: Classifier
    window: WindowSpec = field(default_factory=WindowSpec)
    rgb_feature_size: int = defaults.FRONTEND_FEATURES
    place_names: tuple[str, ...] | None = None
    metadata: dict = field(default_factory=dict)
    event_transform: Callable[[np.ndarray], np.ndarray] | None = None
    unknown_detector: KnnNovelty | None = None

    def __post_init__(self) -> None:
        expected = self.event_frontend.feature_size + self.rgb_feature_size
        if self.classifier.input_size != expected:
            raise RuntimeEngineError(
                f"pipeline: classifier expects {self.classifier.input_size} features per step but the front-ends give "
                f"{self.event_frontend.feature_size} (events) + {self.rgb_feature_size} (RGB) = {expected}; "
                "use a bundle whose HSTNN was trained on these front-ends"
            )
        if self.rgb_frontend is not None and self.rgb_frontend.feature_size != self.rgb_feature_size:
            raise RuntimeEngineError(
                f"pipeline: RGB front-end gives {self.rgb_frontend.feature_size} features, expected "
                f"rgb_feature_size={self.rgb_feature_size}"
            )

    @property
    def input_hw(self) -> tuple[int, int]:
        """Front-end input ``(H, W)`` (the window's grid)."""
        return self.window.input_hw

    @property
    def rgb_channels(self) -> int:
        """3 (RGB) or 4 (RGB + depth), as the window says."""
        return self.window.rgb_channels

    @property
    def events_only(self) -> bool:
        """True when the model takes no RGB input (the RGB block of each step is zeros)."""
        return self.rgb_frontend is None

    @property
    def num_classes(self) -> int:
        """Number of places the classifier distinguishes."""
        return self.classifier.num_classes

    def place_name(self, place_id: int) -> str:
        """The ``class_id`` string of a place id."""
        if self.place_names is not None and 0 <= place_id < len(self.place_names):
            return self.place_names[place_id]
        return str(place_id)

    def modules(self) -> list[torch.nn.Module]:
        """The torch modules of the pipeline (for ``.to(device)`` / ``.eval()``)."""
        parts: list[object] = [self.event_frontend, self.rgb_frontend, self.classifier]
        return [p for p in parts if isinstance(p, torch.nn.Module)]

    def to(self, device: torch.device) -> Pipeline:
        """Move every module to ``device`` and switch to eval mode; returns self."""
        for m in self.modules():
            m.to(device).eval()
        return self
