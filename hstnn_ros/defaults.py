"""Defaults shared across the package: one place per constant (window geometry, sizes, paths).

Values follow the HSTNN paper (Methods, robot place recognition) and DESIGN.md sections 3 and 7.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: Event frames per HSTNN window (T, the number of time steps).
EVENT_FRAMES_PER_WINDOW = 9
#: RGB frames per window.
RGB_FRAMES_PER_WINDOW = 3
#: Event frames (time bins) per RGB frame: 9 event frames span 3 RGB frames.
EVENT_BINS_PER_RGB = EVENT_FRAMES_PER_WINDOW // RGB_FRAMES_PER_WINDOW
#: Time steps (0-based) at which an RGB feature enters the window; zeros elsewhere (reference code: 2, 5, 8
#: counted from 1, i.e. the last event bin of each RGB frame).
RGB_STEPS = (2, 5, 8)
#: Event-frame (bin) length: 3 bins of 7 ms per APS frame, as NeuroGPR's ``dvs_7ms_3seq`` tensors.
EVENT_BIN_NS = 7_000_000
#: Decision period of events-only models and recordings (no colour frames): the virtual frame clock, 30 Hz like the
#: RGB cameras the models are trained with.
EVENTS_ONLY_FRAME_PERIOD_NS = 33_333_333
#: Seconds of input the ``auto`` preset measures the scene over, and the windows its references are measured on
#: (features such as the brightness variation depend on the window, so both sides use one length).
SCENE_SECONDS = 2.0
#: Depth (metres) mapped to 1.0 in the RGB-D front-end input.
DEPTH_MAX_M = 10.0
#: Colour and depth frames pair when their stamps differ by at most this (aligned depth usually shares the stamp).
RGBD_SLOP_NS = 20_000_000
#: A colour frame waits this long (in data time) for its depth, then goes on without it (counted).
RGBD_MAX_WAIT_NS = 1_000_000_000

#: Front-end input resolution (width, height) used in the paper.
FRONTEND_INPUT_WH = (240, 180)
#: DAVIS346 sensor size (width, height).
DAVIS346_WH = (346, 260)
#: Feature size of each front-end (SCNN on events, CNN on RGB(-D)).
FRONTEND_FEATURES = 512

#: Hidden sizes of the paper's place-recognition HSTNN [features-500-500-places].
HSTNN_HIDDEN = (500, 500)
#: Places per route in the paper.
NUM_PLACES = 100
#: recall@1 counts a prediction within this many places of the truth (places are consecutive route segments, so a
#: neighbour is a near miss). One value for training reports, replay and the demo.
RECALL_TOLERANCE = 1

#: Root of the package sources; in a source checkout or editable install the repo root is its parent.
PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent


def share_dir() -> Path:
    """Directory holding ``models/``, ``config/`` and ``launch/`` in every kind of install:

    - a source checkout or editable install (``pip install -e .``): the repository (``package.xml`` beside it);
    - a wheel / ``pip install .`` (also ``--user``) or a colcon/ament install: ``<prefix>/share/hstnn_ros``, where
      ``<prefix>`` is three levels above the package (``<prefix>/lib/python3.X/site-packages/hstnn_ros``), which is
      where setup.py's ``data_files`` land;
    - else the ament index (a ROS workspace whose Python lives elsewhere), else ``sys.prefix``.
    """
    if (REPO_ROOT / "package.xml").is_file():
        return REPO_ROOT
    beside = PACKAGE_ROOT.parents[3] / "share" / "hstnn_ros" if len(PACKAGE_ROOT.parents) > 3 else None
    if beside is not None and (beside / "models").is_dir():
        return beside
    try:  # a ROS workspace: data files live in share/hstnn_ros of the package's prefix
        from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415

        return Path(get_package_share_directory("hstnn_ros"))
    except Exception:
        return Path(sys.prefix) / "share" / "hstnn_ros"


def shipped_models_dir() -> Path:
    """Directory of the shipped model bundles."""
    return share_dir() / "models"
