"""Resumable stages of a long job: each stage runs once per set of inputs, its outputs land atomically, and a rerun
after an interruption skips every stage whose inputs are unchanged.

The state lives in ``<work>/stages.json``: per stage the hash of its inputs (``key``), its wall time and a small
JSON result. A stage whose key changed (other data, another recipe) runs again from scratch; so does every stage
after it whose key depends on its output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STATE = "stages.json"


def stage_key(**inputs: Any) -> str:
    """A stable hash of a stage's inputs (JSON with sorted keys; paths and other objects by ``str``)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def replace_dir(tmp: Path, final: Path) -> Path:
    """Move a finished ``tmp`` directory to ``final`` (replacing an older one): an interrupted stage never leaves a
    half-written output under its final name."""
    if final.exists():
        shutil.rmtree(final)
    tmp.replace(final)
    return final


def fresh_dir(path: Path) -> Path:
    """An empty directory at ``path`` (a leftover of an interrupted run is removed)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


class StageLog:
    """The stages of one job under ``work``: ``run(name, key, fn)`` runs ``fn`` unless stage ``name`` finished
    with the same ``key`` before; ``seconds`` holds the wall time of every stage (measured when it ran)."""

    def __init__(self, work: Path | str) -> None:
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.path = self.work / STATE
        self.state: dict[str, dict[str, Any]] = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.ran: list[str] = []
        self.skipped: list[str] = []

    def done(self, name: str, key: str) -> bool:
        """True when stage ``name`` finished with inputs ``key``."""
        st = self.state.get(name)
        return bool(st and st.get("done") and st.get("key") == key)

    def run(self, name: str, key: str, fn: Callable[[], Any]) -> Any:
        """The result of stage ``name``: its recorded result when it finished with ``key``, else ``fn()`` (run now,
        timed and recorded once it returns; an exception leaves the stage to run again)."""
        if self.done(name, key):
            log.info("stage %s: done before (%.0f s), skipped", name, self.state[name].get("seconds", 0.0))
            self.skipped.append(name)
            return self.state[name].get("result")
        log.info("stage %s: running", name)
        self.state[name] = {"key": key, "done": False}
        self._save()
        t0 = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - t0
        self.state[name] = {"key": key, "done": True, "seconds": seconds, "result": result,
                            "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        self._save()
        self.ran.append(name)
        log.info("stage %s: done in %.0f s", name, seconds)
        return result

    @property
    def seconds(self) -> dict[str, float]:
        """Wall time of every finished stage (from the run that did it)."""
        return {k: float(v.get("seconds", 0.0)) for k, v in self.state.items() if v.get("done")}

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1, default=str))
        tmp.replace(self.path)
