"""ROS 2 test plumbing shared by the launch and live-graph tests (imported by conftest.py and the ROS test modules).

- ``ros_unavailable()``: why the ROS tests cannot run here (None when they can): the ROS 2 Python stack, the
  launch_testing plugin and this package's colcon install (ament index, share/, lib/) up to date with the source.
- ``session_tmp()``: the per-session scratch folder (removed at the end of the session by conftest.py).
- ``route_bag()``: one synthetic route traversal (``hstnn-synth-route --preset demo --envs env1 --traversals 1``),
  generated once per session.
- ``RobotGraph``: ``ros2 launch hstnn_ros place_recognition.launch.py`` in a subprocess plus a listener node in this
  process collecting ``/place``, ``/ops`` and ``/diagnostics``; ``play()`` runs the package's bag player
  (``ros2 run hstnn_ros bag_player``) into it and returns what the player says it published.

Nothing here imports rclpy at module level, so the module imports where ROS 2 is absent.
"""

from __future__ import annotations

import contextlib
import filecmp
import functools
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CI = os.environ.get("CI", "").lower() == "true"
#: the status the node publishes on /diagnostics
ENGINE_STATUS = "place_recognition_node: engine"
#: topics of ``hstnn-synth-route`` bags
EVENTS, IMAGE = "/dvs/events", "/camera/color/image_raw"
ROS_MODULES = ("rclpy", "launch", "launch_ros", "launch_testing", "ament_index_python", "rosidl_runtime_py",
               "vision_msgs.msg", "diagnostic_msgs.msg", "event_camera_msgs.msg", "sensor_msgs.msg",
               "rosgraph_msgs.msg", "rcl_interfaces.msg")


def session_tmp() -> Path:
    """Scratch folder of this pytest session (``HSTNN_TEST_TMP``, set and removed by conftest.py)."""
    root = os.environ.get("HSTNN_TEST_TMP")
    if not root:
        raise RuntimeError("HSTNN_TEST_TMP is not set: run the tests through pytest (test/conftest.py sets it)")
    return Path(root)


def _stale(src: Path, installed: Path, pattern: str) -> list[str]:
    """Files matching ``pattern`` under ``src`` that are missing or different under ``installed``."""
    out = []
    for f in sorted(src.rglob(pattern)):
        if "__pycache__" in f.parts:
            continue
        twin = installed / f.relative_to(src)
        if not twin.is_file() or not filecmp.cmp(f, twin, shallow=False):
            out.append(str(f.relative_to(REPO)))
    return out


def stale_python_install() -> str | None:
    """A message if ``hstnn_ros`` imports from a copy (e.g. a colcon install on PYTHONPATH) that differs from
    this source tree, else None."""
    import importlib.util

    spec = importlib.util.find_spec("hstnn_ros")
    if spec is None or spec.origin is None:
        return None
    pkg = Path(spec.origin).resolve().parent
    if pkg == REPO / "hstnn_ros":
        return None
    stale = _stale(REPO / "hstnn_ros", pkg, "*.py") + _stale(REPO / "data_tools", pkg / "data_tools", "*.py")
    if not stale:
        return None
    return (f"hstnn_ros is imported from {pkg}, which differs from the source tree in {stale[:5]}"
            f"{' ...' if len(stale) > 5 else ''}: rebuild it (`make ros`, i.e. colcon build) or use a shell "
            "without that install sourced")


@functools.cache
def ros_unavailable() -> str | None:
    """Why the ROS tests cannot run in this process, or None if they can."""
    missing = []
    for name in ROS_MODULES:
        try:
            importlib.import_module(name)
        except Exception as exc:  # ImportError, or a shared library that does not load
            missing.append(f"{name} ({type(exc).__name__}: {exc})")
    if missing:
        return ("the ROS 2 Python stack is not importable: " + "; ".join(missing) +
                ". Run `make test` (it installs ../shared/ros2 into .venv and colcon-builds the package) or source "
                "a ROS 2 Jazzy environment")
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        prefix = Path(get_package_prefix("hstnn_ros"))
    except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH is not set at all
        return ("hstnn_ros is not in the ament index (AMENT_PREFIX_PATH): `colcon build --packages-select "
                "hstnn_ros && source install/setup.bash` (or `make ros`), since a pip install writes no ament index")
    share = prefix / "share" / "hstnn_ros"
    exes = [prefix / "lib" / "hstnn_ros" / e for e in ("place_recognition_node", "bag_player")]
    absent = [str(p) for p in exes if not p.is_file()]
    if absent:
        return f"the hstnn_ros install at {prefix} lacks {absent}: rebuild it (`make ros`)"
    stale = _stale(REPO / "launch", share / "launch", "*.py") + _stale(REPO / "config", share / "config", "*.yaml")
    if stale:
        return f"the hstnn_ros install at {prefix} is older than the source tree ({stale}): rebuild it (`make ros`)"
    return stale_python_install()


def route_bag() -> Path:
    """One env1 traversal of the demo route (real rosbag2, MCAP), generated once per session."""
    out = session_tmp() / "route"
    bag = out / "env1_t0"
    if not (bag / "metadata.yaml").is_file():
        cmd = [sys.executable, "-m", "hstnn_ros.data_tools.synth_route", "--out", str(out), "--preset", "demo",
               "--envs", "env1", "--traversals", "1", "--quiet", "--overwrite"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return bag


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    """Start ``cmd`` (a ROS process tree) in its own process group (so all of it can be stopped) with
    stdout+stderr to ``log``. (SIGINT must not be ignored in this process, or the children ignore it too and
    ``ros2 launch`` cannot stop its nodes: conftest.py sees to that.)"""
    fh = log.open("wb")
    try:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    finally:
        fh.close()


def stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> int:
    """SIGINT (what Ctrl-C sends), then SIGTERM, then SIGKILL to the process group this module started."""
    for sig, wait in ((signal.SIGINT, timeout_s), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        try:
            if sig == signal.SIGINT:
                proc.send_signal(sig)  # ros2 launch passes it on to its processes and waits for them
            else:
                os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    rc = proc.wait()
    with contextlib.suppress(ProcessLookupError):  # stragglers of the launch tree (its nodes) in our group
        os.killpg(proc.pid, signal.SIGKILL)
    return rc


def launch_cmd(launch_file: str, **args: str) -> list[str]:
    """``ros2 launch hstnn_ros <launch_file> name:=value ...``"""
    return ["ros2", "launch", "hstnn_ros", launch_file, *(f"{k}:={v}" for k, v in args.items())]


@dataclass
class Received:
    """Messages a listener collected, with their arrival (monotonic) times."""

    place: list[Any] = field(default_factory=list)
    ops: list[Any] = field(default_factory=list)
    diagnostics: list[Any] = field(default_factory=list)
    place_t: list[float] = field(default_factory=list)

    def engine_values(self) -> dict[str, str]:
        """KeyValues of the latest ``place_recognition_node: engine`` status on /diagnostics."""
        for msg in reversed(self.diagnostics):
            for status in msg.status:
                if status.name == ENGINE_STATUS:
                    return {kv.key: kv.value for kv in status.values}
        return {}

    def counter(self, key: str) -> int | None:
        """An integer KeyValue of the latest engine status (None if the node does not publish it)."""
        value = self.engine_values().get(key)
        return None if value is None else int(float(value))


class RobotGraph:
    """The robot launch file in a subprocess and a listener in this process (its own rclpy context).

    ``with RobotGraph(log_dir, environment="env1") as g: report = g.play(route_bag()); g.settle()`` then read
    ``g.received``. Launch arguments default to the synthetic route's topic names.
    """

    def __init__(self, log_dir: Path, *, namespace: str = "", **launch_args: str) -> None:
        self.log = log_dir / "robot_launch.log"
        self.launch_args = {"events": EVENTS, "image": IMAGE, **launch_args}
        if namespace:
            self.launch_args["namespace"] = namespace
        ns = f"/{namespace.strip('/')}" if namespace.strip("/") else ""
        self.place_topic, self.ops_topic = f"{ns}/place", f"{ns}/ops"
        self.log_dir = log_dir
        self.received = Received()
        self._lock = threading.Lock()
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None

    # set-up / tear-down ---------------------------------------------------------------------------------------
    def __enter__(self) -> RobotGraph:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from vision_msgs.msg import Classification

        self.ctx = rclpy.Context()
        rclpy.init(context=self.ctx)
        self.node = rclpy.create_node("hstnn_test_listener", context=self.ctx)
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Classification, self.place_topic, self._on_place, qos)
        self.node.create_subscription(DiagnosticArray, self.ops_topic, self._keep(self.received.ops), qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._keep(self.received.diagnostics), qos)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self._spin_forever, daemon=True)
        self._spin.start()
        self.proc = start(launch_cmd("place_recognition.launch.py", **self.launch_args), self.log)
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.returncode is None:
            self.returncode = stop(self.proc)
        import rclpy

        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        if self.ctx.ok():
            rclpy.shutdown(context=self.ctx)
        self._spin.join(timeout=5.0)

    def _spin_forever(self) -> None:
        from rclpy.executors import ExternalShutdownException

        with contextlib.suppress(ExternalShutdownException):
            self.executor.spin()

    def _keep(self, into: list[Any]) -> Any:
        def cb(msg: Any) -> None:
            with self._lock:
                into.append(msg)
        return cb

    def _on_place(self, msg: Any) -> None:
        with self._lock:
            self.received.place.append(msg)
            self.received.place_t.append(time.monotonic())

    def log_tail(self, lines: int = 40) -> str:
        """The end of the launch log (for failure messages)."""
        text = self.log.read_text(errors="replace") if self.log.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self, timeout_s: float = 90.0) -> None:
        """Until the node publishes its engine status and has subscribed to the event and image topics."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"the robot launch exited with {self.proc.returncode} before the node was "
                                     f"ready:\n{self.log_tail()}")
            subscribed = all(self.node.count_subscribers(t) >= 1 for t in (self.launch_args["events"],
                                                                            self.launch_args["image"]))
            if subscribed and self.received.engine_values():
                return
            time.sleep(0.1)
        raise AssertionError(f"the node was not ready after {timeout_s:.0f} s:\n{self.log_tail()}")

    # driving ----------------------------------------------------------------------------------------------------
    def play(self, bag: Path, *, rate: float = 1.0, extra: tuple[str, ...] = (), tag: str = "play") -> Any:
        """Play ``bag`` with ``ros2 run hstnn_ros bag_player`` (waits for the node's subscriptions, reliable QoS);
        returns its ``PlaybackReport``."""
        from hstnn_ros.bags import PlaybackReport

        report = self.log_dir / f"{tag}.json"
        cmd = ["ros2", "run", "hstnn_ros", "bag_player", str(bag), "--rate", str(rate), "--wait-for",
               self.launch_args["events"], self.launch_args["image"], "--report", str(report), *extra]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                              stdin=subprocess.DEVNULL, start_new_session=True)
        (self.log_dir / f"{tag}.log").write_text(done.stdout + done.stderr)
        if done.returncode != 0 or not report.is_file():
            raise AssertionError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                                 f"launch log:\n{self.log_tail()}")
        return PlaybackReport.from_json(report.read_text())

    def settle(self, quiet_s: float = 2.0, timeout_s: float = 30.0) -> None:
        """Wait until no place message arrived for ``quiet_s`` (the node finished what it had), at most
        ``timeout_s``, and one more /diagnostics period has passed so the counters are current."""
        deadline = time.monotonic() + timeout_s
        n_diag = len(self.received.diagnostics)
        while time.monotonic() < deadline:
            with self._lock:
                last = self.received.place_t[-1] if self.received.place_t else 0.0
            if time.monotonic() - last >= quiet_s and len(self.received.diagnostics) > n_diag:
                return
            time.sleep(0.1)

    def snapshot(self) -> Received:
        """A copy of what was received so far."""
        with self._lock:
            r = self.received
            return Received(list(r.place), list(r.ops), list(r.diagnostics), list(r.place_t))


def place_decision(msg: Any) -> tuple[bool, str, list[float]]:
    """A ``place`` message read as documented (``runtime.messages``): (known, best place id, the place hypotheses'
    scores). An unknown place leads with ``class_id: unknown`` (score = 1 - the best probability), then the best
    guesses; checks that layout and returns the best guess as the place."""
    from hstnn_ros.runtime.messages import UNKNOWN_CLASS_ID

    hyps = [(h.class_id, h.score) for h in msg.results]
    known = not hyps or hyps[0][0] != UNKNOWN_CLASS_ID
    if not known:
        assert len(hyps) >= 2, f"an unknown place must still carry the best guesses, got {hyps}"
        assert abs(hyps[0][1] - (1.0 - hyps[1][1])) < 1e-6, f"unknown's score is 1 - the best probability: {hyps}"
        hyps = hyps[1:]
    assert all(c != UNKNOWN_CLASS_ID for c, _ in hyps), hyps
    return known, hyps[0][0] if hyps else "", [sc for _, sc in hyps]

