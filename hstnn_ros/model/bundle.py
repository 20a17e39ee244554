"""Model bundles (DESIGN.md section 11): a directory with ``bundle.json`` + ``weights.safetensors``.

``bundle.json`` carries the format name and version, the SHA-256 and size of the weights file, per component its
``kind``, JSON ``config`` and tensor names/shapes/dtypes, and free JSON ``metadata``. Tensors are stored as
``<component>.<state key>``. Loading verifies all of it and never executes code (no pickle).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from hstnn_ros.model.component import HSTNN_KIND, Component, HasComponent
from hstnn_ros.model.errors import BundleError, ModelError
from hstnn_ros.model.network import HSTNN, HSTNNConfig

log = logging.getLogger(__name__)

FORMAT = "hstnn_ros.bundle"
FORMAT_VERSION = 1
JSON_NAME = "bundle.json"
WEIGHTS_NAME = "weights.safetensors"
#: A function turning a stored component of some kind into a live object (e.g. ``perception.frontends.BUILDERS``).
Builder = Callable[[Component], Any]


@dataclass
class Bundle:
    """A loaded, verified bundle."""

    path: Path
    components: dict[str, Component]
    metadata: dict[str, Any] = field(default_factory=dict)
    #: SHA-256 of the weights file (verified at load): what other bundles pin a bundle they depend on by
    digest: str = ""

    def hstnn(self, name: str = HSTNN_KIND) -> Any:
        """The HSTNN stored as component ``name``, built and loaded (eval mode)."""
        if name not in self.components:
            raise BundleError(f"{self.path / JSON_NAME}: no component {name!r} (has {sorted(self.components)})")
        return hstnn_from_component(self.components[name], source=self.path / JSON_NAME).eval()

    def build(self, name: str, builders: Mapping[str, Builder] | None = None) -> Any:
        """Component ``name`` built: an HSTNN by the model core, any other kind by ``builders[kind]`` (passed by
        the caller that knows the kind, e.g. ``perception.frontends.BUILDERS``: no registry filled by imports)."""
        if name not in self.components:
            raise BundleError(f"{self.path / JSON_NAME}: no component {name!r} (has {sorted(self.components)})")
        comp = self.components[name]
        if comp.kind == HSTNN_KIND:
            return self.hstnn(name)
        builder = (builders or {}).get(comp.kind)
        if builder is None:
            raise BundleError(f"{self.path / JSON_NAME}: no builder for component kind {comp.kind!r} (given: "
                              f"{sorted(builders or {})}); pass the builders of its package, e.g. "
                              "hstnn_ros.perception.frontends.BUILDERS")
        try:
            return builder(comp)
        except BundleError:
            raise
        except Exception as exc:  # a builder's own validation: report it against the file
            raise BundleError(f"{self.path / JSON_NAME}: component {name!r} ({comp.kind}) cannot be built: "
                              f"{exc}") from exc


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def save_bundle(directory: Path | str, components: Mapping[str, Component | HasComponent],
                metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``components`` (``Component`` s or objects with ``to_component()``) and JSON ``metadata`` into
    ``directory`` (created); returns the directory. Files are written atomically (temp file + rename)."""
    out = Path(directory)
    comps: dict[str, Component] = {}
    for name, c in components.items():
        if not isinstance(name, str) or not name or "." in name:
            raise BundleError(f"{out}: component names must be non-empty and contain no '.', got {name!r}")
        comp = c if isinstance(c, Component) else getattr(c, "to_component", None)
        if comp is None:
            raise BundleError(f"{out}: component {name!r} is a {type(c).__name__}, not a Component or a model with "
                              f"to_component()")
        comps[name] = comp if isinstance(comp, Component) else comp()
    tensors: dict[str, torch.Tensor] = {}
    desc: dict[str, Any] = {}
    for name, comp in comps.items():
        tdesc = {}
        for key, t in comp.state.items():
            if not isinstance(t, torch.Tensor):
                raise BundleError(f"{out}: component {name!r} state {key!r} is not a tensor")
            tensors[f"{name}.{key}"] = t.detach().cpu().contiguous()
            tdesc[key] = {"shape": list(t.shape), "dtype": _dtype_name(t.dtype)}
        desc[name] = {"kind": comp.kind, "config": comp.config, "tensors": tdesc}
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "components": desc,
           "metadata": dict(metadata or {})}
    try:
        json.dumps(doc)
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{out}: config/metadata must be JSON-serialisable: {exc}") from exc
    out.mkdir(parents=True, exist_ok=True)
    w_tmp = out / (WEIGHTS_NAME + ".tmp")
    save_file(tensors, str(w_tmp))
    doc["weights"] = {"file": WEIGHTS_NAME, "sha256": _sha256(w_tmp), "bytes": w_tmp.stat().st_size}
    j_tmp = out / (JSON_NAME + ".tmp")
    j_tmp.write_text(json.dumps(doc, indent=2, sort_keys=True))
    os.replace(w_tmp, out / WEIGHTS_NAME)
    os.replace(j_tmp, out / JSON_NAME)
    log.info("saved bundle %s (%d components, %d tensors)", out, len(comps), len(tensors))
    return out


def _read_description(jpath: Path) -> dict[str, Any]:
    """``bundle.json`` parsed, with its format and version checked."""
    if not jpath.is_file():
        raise BundleError(f"{jpath}: no bundle description here (expected a directory with {JSON_NAME} and "
                          f"{WEIGHTS_NAME})")
    try:
        doc = json.loads(jpath.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{jpath}: not valid JSON ({exc}); the file is corrupt or truncated") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BundleError(f"{jpath}: format is {doc.get('format') if isinstance(doc, dict) else None!r}, "
                          f"expected {FORMAT!r}")
    if doc.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{jpath}: format_version {doc.get('format_version')!r} is not supported "
                          f"(this build reads {FORMAT_VERSION}); re-export the bundle")
    return doc


def _read_weights(wpath: Path, winfo: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of the weights file, after its size and checksum matched ``winfo``."""
    if not wpath.is_file():
        raise BundleError(f"{wpath}: weights file missing")
    if wpath.stat().st_size != winfo.get("bytes"):
        raise BundleError(f"{wpath}: {wpath.stat().st_size} bytes, {JSON_NAME} says {winfo.get('bytes')} "
                          f"(truncated or replaced)")
    if _sha256(wpath) != winfo.get("sha256"):
        raise BundleError(f"{wpath}: SHA-256 does not match {JSON_NAME} (corrupt or replaced)")
    try:
        return load_file(str(wpath))
    except Exception as exc:  # safetensors raises its own error types for any malformed file
        raise BundleError(f"{wpath}: cannot be parsed as safetensors ({exc})") from exc


def _component(name: str, c: Any, tensors: dict[str, torch.Tensor], jpath: Path, wpath: Path) -> Component:
    """Component ``name`` described by ``c``, its tensors taken from ``tensors`` with their shape and dtype
    checked."""
    if not isinstance(c, dict) or not {"kind", "config", "tensors"} <= set(c):
        raise BundleError(f"{jpath}: component {name!r} needs kind, config and tensors")
    state = {}
    for key, td in c["tensors"].items():
        full = f"{name}.{key}"
        t = tensors.get(full)
        if t is None:
            raise BundleError(f"{wpath}: tensor {full!r} listed in {JSON_NAME} is missing")
        if list(t.shape) != td.get("shape") or _dtype_name(t.dtype) != td.get("dtype"):
            raise BundleError(f"{wpath}: tensor {full!r} is {list(t.shape)} {_dtype_name(t.dtype)}, "
                              f"{JSON_NAME} says {td.get('shape')} {td.get('dtype')}")
        state[key] = t
    return Component(kind=str(c["kind"]), config=dict(c["config"]), state=state)


def load_bundle(directory: Path | str) -> Bundle:
    """Read and verify a bundle: format, version, checksum, size, and every tensor's name, shape and dtype."""
    root = Path(directory)
    jpath, wpath = root / JSON_NAME, root / WEIGHTS_NAME
    doc = _read_description(jpath)
    winfo, comps = doc.get("weights"), doc.get("components")
    if not isinstance(winfo, dict) or not isinstance(comps, dict) or winfo.get("file") != WEIGHTS_NAME:
        raise BundleError(f"{jpath}: missing 'weights' or 'components' sections")
    tensors = _read_weights(wpath, winfo)
    components = {name: _component(name, c, tensors, jpath, wpath) for name, c in comps.items()}
    expected_names = {f"{name}.{key}" for name, c in comps.items() for key in c["tensors"]}
    extra = sorted(set(tensors) - expected_names)
    if extra:
        raise BundleError(f"{wpath}: tensors {extra[:5]} are not described in {JSON_NAME}")
    metadata = doc.get("metadata", {})
    return Bundle(path=root, components=components, metadata=metadata if isinstance(metadata, dict) else {},
                  digest=str(winfo["sha256"]))


def bundle_digest(directory: Path | str) -> str:
    """The SHA-256 of a bundle's weights as its ``bundle.json`` records it (``Bundle.digest``; cheap: the weights are
    not read, ``load_bundle`` verifies them)."""
    jpath = Path(directory) / JSON_NAME
    try:
        return str(json.loads(jpath.read_text())["weights"]["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{jpath}: no readable bundle description ({exc})") from exc


def hstnn_from_component(component: Component, source: Path | str = "<component>") -> Any:
    """Build an :class:`~hstnn_ros.model.HSTNN` from a component, checking kind, config and every tensor shape."""
    if component.kind != HSTNN_KIND:
        raise BundleError(f"{source}: component kind is {component.kind!r}, expected {HSTNN_KIND!r}")
    try:
        model = HSTNN(HSTNNConfig.from_dict(component.config))
    except ModelError as exc:
        raise BundleError(f"{source}: invalid HSTNN config: {exc}") from exc
    expected = model.state_dict()
    got = component.state
    if set(expected) != set(got):
        raise BundleError(f"{source}: tensors {sorted(set(got) ^ set(expected))[:6]} do not match the HSTNN "
                          f"config (missing or unexpected)")
    for key, ref in expected.items():
        if tuple(got[key].shape) != tuple(ref.shape):
            raise BundleError(f"{source}: tensor {key!r} is {tuple(got[key].shape)}, the config needs "
                              f"{tuple(ref.shape)}")
        if not got[key].is_floating_point() or not bool(torch.isfinite(got[key]).all()):
            raise BundleError(f"{source}: tensor {key!r} must be finite floating point")
    model = model.to(dtype=next(iter(got.values())).dtype)
    model.load_state_dict(got, strict=True)
    return model
