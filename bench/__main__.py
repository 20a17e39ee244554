"""Run every benchmark in this folder (or those named) and write the measured results to bench/results/.

Usage: ``python -m bench [area ...]``; ``HSTNN_BENCH_QUICK=1`` selects each benchmark's quick mode;
``HSTNN_BENCH_RESULTS=DIR`` writes the results there instead of ``bench/results/``.
Results are measured in this run on this machine; nothing here is asserted.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    names = argv if argv is not None else sys.argv[1:]
    found = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    chosen = names or found
    unknown = sorted(set(chosen) - set(found))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {found}", file=sys.stderr)
        return 2
    results: dict[str, object] = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
    }
    failed = []
    for name in chosen:
        print(f"\n=== bench_{name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"bench.bench_{name}")
            results[name] = mod.main()
        except Exception:  # report and go on: one broken benchmark must not hide the others
            traceback.print_exc()
            failed.append(name)
            results[name] = {"error": traceback.format_exc(limit=3)}
        print(f"--- bench_{name}: {time.perf_counter() - t0:.1f} s", flush=True)
    out = Path(os.environ.get("HSTNN_BENCH_RESULTS") or HERE / "results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults written to {out / 'latest.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
