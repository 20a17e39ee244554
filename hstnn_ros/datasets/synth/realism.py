"""Side-by-side event statistics of synthetic routes and real recordings, so that realism can be judged.

Real bags are read with ``hstnn_ros.bags`` and decoded with ``hstnn_ros.perception.events`` (every encoding and
message type they support); synthetic statistics come from a route set's ``index.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from hstnn_ros import bags
from hstnn_ros.datasets.synth.errors import SynthError
from hstnn_ros.datasets.synth.stats import EventStats, StatsAccumulator
from hstnn_ros.perception import events as pev


def synthetic_env_stats(index_path: Path | str) -> list[EventStats]:
    """Per-environment totals (all traversals) of a route set written by ``generate_route_set``."""
    p = Path(index_path)
    try:
        index = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SynthError(f"{p}: cannot read the route index ({e}); generate it with hstnn-synth-route") from e
    w, h = index["config"]["camera"]["dvs_width"], index["config"]["camera"]["dvs_height"]
    out = []
    for env in index["envs"]:
        rows = [b["event_stats"] for b in index["bags"] if b["env"] == env]
        ev = sum(r["events"] for r in rows)
        on = sum(r["on_events"] for r in rows)
        out.append(EventStats(f"synthetic {env} ({len(rows)} traversals)", w, h,
                              sum(r["duration_s"] for r in rows), ev, on))
    return out


def real_bag_stats(bag_dir: Path | str, topic: str | None = None) -> EventStats:
    """Event statistics of the event topic of a real rosbag2 (the first event topic unless ``topic`` is given)."""
    bag_dir = Path(bag_dir)
    acc: StatsAccumulator | None = None
    with bags.BagReader(bag_dir) as reader:
        event_topics = [t for t, info in reader.topics.items() if info.msgtype in pev.EVENT_MSGTYPES]
        if not event_topics:
            raise SynthError(f"{bag_dir}: no event topic; it has {sorted(reader.topics)}")
        topic = topic or event_topics[0]
        decoder = pev.StreamDecoder()
        for msg in reader.messages(topics=[topic]):
            batch = decoder.decode(msg.msgtype, msg.data)
            if acc is None:
                acc = StatsAccumulator(f"real {bag_dir.name}", batch.width, batch.height)
            acc.add(batch.t_ns, batch.p)
    if acc is None:
        raise SynthError(f"{bag_dir}: topic {topic} has no messages")
    return acc.result()
