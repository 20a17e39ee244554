"""Sweeps that outgrow one machine: the units of a ``Sweep`` run as Ray tasks (Ray is an optional extra:
``pip install hstnn_ros[ray]``).

The driver plans the units exactly as the sequential sweep does, submits each seed's Adaptation unit, then the
HSTNN units of that seed as tasks that wait for it (directly-hybrid baselines need nothing and start at once).
Each task rebuilds the ``Sweep`` from the training config and the feature-set *path* and runs one unit, which writes
its bundle and ``result.json`` into ``out_dir`` and renames it into place as the sequential sweep does: so the output
directory (and the feature set) must be on a filesystem every Ray node sees (one machine, or NFS on a cluster), a
sweep resumes after an interruption by skipping finished units, and the report is built from the same files.
Results equal the sequential sweep's when both run torch with the same number of threads (each unit is seeded).

Local by default (``address=None`` starts Ray on this machine with ``workers`` CPUs); ``address="auto"`` or
``"ray://head:10001"`` joins a running cluster.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hstnn_ros.datasets.features import load_feature_set
from hstnn_ros.learning.config import TrainConfig, config_from_dict
from hstnn_ros.learning.enums import UnitKind
from hstnn_ros.learning.errors import LearningError
from hstnn_ros.learning.sweep import Sweep, Unit, plan_units

log = logging.getLogger(__name__)


def _import_ray() -> Any:
    try:
        import ray  # noqa: PLC0415 - optional extra
    except ImportError as exc:
        raise LearningError("Ray is not installed: `pip install hstnn_ros[ray]` (or `pip install ray`), or run the "
                            "sweep without --ray") from exc
    return ray


def _run_unit(job: dict[str, Any], _after: Any = None) -> tuple[str, dict[str, Any] | None, str]:
    """One unit in a Ray worker: (unit name, result or None, refusal reason). ``job``: config dict, feature-set
    path, output dir, unit kind/seed/ratio, torch threads; ``_after``: a Ray reference this unit waits for."""
    import torch  # noqa: PLC0415 - runs in the worker process

    torch.set_num_threads(job["threads"])
    sweep = Sweep(config_from_dict(job["cfg"]), load_feature_set(job["features"]), job["out"], name=job["features"])
    seed = job["seed"]
    unit = Unit(UnitKind(job["kind"]), seed, job["snn_ratio"])
    if sweep.is_done(unit):
        return unit.name, None, ""
    if unit.kind is UnitKind.HSTNN and not sweep.is_done(Unit(UnitKind.ADAPTATION, seed)):
        return unit.name, None, "its adaptation unit failed"
    try:
        return unit.name, sweep.run_unit(unit), ""
    except LearningError as exc:  # a refused unit must not lose the others
        return unit.name, None, str(exc)


def run_sweep_ray(cfg: TrainConfig, features: Path | str, out_dir: Path | str, *, address: str | None = None,
                  workers: int = 2, threads_per_unit: int = 1, plots: bool = True) -> dict[str, Any]:
    """Run ``cfg``'s sweep on the feature set file ``features`` into ``out_dir`` with Ray (see the module
    docstring); returns the same report as ``run_sweep``."""
    ray = _import_ray()
    features = str(Path(features).resolve())
    out = Path(out_dir).resolve()
    sweep = Sweep(cfg, load_feature_set(features), out, name=features)
    out.mkdir(parents=True, exist_ok=True)
    sweep.units_dir.mkdir(exist_ok=True)
    sweep.check_resume()
    units = plan_units(cfg)
    todo = [u for u in units if not sweep.is_done(u)]
    if len(todo) < len(units):
        log.info("resuming: %d of %d units already done", len(units) - len(todo), len(units))
    started = not ray.is_initialized()
    if started:
        kw: dict[str, Any] = {"address": address} if address else {"num_cpus": workers}
        ray.init(include_dashboard=False, log_to_driver=False, **kw)
    try:
        task = ray.remote(num_cpus=threads_per_unit)(_run_unit)
        cfg_d = cfg.to_dict()
        adapt: dict[int, Any] = {}
        refs = []
        t0 = time.perf_counter()
        for u in todo:
            job = {"cfg": cfg_d, "features": features, "out": str(out), "kind": u.kind.value, "seed": u.seed,
                   "snn_ratio": u.ratio, "threads": threads_per_unit}
            if u.kind is UnitKind.ADAPTATION:
                adapt[u.seed] = task.remote(job)
                refs.append(adapt[u.seed])
            elif u.kind is UnitKind.HSTNN:
                refs.append(task.remote(job, adapt.get(u.seed)))  # a Ray reference argument: runs after it
            else:
                refs.append(task.remote(job))
        failures: dict[str, str] = {}
        with tqdm(total=len(refs), desc=f"sweep (ray, {workers} workers)", unit="unit") as bar:
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                name, _, why = ray.get(done[0])
                if why:
                    failures[name] = why
                bar.update(1)
        log.info("ray sweep: %d units in %.1f s", len(refs), time.perf_counter() - t0)
    finally:
        if started:
            ray.shutdown()
    return sweep.finish(units, failures, plots=plots)
