"""Shared pytest fixtures: paths to the real recordings in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real event-camera recordings; skips the test when ../shared/data is not beside the repo."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not found: real recordings are needed for this test")
    return SHARED_DATA
