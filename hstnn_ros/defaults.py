"""Defaults shared across the package: one place per constant (window geometry, sizes, paths).

Values follow the HSTNN paper (Methods, robot place recognition) and DESIGN.md sections 3 and 7.
"""

from __future__ import annotations

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

#: Root of the package sources; in a source checkout or editable install the repo root is its parent.
PACKAGE_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_ROOT.parent


def share_dir() -> Path:
    """Directory holding ``models/``, ``config/`` and ``launch/``: the ament share dir when installed by colcon,
    else the source checkout (pip editable install)."""
    if (REPO_ROOT / "package.xml").is_file():
        return REPO_ROOT
    try:  # installed by colcon: data files live in share/hstnn_ros
        from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415

        return Path(get_package_share_directory("hstnn_ros"))
    except Exception:  # any failure means "not a ROS install": fall back to the sources
        return REPO_ROOT


def shipped_models_dir() -> Path:
    """Directory of the shipped model bundles."""
    return share_dir() / "models"
