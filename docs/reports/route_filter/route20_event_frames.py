"""Event frames of route20 t4 (reference) and held-out t5 (query) for the untrained sequence baseline: per decision
frame the 9 x 7 ms event-count bins (both polarities) on a 45 x 60 grid, saved as npz (counts summed over bins)."""
import time
from pathlib import Path

import numpy as np

from hstnn_ros.datasets.recordings import open_recording, window_for
from hstnn_ros.datasets.windows import WindowSpec, load_traversal

t0 = time.time()
for e in ("env1", "env2", "env3"):
    for p in (Path(f"/work/fitdata/route20/{e}_t4"), Path(f"/work/fitdata/route20_heldout/{e}_t5")):
        w = window_for([p], WindowSpec(event_frames=9, rgb_frames=3, bin_ns=7_000_000, input_hw=(45, 60)))
        tr = load_traversal(open_recording(p, window=w, label="route", progress=False), env=e, window=w)
        np.savez(f"/tmp/rf/seq/{p.name}.npz", frames=tr.events.astype(np.float32).sum(axis=1), labels=tr.labels,
                 stamps=tr.stamps_ns)
        print(p.name, len(tr), f"{time.time() - t0:.0f} s", flush=True)
