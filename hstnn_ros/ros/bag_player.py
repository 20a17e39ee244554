"""``bag_player``: play rosbag2 recordings onto a live ROS 2 graph with rclpy, where ``ros2 bag`` is not installed.

    ros2 run hstnn_ros bag_player BAG [BAG ...] [--rate R] [--loop | --loops N] [--clock [HZ]] [--topics T ...]
        [--qos reliable|sensor] [--start-delay S] [--wait-for TOPIC ...] [--report FILE]
    (also installed as the console script ``hstnn-bag-player``; ``--ros-args -r /old:=/new`` remaps topics)

The recorded CDR bytes are published unchanged on the recorded message types, paced by the recorded receive time
(``hstnn_ros.bags.playback`` decides what goes out when; this module is only the rclpy shell). A topic whose type
this ROS install does not have (e.g. the legacy ``event_array_msgs/msg/EventArray``) is named in a warning and left
out; the rest plays. At the end (also on Ctrl-C) the player prints how many messages it published per topic, and
with ``--report FILE`` writes the same as JSON.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

import rclpy
from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args
from rosgraph_msgs.msg import Clock

from hstnn_ros.bags import Playback, PlaybackReport, Scheduled
from hstnn_ros.errors import HstnnError

#: After the awaited subscribers are matched, time for their side of the match to complete (s).
SETTLE_S = 0.5
QOS = {
    "reliable": QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.VOLATILE),
    "sensor": qos_profile_sensor_data,
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bag_player", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bags", nargs="+", type=Path, metavar="BAG", help="rosbag2 directories or .db3/.mcap files "
                   "(several are merged in receive-time order)")
    p.add_argument("--rate", type=float, default=1.0, help="speed factor (2 = twice as fast)")
    loop = p.add_mutually_exclusive_group()
    loop.add_argument("--loop", action="store_true", help="play forever (recorded time jumps back each loop)")
    loop.add_argument("--loops", type=int, default=1, help="play the recording N times (0: forever, as --loop)")
    p.add_argument("--renumber-seq", action="store_true",
                   help="EventPacket seq counts on across loops, as a running driver's would (so a receiver can count "
                        "every packet lost, loop boundaries included)")
    p.add_argument("--seq-start", type=int, default=None, metavar="N",
                   help="renumber EventPacket seq from N (implies --renumber-seq), e.g. to go on where an earlier "
                        "playback stopped")
    p.add_argument("--clock", type=float, nargs="?", const=40.0, default=None, metavar="HZ",
                   help="publish /clock (rosgraph_msgs/Clock) in recorded time at HZ (default 40)")
    p.add_argument("--topics", nargs="+", default=None, metavar="TOPIC", help="play only these topics")
    p.add_argument("--qos", choices=sorted(QOS), default="reliable",
                   help="publisher QoS: reliable (keep last 100) or sensor (best effort, keep last 5)")
    p.add_argument("--start-delay", type=float, default=0.0, metavar="S", help="seconds to wait before playing")
    p.add_argument("--wait-for", nargs="+", default=(), metavar="TOPIC",
                   help="before playing, wait until each of these (played) topics has a matched subscriber")
    p.add_argument("--wait-timeout", type=float, default=60.0, metavar="S",
                   help="give up waiting for subscribers after S seconds (exit 1)")
    p.add_argument("--report", type=Path, default=None, metavar="FILE", help="write the per-topic counts as JSON")
    return p


def _message_class(msgtype: str) -> Any | None:
    """The generated Python class of ``pkg/msg/Type``, or None if this ROS install does not have it."""
    from rosidl_runtime_py.utilities import get_message  # noqa: PLC0415

    try:
        return get_message(msgtype)
    except (AttributeError, ModuleNotFoundError, ValueError):
        return None


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class _Player:
    """Publishers for the played topics (+ /clock) on one node, and the paced publishing loop."""

    def __init__(self, node: Any, playback: Playback, args: argparse.Namespace) -> None:
        self.node = node
        self.playback = playback
        self.log = node.get_logger()
        self.pubs = {t: node.create_publisher(_message_class(m), t, QOS[args.qos])
                     for t, m in playback.topics.items()}
        self.clock_pub = node.create_publisher(Clock, "/clock", 10) if args.clock else None
        self.clock_period = 1.0 / args.clock if args.clock else float("inf")
        self.report = PlaybackReport(published=dict.fromkeys(self.pubs, 0), skipped=dict(playback.skipped))
        self.started: float | None = None

    def finish(self) -> PlaybackReport:
        """The report, with the wall time since playback started."""
        if self.started is not None:
            self.report.wall_s = time.monotonic() - self.started
        return self.report

    def drain(self, timeout_s: float = 1.0) -> None:
        """Before exiting, let reliable subscribers acknowledge the last messages (else the middleware may drop
        what is still in flight when the node goes); best-effort publishers return at once."""
        for pub in (*self.pubs.values(), *([self.clock_pub] if self.clock_pub is not None else [])):
            pub.wait_for_all_acked(Duration(seconds=timeout_s))

    def wait_for(self, topics: list[str], timeout_s: float) -> None:
        """Block until each of ``topics`` that is played has a matched subscription (``HstnnError`` after
        ``timeout_s``). Topics not in the bags are named and not waited for (an events-only bag has no image topic);
        if none of them is played, that is an error."""
        unplayed = sorted(set(topics) - set(self.pubs))
        if unplayed:
            self.log.warning(f"--wait-for {unplayed}: not among the played topics {sorted(self.pubs)}; not waited for")
        topics = [t for t in topics if t in self.pubs]
        if unplayed and not topics:
            raise HstnnError(f"bag player: --wait-for {unplayed}: none of them is played (topics {sorted(self.pubs)})")
        deadline = time.monotonic() + timeout_s
        while True:
            missing = [t for t in topics if self.pubs[t].get_subscription_count() == 0]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise HstnnError(f"bag player: no subscriber on {missing} after {timeout_s:.0f} s "
                                 "(is the node running, on this ROS_DOMAIN_ID, with these topic names?)")
            time.sleep(0.05)
        if topics:
            self.log.info(f"subscribers matched on {topics}")
            time.sleep(SETTLE_S)

    def _clock(self, t_ns: int) -> None:
        if self.clock_pub is not None:
            msg = Clock()
            msg.clock.sec, msg.clock.nanosec = divmod(int(t_ns), 1_000_000_000)
            self.clock_pub.publish(msg)
            self.report.clock_msgs += 1

    def run(self, start_delay_s: float) -> None:
        """Publish the schedule; ``report`` counts what went out even if interrupted."""
        rate = self.playback.rate
        schedule = self.playback.schedule()
        first = next(schedule, None)
        if first is None:
            self.log.warning("nothing to play: the played topics have no messages")
            return
        # during the start delay /clock already says the recording's start, so sim-time nodes have a time
        until = time.monotonic() + start_delay_s
        while time.monotonic() < until:
            self._clock(first.t_ns)
            time.sleep(min(self.clock_period, max(0.0, until - time.monotonic())))
        start = self.started = time.monotonic()
        next_clock = start if self.clock_pub is not None else float("inf")
        prev: Scheduled | None = None
        item: Scheduled | None = first
        while item is not None:
            due = start + item.wall_s
            while True:
                now = time.monotonic()
                if now >= next_clock:
                    # until a loop's first message goes out, the clock goes on from the previous loop's last one
                    self._clock(prev.clock_ns_at(now - start, rate) if prev is not None else item.t_ns)
                    next_clock += self.clock_period * (1 + int((now - next_clock) // self.clock_period))
                if now >= due:
                    break
                time.sleep(min(due, next_clock) - now)
            self.report.max_lag_s = max(self.report.max_lag_s, now - due)
            self.pubs[item.message.topic].publish(item.message.data)
            self.report.count(item.message.topic)
            self.report.loops = item.loop
            prev, item = item, next(schedule, None)
            if item is None or item.loop != prev.loop:
                self.report.loops = prev.loop + 1


def main(argv: list[str] | None = None) -> int:
    """Console entry point (``bag_player`` / ``hstnn-bag-player``)."""
    argv = list(sys.argv if argv is None else ["bag_player", *argv])
    args = _parser().parse_args(remove_ros_args(argv)[1:])
    try:
        playback = Playback(args.bags, topics=args.topics, rate=args.rate, loops=0 if args.loop else args.loops,
                            renumber_seq=args.renumber_seq, seq_start=args.seq_start)
    except HstnnError as exc:
        print(exc, file=sys.stderr)
        return 1
    with playback:
        for topic, msgtype in playback.exclude(lambda m: _message_class(m) is not None,
                                               "message type not in this ROS install; not played").items():
            print(f"bag_player: warning: topic {topic} has type {msgtype}, which this ROS install does not have "
                  "(build and source its message package); the other topics play", file=sys.stderr)
        if not playback.topics:
            print(f"bag_player: nothing to play in {[str(b) for b in args.bags]}: {playback.skipped}", file=sys.stderr)
            return 1
        # rclpy's own signal handlers would invalidate the context under a publish in progress; instead SIGINT
        # (what launch sends first) and SIGTERM raise KeyboardInterrupt, so the report is printed either way
        rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
        signal.signal(signal.SIGINT, _raise_interrupt)
        signal.signal(signal.SIGTERM, _raise_interrupt)
        node = rclpy.create_node("bag_player")
        player = _Player(node, playback, args)
        rc = 0
        try:
            player.wait_for(args.wait_for, args.wait_timeout)
            player.run(args.start_delay)
        except KeyboardInterrupt:
            print("bag_player: interrupted", file=sys.stderr)
        except HstnnError as exc:
            print(exc, file=sys.stderr)
            rc = 1
        finally:
            report = player.finish()  # wall time of the playback itself, before the drain
            if rclpy.ok():
                player.drain()
            print(report.table(), flush=True)
            if args.report is not None:
                args.report.write_text(report.to_json())
            node.destroy_node()
            if rclpy.ok():
                rclpy.shutdown()
    return rc


if __name__ == "__main__":
    sys.exit(main())
