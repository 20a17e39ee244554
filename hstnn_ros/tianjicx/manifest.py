"""The exported core program: a versioned JSON manifest plus per-core weight blobs, and their consistency check.

A program directory holds ``program.json`` (this manifest) and ``weights.safetensors`` (INT8/INT32 tensors named
``core<ID>.<operand>``). Manifest format ``hstnn_ros.tianjicx_program``, version 1:

* ``network``: input size, spiking inputs, input scale exponent (``x_int = round(x * 2**input_exp)``), classes,
  steps, decoder, and per layer the population sizes, fan-in and accumulator exponents.
* ``buffers``: named INT8 vectors cores read from (``input``, ``layer<i>.in``, ``layer<i>.rec``, ``readout.spk``,
  ``readout.rnn``) with their lengths.
* ``core_groups``: per hybrid layer (then the readout) its mapping strategy and core ids; groups run as a pipeline.
* ``cores``: per core its mesh position, population slice ``columns = [lo, hi)``, padded fan-in/columns, memory
  bytes, ``reads`` (buffers concatenated into its P04 input, in order), ``primitives`` in execution order (each with
  ``op`` P04/P07/P08, ``when`` ``every_step``/``last_step``, operand tensor names, shapes and parameters), and
  ``routes``: where its INT8 outputs go (buffer and offset; the recurrent buffer is read at the next step).
* ``weights``: blob file name and its SHA-256.

:func:`check_manifest` refuses a manifest whose structure (JSON schema) or content (ids, coverage, shapes, routes,
parameters, checksum) is inconsistent, naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from hstnn_ros.tianjicx.enums import LutWidth, PopulationKind
from hstnn_ros.tianjicx.errors import TianjicxError
from hstnn_ros.tianjicx.mapping import CoreLimits, Mapping, PopulationShape
from hstnn_ros.tianjicx.primitives import INPUT_ALIGN, OUTPUT_ALIGN, LifParams, ceil_to
from hstnn_ros.tianjicx.quant import SPIKE_TABLE, QuantHSTNN

log = logging.getLogger(__name__)

FORMAT = "hstnn_ros.tianjicx_program"
FORMAT_VERSION = 1
MANIFEST_NAME = "program.json"
WEIGHTS_NAME = "weights.safetensors"

_PRIM = {
    "type": "object",
    "required": ["op", "when"],
    "properties": {
        "op": {"enum": ["P04", "P07", "P08"]},
        "when": {"enum": ["every_step", "last_step"]},
    },
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "format_version", "network", "buffers", "core_groups", "cores", "weights", "limits"],
    "properties": {
        "format": {"const": FORMAT},
        "format_version": {"const": FORMAT_VERSION},
        "network": {
            "type": "object",
            "required": ["input_size", "input_spiking", "input_exp", "num_classes", "steps", "rate_decoder", "layers"],
            "properties": {
                "input_size": {"type": "integer", "minimum": 1},
                "num_classes": {"type": "integer", "minimum": 1},
                "steps": {"type": "integer", "minimum": 1},
                "layers": {"type": "array", "minItems": 1},
            },
        },
        "buffers": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}},
        "core_groups": {"type": "array", "minItems": 1},
        "cores": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": [
                    "core_id",
                    "xy",
                    "group",
                    "population",
                    "kind",
                    "columns",
                    "fan_in",
                    "fan_in_padded",
                    "columns_padded",
                    "memory_bytes",
                    "reads",
                    "primitives",
                    "routes",
                ],
                "properties": {
                    "core_id": {"type": "integer", "minimum": 0},
                    "kind": {"enum": [k.value for k in PopulationKind]},
                    "columns": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
                    "primitives": {"type": "array", "items": _PRIM, "minItems": 1},
                    "routes": {"type": "array"},
                },
            },
        },
        "weights": {"type": "object", "required": ["file", "sha256"]},
        "limits": {"type": "object"},
    },
}


def network_shapes(q: QuantHSTNN) -> list[list[PopulationShape]]:
    """The populations of a quantised network per core group, for :func:`hstnn_ros.tianjicx.mapping.map_network`."""
    groups = []
    for i, lay in enumerate(q.layers):
        groups.append(
            [
                PopulationShape(i, PopulationKind.SNN, lay.n_snn, lay.fan_in),
                PopulationShape(i, PopulationKind.RNN, lay.n_rnn, lay.fan_in + lay.n_rnn),
            ]
        )
    last = q.layers[-1]
    groups.append([PopulationShape(len(q.layers), PopulationKind.READOUT, q.num_classes, last.n_snn + last.n_rnn)])
    return groups


def _lif_dict(p: LifParams) -> dict:
    d = asdict(p)
    d["reset_mode"] = int(p.reset_mode)
    d["fire_type"] = int(p.fire_type)
    d["leak_multiplicative_enable"] = bool(p.leak_multiplicative_enable)
    d["theta_decay_enable"] = bool(p.theta_decay_enable)
    return d


def build_program(q: QuantHSTNN, mapping: Mapping, steps: int) -> tuple[dict, dict[str, np.ndarray]]:  # noqa: PLR0915  lays out the core groups in order
    """Lay the quantised network out on the mapped cores: manifest dict and the per-core tensors."""
    tensors: dict[str, np.ndarray] = {}
    cores: list[dict] = []
    n_layers = len(q.layers)
    buffers = {"input": q.input_size}
    for i, lay in enumerate(q.layers):
        if i:
            buffers[f"layer{i}.in"] = lay.fan_in
        buffers[f"layer{i}.rec"] = lay.n_rnn
    buffers["readout.spk"] = q.layers[-1].n_snn
    buffers["readout.rnn"] = q.layers[-1].n_rnn

    def dest(i: int, kind: PopulationKind, lo: int, hi: int) -> list[dict]:
        lay = q.layers[i]
        offset = lo if kind == PopulationKind.SNN else lay.n_snn + lo
        if i + 1 < n_layers:
            routes = [{"buffer": f"layer{i + 1}.in", "offset": offset, "length": hi - lo, "delay": 0}]
        else:
            name = "readout.spk" if kind == PopulationKind.SNN else "readout.rnn"
            routes = [{"buffer": name, "offset": lo, "length": hi - lo, "delay": 0}]
        if kind == PopulationKind.RNN:
            routes.append({"buffer": f"layer{i}.rec", "offset": lo, "length": hi - lo, "delay": 1})
        return routes

    for c in mapping.cores:
        lo, hi = c.columns
        key = f"core{c.core_id}"
        entry: dict[str, Any] = {
            "core_id": c.core_id,
            "xy": list(c.xy),
            "group": c.group,
            "population": c.population,
            "kind": c.kind.value,
            "columns": [lo, hi],
            "fan_in_padded": c.fan_in_padded,
            "columns_padded": c.columns_padded,
            "memory_bytes": c.memory_bytes,
        }
        if c.kind == PopulationKind.SNN:
            lay = q.layers[c.group]
            tensors[f"{key}.w"] = np.ascontiguousarray(lay.w_snn[:, lo:hi])
            tensors[f"{key}.b"] = lay.b_snn[lo:hi].astype(np.int32)
            tensors[f"{key}.spike_lut"] = SPIKE_TABLE
            tensors[f"{key}.vtheta"] = lay.theta_snn[lo:hi].astype(np.int32)
            reads = ["input" if c.group == 0 else f"layer{c.group}.in"]
            prims = [
                {
                    "op": "P04",
                    "when": "every_step",
                    "weights": f"{key}.w",
                    "bias": f"{key}.b",
                    "acc_exp": [int(e) for e in lay.exp_snn[lo:hi]],
                },
                {
                    "op": "P08",
                    "when": "every_step",
                    "params": _lif_dict(lay.lif),
                    "vtheta_length": hi - lo,
                    "vtheta_init": f"{key}.vtheta",
                },
                {
                    "op": "P07",
                    "when": "every_step",
                    "table": f"{key}.spike_lut",
                    "lut_width_bits": 8,
                    "shift": 0,
                    "x_bits": 8,
                },
            ]
            entry.update(fan_in=lay.fan_in, reads=reads, primitives=prims, routes=dest(c.group, c.kind, lo, hi))
        elif c.kind == PopulationKind.RNN:
            lay = q.layers[c.group]
            tensors[f"{key}.w"] = np.ascontiguousarray(lay.w_rnn[:, lo:hi])
            tensors[f"{key}.b"] = lay.b_rnn[lo:hi].astype(np.int32)
            tensors[f"{key}.lut"] = lay.lut
            reads = ["input" if c.group == 0 else f"layer{c.group}.in", f"layer{c.group}.rec"]
            prims = [
                {"op": "P04", "when": "every_step", "weights": f"{key}.w", "bias": f"{key}.b", "acc_exp": lay.exp_rnn},
                {
                    "op": "P07",
                    "when": "every_step",
                    "table": f"{key}.lut",
                    "lut_width_bits": int(lay.lut_width),
                    "shift": lay.lut_shift,
                    "x_bits": 32,
                },
            ]
            entry.update(
                fan_in=lay.fan_in + lay.n_rnn, reads=reads, primitives=prims, routes=dest(c.group, c.kind, lo, hi)
            )
        else:
            ro = q.readout
            tensors[f"{key}.w_spk"] = np.ascontiguousarray(ro.w_spk[:, lo:hi])
            tensors[f"{key}.w_rnn"] = np.ascontiguousarray(ro.w_rnn[:, lo:hi])
            tensors[f"{key}.b"] = ro.bias[lo:hi].astype(np.int32)
            last = q.layers[-1]
            if ro.rate_decoder:
                prims = [
                    {
                        "op": "P04",
                        "when": "every_step",
                        "input": "readout.spk",
                        "weights": f"{key}.w_spk",
                        "bias": None,
                        "acc_exp": ro.exp,
                    },
                    {
                        "op": "P08",
                        "when": "every_step",
                        "params": _lif_dict(ro.integrator),
                        "vtheta_length": 1,
                        "role": "integrator",
                    },
                    {
                        "op": "P04",
                        "when": "last_step",
                        "input": "readout.rnn",
                        "weights": f"{key}.w_rnn",
                        "bias": f"{key}.b",
                        "add_integrator": True,
                        "acc_exp": ro.exp,
                    },
                ]
            else:
                prims = [
                    {
                        "op": "P04",
                        "when": "last_step",
                        "input": "readout.spk",
                        "weights": f"{key}.w_spk",
                        "bias": None,
                        "acc_exp": ro.exp,
                    },
                    {
                        "op": "P04",
                        "when": "last_step",
                        "input": "readout.rnn",
                        "weights": f"{key}.w_rnn",
                        "bias": f"{key}.b",
                        "add_previous": True,
                        "acc_exp": ro.exp,
                    },
                ]
            entry.update(
                fan_in=last.n_snn + last.n_rnn,
                reads=["readout.spk", "readout.rnn"],
                primitives=prims,
                routes=[{"buffer": "logits", "offset": lo, "length": hi - lo, "delay": 0}],
            )
        cores.append(entry)
    buffers["logits"] = q.num_classes
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "network": {
            "input_size": q.input_size,
            "input_spiking": q.input_spiking,
            "input_exp": q.input_exp,
            "num_classes": q.num_classes,
            "steps": int(steps),
            "rate_decoder": q.readout.rate_decoder,
            "layers": [
                {
                    "n_snn": lay.n_snn,
                    "n_rnn": lay.n_rnn,
                    "fan_in": lay.fan_in,
                    "exp_snn": [int(e) for e in lay.exp_snn],
                    "exp_rnn": lay.exp_rnn,
                }
                for lay in q.layers
            ],
        },
        "buffers": buffers,
        "core_groups": [
            {"group": g.group, "name": g.name, "strategy": g.strategy.value, "cores": [c.core_id for c in g.cores]}
            for g in mapping.groups
        ],
        "cores": cores,
        "limits": {**asdict(mapping.limits), "mesh_xy": list(mapping.limits.mesh_xy)},
        "weights": {"file": WEIGHTS_NAME, "sha256": ""},
        "meta": dict(q.meta),
    }
    return manifest, tensors


def save_program(out_dir: Path, manifest: dict, tensors: dict[str, np.ndarray]) -> Path:
    """Write ``program.json`` and ``weights.safetensors`` into ``out_dir`` (created); returns the manifest path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wpath = out_dir / WEIGHTS_NAME
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(wpath))
    manifest = {**manifest, "weights": {"file": WEIGHTS_NAME, "sha256": _sha256(wpath)}}
    mpath = out_dir / MANIFEST_NAME
    mpath.write_text(json.dumps(manifest, indent=1))
    return mpath


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_program(program_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and fully check a program directory; raises :class:`TianjicxError` naming the file and the problem."""
    program_dir = Path(program_dir)
    mpath = program_dir / MANIFEST_NAME
    if not mpath.is_file():
        raise TianjicxError(f"{mpath} not found: pass a directory written by hstnn-export-tianjicx")
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        raise TianjicxError(f"{mpath}: not valid JSON ({e})") from e
    check_schema(manifest, mpath)
    wpath = program_dir / manifest["weights"]["file"]
    if not wpath.is_file():
        raise TianjicxError(f"{mpath}: weights file {wpath} is missing")
    if _sha256(wpath) != manifest["weights"]["sha256"]:
        raise TianjicxError(f"{wpath}: SHA-256 does not match weights.sha256 in {mpath}; re-export the program")
    try:
        tensors = load_file(str(wpath))
    except SafetensorError as e:
        raise TianjicxError(f"{wpath}: unreadable safetensors file ({e})") from e
    check_manifest(manifest, tensors, mpath)
    return manifest, tensors


def check_schema(manifest: dict, where: Path | str = MANIFEST_NAME) -> None:
    """JSON-schema check of the manifest structure."""
    try:
        jsonschema.validate(manifest, SCHEMA)
    except jsonschema.ValidationError as e:
        path = "/".join(str(p) for p in e.absolute_path) or "(top level)"
        raise TianjicxError(f"{where}: field {path}: {e.message}") from e


_Bad = Callable[[str], TianjicxError]


def check_manifest(manifest: dict, tensors: dict[str, np.ndarray], where: Path | str = MANIFEST_NAME) -> None:
    """Content checks the schema cannot express: ids, coverage, padding, shapes, routes, parameters, core budget."""

    def bad(msg: str) -> TianjicxError:
        return TianjicxError(f"{where}: inconsistent manifest: {msg}")

    check_schema(manifest, where)
    net = manifest["network"]
    layers = net["layers"]
    bufs = manifest["buffers"]
    cores = manifest["cores"]
    limits = CoreLimits(**{**manifest["limits"], "mesh_xy": tuple(manifest["limits"]["mesh_xy"])})
    _check_cores_and_groups(cores, manifest["core_groups"], len(layers), limits, bad)
    expect = _expected_buffers(net, bad)
    for name, n in expect.items():
        if bufs.get(name) != n:
            raise bad(f"buffer {name} must have length {n}, found {bufs.get(name)}")
    if set(bufs) != set(expect):
        raise bad(f"unexpected buffers {sorted(set(bufs) - set(expect))}")
    coverage: dict[str, list[tuple[int, int]]] = {}
    written: dict[str, np.ndarray] = {k: np.zeros(v, np.int64) for k, v in bufs.items()}
    for c in cores:
        lo, hi = c["columns"]
        if not 0 <= lo < hi:
            raise bad(f"core {c['core_id']}: columns {c['columns']} must satisfy 0 <= lo < hi")
        coverage.setdefault(c["population"], []).append((lo, hi))
        _check_core(c, bufs, tensors, limits, bad)
        for r in c["routes"]:
            written[r["buffer"]][r["offset"] : r["offset"] + r["length"]] += 1
    for name, count in written.items():
        if name != "input" and np.any(count != 1):
            raise bad(f"buffer {name}: every element must be written by exactly one route (counts {np.unique(count)})")
    for i, lay in enumerate(layers):
        for kind, n in (("snn", lay["n_snn"]), ("rnn", lay["n_rnn"])):
            _check_cover(coverage.get(f"layer{i}.{kind}", []), n, f"layer{i}.{kind}", bad)
    _check_cover(coverage.get("readout", []), net["num_classes"], "readout", bad)


def _check_cores_and_groups(cores: list[dict], groups: list[dict], n_layers: int, limits: CoreLimits,
                            bad: _Bad) -> None:
    """Core ids 0..n-1 in order, within the chip's core count, each in exactly one group (one per layer + readout)."""
    ids = [c["core_id"] for c in cores]
    if ids != list(range(len(cores))):
        raise bad(f"core ids must be 0..{len(cores) - 1} in order, found {ids[:10]}...")
    if len(cores) > limits.cores_per_chip:
        raise bad(
            f"{len(cores)} cores exceed the chip's {limits.cores_per_chip} by {len(cores) - limits.cores_per_chip}"
        )
    grouped = sorted(i for g in groups for i in g["cores"])
    if grouped != ids:
        raise bad("core_groups must list every core exactly once")
    for g in groups:
        for i in g["cores"]:
            if cores[i]["group"] != g["group"]:
                raise bad(f"core {i} says group {cores[i]['group']} but is listed in group {g['group']}")
    if len(groups) != n_layers + 1:
        raise bad(f"{n_layers} layers need {n_layers + 1} core groups, found {len(groups)}")


def _expected_buffers(net: dict, bad: _Bad) -> dict[str, int]:
    """The buffer lengths the network's layer sizes imply (checking that consecutive layers fit together)."""
    layers = net["layers"]
    expect = {"input": net["input_size"], "logits": net["num_classes"]}
    for i, lay in enumerate(layers):
        if i:
            expect[f"layer{i}.in"] = lay["fan_in"]
        expect[f"layer{i}.rec"] = lay["n_rnn"]
        if i and lay["fan_in"] != layers[i - 1]["n_snn"] + layers[i - 1]["n_rnn"]:
            raise bad(f"layer {i} fan_in {lay['fan_in']} != outputs of layer {i - 1}")
    expect["readout.spk"] = layers[-1]["n_snn"]
    expect["readout.rnn"] = layers[-1]["n_rnn"]
    if layers[0]["fan_in"] != net["input_size"]:
        raise bad(f"layer 0 fan_in {layers[0]['fan_in']} != input_size {net['input_size']}")
    return expect


def _check_core(c: dict, bufs: dict[str, int], tensors: dict[str, np.ndarray], limits: CoreLimits,
                bad: _Bad) -> None:
    """One core: padding, memory budget, reads, its primitives' operands and its routes' bounds."""
    cid = c["core_id"]
    lo, hi = c["columns"]
    if c["fan_in_padded"] != ceil_to(c["fan_in"], INPUT_ALIGN):
        raise bad(f"core {cid}: fan_in_padded {c['fan_in_padded']} != ceil16({c['fan_in']})")
    if c["columns_padded"] != ceil_to(hi - lo, OUTPUT_ALIGN):
        raise bad(f"core {cid}: columns_padded {c['columns_padded']} != ceil32({hi - lo})")
    if c["memory_bytes"] > limits.memory_bytes:
        raise bad(
            f"core {cid}: {c['memory_bytes']} bytes exceed core memory by {c['memory_bytes'] - limits.memory_bytes}"
        )
    if sum(bufs.get(r, -(10**9)) for r in c["reads"]) != c["fan_in"]:
        raise bad(f"core {cid}: reads {c['reads']} do not add up to fan_in {c['fan_in']}")
    for p in c["primitives"]:
        _check_primitive(c, p, bufs, tensors, bad)
    for r in c["routes"]:
        if r["buffer"] not in bufs:
            raise bad(f"core {cid}: route to unknown buffer {r['buffer']}")
        if r["length"] != hi - lo or r["offset"] < 0 or r["offset"] + r["length"] > bufs[r["buffer"]]:
            raise bad(f"core {cid}: route {r} does not fit buffer {r['buffer']} of length {bufs[r['buffer']]}")


def _check_primitive(c: dict, p: dict, bufs: dict[str, int], tensors: dict[str, np.ndarray], bad: _Bad) -> None:
    """Primitive ``p`` of core ``c``: its operands exist in the weights file with the shapes and dtypes it needs."""
    cid = c["core_id"]
    lo, hi = c["columns"]
    for key in ("weights", "bias", "table", "vtheta_init"):
        name = p.get(key)
        if name is not None and name not in tensors:
            raise bad(f"core {cid}: {p['op']} operand {key}={name} is not in the weights file")
    if p["op"] == "P04":
        w = tensors[p["weights"]]
        rows = bufs[p["input"]] if "input" in p else c["fan_in"]
        if w.dtype != np.int8 or w.shape != (rows, hi - lo):
            raise bad(f"core {cid}: {p['weights']} must be int8 [{rows}, {hi - lo}], is {w.dtype} {w.shape}")
        if p.get("bias") is not None and tensors[p["bias"]].shape != (hi - lo,):
            raise bad(f"core {cid}: bias {p['bias']} must have {hi - lo} entries")
    elif p["op"] == "P07":
        width = LutWidth(p["lut_width_bits"])
        if p.get("x_bits") not in (8, 32):
            raise bad(f"core {cid}: P07 x_bits must be 8 or 32, got {p.get('x_bits')}")
        if tensors[p["table"]].shape != (2 ** int(width),):
            raise bad(f"core {cid}: table {p['table']} must have {2 ** int(width)} entries")
    elif p["op"] == "P08":
        try:
            LifParams(**p["params"])
        except (TypeError, ValueError) as e:
            raise bad(f"core {cid}: P08 params invalid ({e})") from e


def _check_cover(spans: list[tuple[int, int]], n: int, name: str, bad: _Bad) -> None:
    pos = 0
    for lo, hi in sorted(spans):
        if lo != pos:
            raise bad(f"{name}: neurons {pos}..{lo - 1} are on no core or placed twice (spans {sorted(spans)})")
        pos = hi
    if pos != n:
        raise bad(f"{name}: cores cover {pos} of {n} neurons")
