"""Execute an exported core program with the integer primitive semantics and estimate its cost on the chip.

The simulator walks the manifest itself: for every time step, core groups in pipeline order, every core gathers its
``reads`` buffers, runs its primitives (P04, P07, P08 from :mod:`hstnn_ros.tianjicx.primitives`) on its own weight
slice and writes its INT8 outputs along its ``routes``. Batches are vectorised.

Cycle model (per core and step; resources from BiMap ``top/config.toml``, see :mod:`hstnn_ros.tianjicx.mapping`):

* P04: ``ceil(fan_in_padded / 16) * columns_padded / 32`` clocks: the 4-word x 32-column MAC array takes
  16 INT8 inputs x 32 outputs per clock and P04 is dense (every padded row, spikes or not).
* P07: ``columns_padded * 4 / 32`` clocks (INT32 operands at the 32-byte/clock runtime memory bandwidth).
* P08: ``columns_padded * 12 / 32`` clocks (state word, input and threshold per neuron at 32 bytes/clock).
* Router: ``ceil(bytes / 8)`` clocks per route (8-byte NoC flits) plus the Manhattan hop count to the farthest core
  of the destination group.

The cores of a group run in parallel; the groups form a pipeline (paper Fig. 5a, Supplementary Fig. 3b), so the
estimated latency per sample is ``steps * slowest group`` clocks at ``clock_hz`` (an assumption: 300 MHz; BiMap's
config gives no clock). Energy model (assumption, 45 nm figures of Horowitz, ISSCC 2014, "Computing's energy
problem"): 0.23 pJ per INT8 MAC (8-bit multiply 0.2 + 32-bit add ~0.03-0.1), 0.1 pJ per AC (32-bit add for a
spike input), 1.25 pJ per SRAM byte read (10 pJ per 64-bit read of an 8 KB SRAM), 0.5 pJ per byte per NoC hop,
2 pJ per LUT lookup or LIF update. Not measured on a TianjicX chip.

Operation counts are those of ``hstnn_ros.model.count_ops`` (Eq. 23-25) on this program's own activity: ACs are the
spike inputs present in this run (event-driven weight reads), MACs the real-valued rows of every operand block that is
not entirely zero in that sample at that step (a buffer's real-valued part is one block: the non-spiking input
features, e.g. the RGB feature present only at a window's RGB steps; a layer's RNN outputs; the recurrent state,
zero before the first step). A zero block is skipped, as ``model.ops.active_blocks`` defines it; the cycle model
stays dense (a per-step worst case: the schedule does not know which blocks will be zero).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hstnn_ros.plotting import pyplot, save_figure
from hstnn_ros.tianjicx.errors import TianjicxError
from hstnn_ros.tianjicx.primitives import LifParams, lut_lookup, p04_matvec, p08_lif, pack_v_state, unpack_v_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CostModel:
    """Clock and energy constants (documented in the module docstring; all assumptions, not chip measurements)."""

    clock_hz: float = 300e6
    mac_in_per_clock: int = 16
    mac_out_per_clock: int = 32
    mem_bytes_per_clock: int = 32
    noc_bytes_per_clock: int = 8
    pj_mac: float = 0.23
    pj_ac: float = 0.1
    pj_sram_byte: float = 1.25
    pj_noc_byte_hop: float = 0.5
    pj_neuron_op: float = 2.0


@dataclass
class CoreWork:
    """Workload of one core, summed over the simulated samples and steps."""

    core_id: int
    group: int
    population: str
    macs: float = 0.0
    acs: float = 0.0
    neuron_ops: float = 0.0
    sram_bytes: float = 0.0
    noc_byte_hops: float = 0.0
    cycles_per_step: float = 0.0
    memory_bytes: int = 0


@dataclass
class SimReport:
    """What a simulation run measured and estimated (per-sample figures are means over the batch)."""

    samples: int
    logits: np.ndarray
    predictions: np.ndarray
    cores: list[CoreWork]
    group_cycles_per_step: list[float]
    latency_us: float
    energy_uj: float
    snn_ratio: float
    agreement: float | None = None
    accuracy_int: float | None = None
    accuracy_float: float | None = None
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-friendly summary (no arrays)."""
        n = max(self.samples, 1)
        return {
            "samples": self.samples,
            "snn_ratio": self.snn_ratio,
            "agreement_top1": self.agreement,
            "accuracy_int": self.accuracy_int,
            "accuracy_float": self.accuracy_float,
            "accuracy_change": None
            if self.accuracy_int is None or self.accuracy_float is None
            else self.accuracy_int - self.accuracy_float,
            "latency_us_per_sample": self.latency_us,
            "energy_uj_per_sample": self.energy_uj,
            "group_cycles_per_step": self.group_cycles_per_step,
            "cores": [
                {
                    **asdict(c),
                    "macs": c.macs / n,
                    "acs": c.acs / n,
                    "neuron_ops": c.neuron_ops / n,
                    "sram_bytes": c.sram_bytes / n,
                    "noc_byte_hops": c.noc_byte_hops / n,
                }
                for c in self.cores
            ],
            **self.extra,
        }


def _spike_mask(manifest: dict) -> dict[str, np.ndarray]:
    """Which elements of each buffer are spikes (0/1) rather than real-valued INT8."""
    net = manifest["network"]
    bufs = manifest["buffers"]
    mask = {k: np.zeros(v, bool) for k, v in bufs.items()}
    mask["input"][: net["input_spiking"]] = True
    for i, lay in enumerate(net["layers"][:-1]):
        mask[f"layer{i + 1}.in"][: lay["n_snn"]] = True
    mask["readout.spk"][:] = True
    return mask


def _active_real_rows(buf: np.ndarray, spike_mask: np.ndarray) -> float:
    """Real-valued rows multiplied from one buffer ``[B, n]`` over the batch: its real-valued part is one operand
    block, skipped in a sample where it is entirely zero (the rule of ``hstnn_ros.model.ops.active_blocks``)."""
    real = ~spike_mask
    n_real = int(real.sum())
    if n_real == 0:
        return 0.0
    return float((buf[:, real] != 0).any(axis=1).sum()) * n_real


def _hops(manifest: dict) -> dict[tuple[int, str], int]:
    """Manhattan hops from each core to the farthest core reading each buffer it writes."""
    readers: dict[str, list[tuple[int, int]]] = {}
    for c in manifest["cores"]:
        for r in c["reads"]:
            readers.setdefault(r, []).append(tuple(c["xy"]))
        for p in c["primitives"]:
            if "input" in p:
                readers.setdefault(p["input"], []).append(tuple(c["xy"]))
    out = {}
    for c in manifest["cores"]:
        x, y = c["xy"]
        for r in c["routes"]:
            dests = readers.get(r["buffer"], [(x, y)])
            out[(c["core_id"], r["buffer"])] = max(abs(x - dx) + abs(y - dy) for dx, dy in dests)
    return out


@dataclass
class _Batch:
    """What one batch of samples carries across steps: per-core LIF state and thresholds, and the integer logits."""

    logits: np.ndarray
    lif_state: dict[int, np.ndarray] = field(default_factory=dict)
    lif_theta: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Samples in the batch."""
        return self.logits.shape[0]


@dataclass
class _Step:
    """The buffers of one time step: ``cur`` (written this step), ``nxt_rec`` (the recurrent buffers of the next
    step), ``view`` (what the cores read: ``cur``'s arrays, so a route written this step shows in it, and this step's
    recurrent buffers)."""

    view: dict[str, np.ndarray]
    cur: dict[str, np.ndarray]
    nxt_rec: dict[str, np.ndarray]
    last: bool


class _Simulator:
    """A program's constants (cores, weights, spike masks, hops, cost model) and the work accounted per core."""

    def __init__(self, manifest: dict, tensors: dict[str, np.ndarray], cost: CostModel) -> None:
        self.cores = manifest["cores"]
        self.tensors = tensors
        self.cost = cost
        self.smask = _spike_mask(manifest)
        self.hops = _hops(manifest)
        self.work = [CoreWork(c["core_id"], c["group"], c["population"], memory_bytes=c["memory_bytes"])
                     for c in self.cores]

    def step_core(self, cid: int, batch: _Batch, step: _Step) -> None:
        """One step of core ``cid``: its primitives, then its routes; the clocks it took go into its work."""
        out, cycles = self._primitives(cid, batch, step)
        cycles = self._route(cid, out, batch, step, cycles)
        w = self.work[cid]
        w.cycles_per_step = max(w.cycles_per_step, cycles)

    def _primitives(self, cid: int, batch: _Batch, step: _Step) -> tuple[np.ndarray | None, float]:
        """Core ``cid``'s primitives on ``step.view``: its output (None when it has none) and the clocks taken."""
        c, w, cost = self.cores[cid], self.work[cid], self.cost
        lo, hi = c["columns"]
        ncol = hi - lo
        cycles = 0.0
        out = None
        prev = None
        for p in c["primitives"]:
            if p["when"] == "last_step" and not step.last:
                continue
            if p["op"] == "P04":
                acc, clocks = self._p04(cid, p, batch, step, prev)
                prev = out = acc
                cycles += clocks
                continue
            if out is None:
                raise TianjicxError(f"program core {cid}: primitive {p['op']} has no input (no P04 before it); "
                                    "re-export the program")
            if p["op"] == "P07":
                xin7 = out.astype(np.int8 if p["x_bits"] == 8 else np.int32)
                out = lut_lookup(xin7, self.tensors[p["table"]], p["lut_width_bits"], p["shift"])
                w.neuron_ops += ncol * batch.size
                cycles += c["columns_padded"] * 4 / cost.mem_bytes_per_clock
            elif p["op"] == "P08":
                out = self._p08(cid, p, out, batch)
                w.neuron_ops += ncol * batch.size
                cycles += c["columns_padded"] * 12 / cost.mem_bytes_per_clock
        return out, cycles

    def _p04(self, cid: int, p: dict, batch: _Batch, step: _Step, prev: np.ndarray | None
             ) -> tuple[np.ndarray, float]:
        """P04 (matrix-vector product) of core ``cid``: its accumulator and clocks; the work goes into its work."""
        c, w, smask, view = self.cores[cid], self.work[cid], self.smask, step.view
        lo, hi = c["columns"]
        ncol = hi - lo
        names = [p["input"]] if "input" in p else c["reads"]
        xin = np.concatenate([view[r] for r in names], axis=1)
        spk = np.concatenate([smask[r] for r in names])
        bias = self.tensors[p["bias"]] if p.get("bias") is not None else 0
        acc = p04_matvec(xin, self.tensors[p["weights"]], bias)[:, :ncol].astype(np.int64)
        if p.get("add_integrator"):
            acc = acc + unpack_v_state(batch.lif_state[cid])[0]
        if p.get("add_previous") and prev is not None:
            acc = acc + prev
        rows = xin.shape[1]
        real_rows = sum(_active_real_rows(view[r], smask[r]) for r in names)  # over the batch
        spikes_in = float((xin[:, spk] != 0).sum())
        w.macs += real_rows * ncol
        w.acs += spikes_in * ncol
        w.sram_bytes += (real_rows + spikes_in) * ncol
        return acc, math.ceil(max(rows, 1) / self.cost.mac_in_per_clock) * c["columns_padded"] / 32

    def _p08(self, cid: int, p: dict, x: np.ndarray, batch: _Batch) -> np.ndarray | None:
        """P08 (LIF update) of core ``cid`` on ``x``: its spikes (None for an integrator); the state, created at the
        core's first step, stays in ``batch``."""
        lo, hi = self.cores[cid]["columns"]
        ncol = hi - lo
        params = LifParams(**p["params"])
        if cid not in batch.lif_state:
            nb = batch.size
            batch.lif_state[cid] = pack_v_state(np.zeros((nb, ncol), np.int64), np.zeros((nb, ncol), np.int64))
            init = p.get("vtheta_init")
            theta0 = self.tensors[init] if init else np.zeros(p["vtheta_length"], np.int32)
            batch.lif_theta[cid] = np.broadcast_to(theta0, (nb, p["vtheta_length"])).astype(np.int32)
        st = p08_lif(batch.lif_state[cid], batch.lif_theta[cid], x.astype(np.int32), params)
        batch.lif_state[cid], batch.lif_theta[cid] = st.state, st.vtheta
        return st.output if p.get("role") != "integrator" else None

    def _route(self, cid: int, out: np.ndarray | None, batch: _Batch, step: _Step, cycles: float) -> float:
        """Write core ``cid``'s output along its routes (``step.cur``, ``step.nxt_rec`` or, at the last step, the
        logits); returns ``cycles`` plus the router's clocks."""
        c, w = self.cores[cid], self.work[cid]
        lo, hi = c["columns"]
        ncol = hi - lo
        for r in c["routes"]:
            if r["buffer"] == "logits":
                if step.last:
                    batch.logits[:, r["offset"] : r["offset"] + ncol] = out
                continue
            if out is None:
                continue
            o = out.astype(np.int8)
            dst = step.nxt_rec if r["delay"] == 1 else step.cur
            dst[r["buffer"]][:, r["offset"] : r["offset"] + ncol] = o
            h = self.hops[(cid, r["buffer"])]
            w.noc_byte_hops += float(ncol * batch.size * max(h, 1))
            cycles += math.ceil(ncol / self.cost.noc_bytes_per_clock) + h
        return cycles


def run_program(
    manifest: dict,
    tensors: dict[str, np.ndarray],
    x_int: np.ndarray,
    *,
    cost: CostModel | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> SimReport:
    """Run the program on INT8 inputs ``x_int[N, T, F]`` and account the work per core.

    The number of steps is taken from ``x_int`` (the manifest's ``steps`` is what the model was calibrated on).
    """
    cost = cost or CostModel()
    net = manifest["network"]
    x_int = np.asarray(x_int)
    if x_int.ndim != 3 or x_int.shape[2] != net["input_size"] or x_int.dtype != np.int8:
        raise TianjicxError(f"program input must be int8 [N, T, {net['input_size']}], got {x_int.dtype} {x_int.shape}")
    n, steps, _ = x_int.shape
    bufs = manifest["buffers"]
    sim = _Simulator(manifest, tensors, cost)
    work = sim.work
    order = [i for g in manifest["core_groups"] for i in g["cores"]]
    logits_all = []
    batches = range(0, n, batch_size)
    for b0 in tqdm(batches, desc="tianjicx sim", unit="batch", disable=not progress or len(batches) < 2):
        xb = x_int[b0 : b0 + batch_size]
        nb = xb.shape[0]
        rec = {k: np.zeros((nb, v), np.int8) for k, v in bufs.items() if k.endswith(".rec")}
        batch = _Batch(logits=np.zeros((nb, net["num_classes"]), np.int64))
        for t in range(steps):
            cur = {k: np.zeros((nb, v), np.int8) for k, v in bufs.items() if not k.endswith(".rec")}
            cur["input"] = xb[:, t]
            nxt_rec = {k: v.copy() for k, v in rec.items()}
            step = _Step(view={**cur, **rec}, cur=cur, nxt_rec=nxt_rec, last=t == steps - 1)
            for cid in order:
                sim.step_core(cid, batch, step)
            rec = nxt_rec
        logits_all.append(batch.logits)
    logits = np.concatenate(logits_all) if logits_all else np.zeros((0, net["num_classes"]), np.int64)
    group_cycles = [max(work[i].cycles_per_step for i in g["cores"]) for g in manifest["core_groups"]]
    latency_us = steps * max(group_cycles) / cost.clock_hz * 1e6
    energy_pj = sum(
        w.macs * cost.pj_mac
        + w.acs * cost.pj_ac
        + w.sram_bytes * cost.pj_sram_byte
        + w.noc_byte_hops * cost.pj_noc_byte_hop
        + w.neuron_ops * cost.pj_neuron_op
        for w in work
    )
    n_snn = sum(lay["n_snn"] for lay in net["layers"])
    n_all = sum(lay["n_snn"] + lay["n_rnn"] for lay in net["layers"])
    return SimReport(
        samples=n,
        logits=logits,
        predictions=logits.argmax(axis=1),
        cores=work,
        group_cycles_per_step=group_cycles,
        latency_us=latency_us,
        energy_uj=energy_pj / max(n, 1) * 1e-6,
        snn_ratio=n_snn / max(n_all, 1),
    )


def compare(report: SimReport, float_logits: np.ndarray, labels: np.ndarray | None = None) -> SimReport:
    """Fill in top-1 agreement with the float model and, with labels, both accuracies."""
    fpred = np.asarray(float_logits).argmax(axis=1)
    if fpred.shape != report.predictions.shape:
        raise TianjicxError(f"float logits cover {fpred.shape[0]} samples, the simulation {report.samples}")
    report.agreement = float((fpred == report.predictions).mean()) if report.samples else None
    if labels is not None and report.samples:
        labels = np.asarray(labels)
        report.accuracy_int = float((report.predictions == labels).mean())
        report.accuracy_float = float((fpred == labels).mean())
    return report


def plot_vs_snn_ratio(reports: list[SimReport], path: Path, title: str = "") -> Path:
    """Latency and energy per sample against SNN ratio (like paper Fig. 5c), saved as PNG."""
    plt = pyplot()

    rs = sorted(reports, key=lambda r: r.snn_ratio)
    x = [r.snn_ratio for r in rs]
    fig, ax1 = plt.subplots(figsize=(5, 3.5))
    ax1.plot(x, [r.latency_us for r in rs], "o-", color="tab:blue", label="latency")
    ax1.set_xlabel("SNN ratio")
    ax1.set_ylabel("latency per sample (us)", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(x, [r.energy_uj for r in rs], "s--", color="tab:red", label="energy")
    ax2.set_ylabel("energy per sample (uJ)", color="tab:red")
    ax1.set_title(title or "TianjicX-style estimate (cycle/energy model, not measured)")
    return save_figure(fig, path)
