"""Capture the HSTNN input windows of the online engine (one per decision) for the unknown-place study: each
environment bundle of /tmp/rf/out replayed on its own held-out traversal t5 and on the other route's traversal of
the same environment. Writes /tmp/unk/windows_{env}_{own|other}.npz (windows [N, T, F] float32, true labels)."""
import sys
from pathlib import Path

import numpy as np
import torch

from hstnn_ros.runtime.bag_source import BagTopics, open_bag
from hstnn_ros.runtime.replay import replay_engine_config, replay_ground_truth, run_replay
from hstnn_ros.runtime.session import open_session

M = Path("/tmp/rf/out")
OUT = Path("/tmp/unk")
BAGS = {"own": "/work/fitdata/route20_heldout/{e}_t5", "other": "/tmp/rf/other_route/{e}_t0"}


class Recorder:
    """The engine's classifier with every window it is given kept (the engine calls it once per decision)."""

    def __init__(self, clf):
        self.clf, self.num_classes, self.input_size = clf, clf.num_classes, clf.input_size
        self.windows: list[np.ndarray] = []

    def __call__(self, x: torch.Tensor):
        self.windows.append(x.detach().cpu().numpy().copy())
        return self.clf(x)


for e in sys.argv[1:] or ("env1", "env2", "env3"):
    for src, pattern in BAGS.items():
        bag = Path(pattern.format(e=e))
        session = open_session(M / e, config=replay_engine_config())
        rec = Recorder(session.engine.pipeline.classifier)
        session.engine.pipeline.classifier = rec
        source = open_bag(bag, BagTopics())
        outcome = run_replay(source.items(), session.engine, replay_ground_truth(bag), progress=False)
        win = np.concatenate(rec.windows)
        labels = np.array([r.true_place for r in outcome.records])
        logits = np.stack([r.logits for r in outcome.results])
        assert len(win) == len(labels), (len(win), len(labels))
        np.savez(OUT / f"windows_{e}_{src}.npz", windows=win, labels=labels, logits=logits)
        print(e, src, win.shape, "top-1", float(np.mean(logits.argmax(1) == labels)), flush=True)
