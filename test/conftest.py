"""Shared pytest set-up: the real recordings in ../shared/data, and the plumbing the ROS 2 tests need.

ROS 2 (see test/ros_support.py): every pytest process gets its own ``ROS_DOMAIN_ID`` (``HSTNN_TEST_ROS_DOMAIN_ID``
overrides it) with discovery kept on this host; tests marked ``ros`` skip, naming the reason, where the ROS stack or
this package's colcon install is missing, and FAIL instead under ``CI=true`` (CI must run them for real).

launch_testing's pytest plugins load in every pytest run of a ROS-enabled venv, and ``import launch`` makes loggers
created afterwards ``LaunchLogger``s that do not propagate (so ``caplog`` sees nothing). Before every test the
default logger class is restored and this package's loggers propagate again.

Each session has one scratch folder (``HSTNN_TEST_TMP``) for generated bags and launch logs, removed at its end.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from ros_support import CI, ros_unavailable, stale_python_install

# No per-example time limit by default: hypothesis' 200 ms deadline measures the machine's load, not the code
# (a shared 2-core CI machine took 476 ms for an example that takes 5 ms when quiet). Tests that guard against a
# hang set their own, generous deadline.
settings.register_profile("hstnn", deadline=None)
settings.load_profile("hstnn")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# A background job of a non-interactive shell starts with SIGINT ignored, which its children inherit: ros2 launch and
# its nodes would then ignore the SIGINT that stops them. Handled signals are reset to the default at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
os.environ["ROS_DOMAIN_ID"] = os.environ.get("HSTNN_TEST_ROS_DOMAIN_ID", str(60 + os.getpid() % 40))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def _library_loggers_propagate() -> None:
    """Undo what ``import launch`` did to loggers that are not launch's own (see the module docstring)."""
    if logging.getLoggerClass() is not logging.Logger:
        logging.setLoggerClass(logging.Logger)
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and not logger.propagate and name.split(".")[0] == "hstnn_ros":
            logger.propagate = True


_library_loggers_propagate()


def pytest_configure(config: pytest.Config) -> None:
    stale = stale_python_install()
    if stale:
        pytest.exit(stale, returncode=4)


def pytest_sessionstart(session: pytest.Session) -> None:
    os.environ["HSTNN_TEST_TMP"] = tempfile.mkdtemp(prefix="hstnn_pytest_")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    root = os.environ.pop("HSTNN_TEST_TMP", None)
    if root:
        shutil.rmtree(root, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> str:
    why = ros_unavailable()
    state = "ready" if why is None else f"unavailable ({why})"
    return f"ROS 2 tests: {state}; ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}"


def pytest_runtest_setup(item: pytest.Item) -> None:
    _library_loggers_propagate()
    if item.get_closest_marker("ros") is None:
        return
    why = ros_unavailable()
    if why is None and not item.config.pluginmanager.hasplugin("launch_testing"):
        why = "launch_testing's pytest plugin is not loaded (was it disabled with -p no:launch_testing?)"
    if why is not None:
        if CI:
            pytest.fail(f"CI=true and the ROS 2 tests cannot run: {why}", pytrace=False)
        pytest.skip(why)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real event-camera recordings; skips the test when ../shared/data is not beside the repo."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not found: real recordings are needed for this test")
    return SHARED_DATA


@pytest.fixture
def ros_log_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A folder for one ROS test's logs and reports, inside the session scratch folder."""
    from ros_support import session_tmp

    path = session_tmp() / request.node.name.replace("/", "_")
    path.mkdir(parents=True, exist_ok=True)
    yield path
