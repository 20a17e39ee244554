"""What a deployable HSTNN bundle says about itself: the metadata contract between the tools that train bundles
(``hstnn-train``'s sweep units, ``hstnn-fit-route``) and everything that runs them (``load_pipeline``: replay, the
node, the demo; ``hstnn-export-tianjicx`` reads the HSTNN component only).

A bundle needs its front-ends. They are either in the bundle itself (components ``scnn``/``cnn``) or in a front-end
bundle named by ``frontend_bundle``, a path relative to the bundle's own directory, and pinned by
``frontend_sha256``, the digest of the front-end weights the HSTNN was trained on (``model.bundle_digest``): a
model never runs on front-ends other than its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from hstnn_ros.runtime.errors import RuntimeEngineError


@dataclass(frozen=True)
class DeployMeta:
    """The metadata of a deployable HSTNN bundle (``bundle.json``'s ``metadata``; other keys may sit beside these).

    Attributes:
        place_count: places the model outputs (ids ``0 .. place_count - 1``).
        frontend_bundle: front-end bundle directory relative to this bundle's directory (``None``: embedded).
        frontend_sha256: digest of the front-end weights the model was trained on (``None``: not recorded, as in
            bundles written before the contract; not checked then).
        events_only: the model was trained with the RGB block of every step zeroed (event-only cameras and bags).
        environment: the lighting environment (or ``default``, ``events_only``) it was trained for.
        place_names: optional names of the places.
        snn_ratio: the SNN share of its hidden neurons.
        unit: the training unit it comes from (``hstnn_r0.5000_s0``).
        val, test: metrics on the validation (used to choose it) and test traversals.
        mac_per_decision_hstnn, ac_per_decision_hstnn: HSTNN ops per window (Eq. 23-25).
        spike_rates: mean spike rate of each hidden SNN population.
        storage_dtype: how the weights are stored (``float16`` ships small; runs in float32).
        build: how it was built (tool, mode, data fingerprint, time).
    """

    place_count: int
    frontend_bundle: str | None = None
    frontend_sha256: str | None = None
    events_only: bool = False
    environment: str | None = None
    place_names: tuple[str, ...] | None = None
    snn_ratio: float | None = None
    unit: str | None = None
    val: dict[str, float] | None = None
    test: dict[str, float] | None = None
    mac_per_decision_hstnn: float | None = None
    ac_per_decision_hstnn: float | None = None
    spike_rates: tuple[float, ...] | None = None
    storage_dtype: str = "float32"
    build: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if int(self.place_count) < 1:
            raise RuntimeEngineError(f"DeployMeta: place_count must be >= 1, got {self.place_count}")
        if self.place_names is not None and len(self.place_names) != self.place_count:
            raise RuntimeEngineError(f"DeployMeta: {len(self.place_names)} place names for {self.place_count} places")
        if self.frontend_bundle is not None and Path(self.frontend_bundle).is_absolute():
            raise RuntimeEngineError(f"DeployMeta: frontend_bundle {self.frontend_bundle!r} must be relative to the "
                                     "bundle (a bundle directory moves with its front-ends)")

    def to_metadata(self) -> dict[str, Any]:
        """JSON-ready ``metadata`` entries (``None`` fields left out)."""
        out = {k: v for k, v in asdict(self).items() if v is not None}
        for key in ("place_names", "spike_rates"):
            if key in out:
                out[key] = list(out[key])
        return out

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any], *, source: Path | str = "bundle") -> DeployMeta:
        """The contract fields of a bundle's metadata (older bundles: ``place_count`` from ``num_places``; other keys
        ignored). Wrong types are refused naming ``source``."""
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in meta.items() if k in known}
        kw.setdefault("place_count", meta.get("num_places", 0))
        try:
            for key in ("place_names", "spike_rates"):
                if kw.get(key) is not None:
                    if isinstance(kw[key], str | bytes) or not hasattr(kw[key], "__iter__"):
                        raise TypeError(f"{key} must be a list, got {kw[key]!r}")
                    kw[key] = tuple(kw[key])
            if not isinstance(kw.get("events_only", False), bool):
                raise TypeError(f"events_only must be true or false, got {kw['events_only']!r}")
            for key in ("frontend_bundle", "frontend_sha256"):
                if kw.get(key) is not None and not isinstance(kw[key], str):
                    raise TypeError(f"{key} must be a string, got {kw[key]!r}")
            kw["place_count"] = int(kw["place_count"])
            return cls(**kw)
        except (TypeError, ValueError) as exc:
            raise RuntimeEngineError(f"{source}: bundle metadata does not fit the deployment contract ({exc})") from exc


def frontend_reference(bundle_dir: Path | str, frontends_dir: Path | str, digest: str) -> dict[str, str]:
    """``frontend_bundle`` / ``frontend_sha256`` entries naming ``frontends_dir`` from a bundle at ``bundle_dir``."""
    rel = os.path.relpath(Path(frontends_dir).resolve(), Path(bundle_dir).resolve())
    return {"frontend_bundle": Path(rel).as_posix(), "frontend_sha256": digest}


def check_frontend_digest(bundle_dir: Path, frontends_dir: Path, expected: str | None, found: str) -> None:
    """Refuse front-ends other than those the model was trained on (``expected`` ``None``: not recorded)."""
    if expected and expected != found:
        raise RuntimeEngineError(
            f"{bundle_dir}: the front-end bundle {frontends_dir} has weights {found[:12]}..., but the model was "
            f"trained on front-ends {expected[:12]}...; keep each model with the front-ends it was fitted with "
            "(hstnn-fit-route writes them together) or pass the right ones with --frontends")
