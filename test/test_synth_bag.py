"""Synthetic routes written as rosbag2: readable by the package's reader, declared topics and counts, events that
decode back to exactly what was simulated, byte-identical on re-generation, sets with an index, the CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from hstnn_ros.bags import BagReader
from hstnn_ros.datasets.errors import DatasetError
from hstnn_ros.datasets.sidecar import load_route_meta
from hstnn_ros.datasets.synth import (
    TOPIC_DEPTH,
    TOPIC_EVENTS,
    TOPIC_ODOM,
    TOPIC_RGB,
    Storage,
    SynthError,
    generate_route_set,
    preset_config,
    write_traversal,
)
from hstnn_ros.datasets.synth.simulate import EventsRecord, TraversalSimulator
from hstnn_ros.datasets.synth.world import build_world
from hstnn_ros.enums import Environment
from hstnn_ros.perception.events.enums import Encoding


def _tiny(storage: Storage = Storage.MCAP, length_m: float = 1.0):
    cfg = preset_config("demo")
    return dataclasses.replace(cfg, storage=storage, world=dataclasses.replace(cfg.world, path_length_m=length_m,
                                                                              num_places=4))


def _decode_all(reader: BagReader) -> tuple[np.ndarray, ...]:
    """All events of the event topic, decoded by the package's stream decoder (ROS time)."""
    from hstnn_ros.perception.events import StreamDecoder

    dec = StreamDecoder()
    batches = [dec.decode(m.msgtype, m.data) for m in reader.messages([TOPIC_EVENTS])]
    assert dec.counters.problems == 0, dec.counters.summary()
    return tuple(np.concatenate([getattr(b, f) for b in batches]) for f in ("t_ns", "x", "y", "p"))


@pytest.mark.parametrize(("storage", "env"), [(Storage.MCAP, Environment.ENV1), (Storage.SQLITE3, Environment.ENV3)])
def test_bag_has_declared_topics_counts_and_exact_events(tmp_path, storage, env):
    cfg = _tiny(storage)
    res = write_traversal(tmp_path / "bag", cfg, env, 2, seed=4)
    meta = load_route_meta(tmp_path / "bag")
    assert meta == res.meta and meta["env"] == env.value and meta["traversal"] == 2 and meta["num_places"] == 4
    with BagReader(tmp_path / "bag") as reader:
        assert {t: str(i) for t, i in reader.topics.items()} == {t: v["type"] for t, v in meta["topics"].items()}
        assert {t: i.count for t, i in reader.topics.items()} == meta["message_counts"]
        assert min(meta["message_counts"].values()) > 0
        rgb = reader.deserialize(next(reader.messages([TOPIC_RGB])))
        assert (rgb.encoding, rgb.width, rgb.height) == ("rgb8", cfg.camera.rgb_width, cfg.camera.rgb_height)
        depth = reader.deserialize(next(reader.messages([TOPIC_DEPTH])))
        d = np.frombuffer(bytes(depth.data), "<u2").reshape(depth.height, depth.width)
        assert depth.encoding == "16UC1" and d[d > 0].min() > 300 and d.max() <= 10_000
        xs = [reader.deserialize(m).pose.pose.position.x for m in reader.messages([TOPIC_ODOM])]
        assert xs[0] == pytest.approx(0.0) and np.all(np.diff(xs) > 0) and xs[-1] == pytest.approx(1.0, abs=0.05)
        t_ns, x, y, p = _decode_all(reader)
    # exactly the simulated events, in time order, inside the sensor
    sim = TraversalSimulator(build_world(cfg.world, 4), cfg, env, 2, seed=4)
    ev = [r.events for r in sim.records() if isinstance(r, EventsRecord)]
    assert np.array_equal(t_ns, np.concatenate([e.t_ns for e in ev]))
    assert np.array_equal(x, np.concatenate([e.x for e in ev]))
    assert np.array_equal(y, np.concatenate([e.y for e in ev]))
    assert np.array_equal(p, np.concatenate([e.p for e in ev]))
    assert t_ns.size == meta["event_stats"]["events"]
    assert np.all(np.diff(t_ns) >= 0) and x.max() < 346 and y.max() < 260


def test_same_arguments_give_byte_identical_messages(tmp_path):
    cfg = _tiny(length_m=0.6)
    for k in (0, 1):
        write_traversal(tmp_path / f"b{k}", cfg, Environment.ENV2, 0, seed=9)
    with BagReader(tmp_path / "b0") as a, BagReader(tmp_path / "b1") as b:
        ma, mb = list(a.messages()), list(b.messages())
    assert len(ma) == len(mb) > 0
    assert all(x == y for x, y in zip(ma, mb, strict=True))
    write_traversal(tmp_path / "b2", cfg, Environment.ENV2, 0, seed=10)
    with BagReader(tmp_path / "b2") as c:
        assert [m.data for m in c.messages([TOPIC_RGB])] != [m.data for m in ma if m.topic == TOPIC_RGB]


def test_route_set_writes_envs_by_traversals_with_index(tmp_path):
    cfg = _tiny(length_m=0.5)
    index = generate_route_set(tmp_path / "set", cfg, envs=[Environment.ENV1, Environment.ENV3], traversals=2,
                               seed=1, progress=False)
    data = json.loads(index.read_text())
    assert [(b["env"], b["traversal"]) for b in data["bags"]] == [("env1", 0), ("env1", 1), ("env3", 0), ("env3", 1)]
    for b in data["bags"]:
        assert (tmp_path / "set" / b["bag"] / "route.json").is_file()
    durations = [b["duration_s"] for b in data["bags"]]
    assert max(durations) > 1.05 * min(durations)  # speed varies between traversals
    with pytest.raises(SynthError, match="exists"):
        generate_route_set(tmp_path / "set", cfg, envs=[Environment.ENV1], traversals=1, seed=1, progress=False)
    # two worker processes write the same bags
    index2 = generate_route_set(tmp_path / "set2", cfg, envs=[Environment.ENV1, Environment.ENV3], traversals=2,
                                seed=1, progress=False, workers=2)
    assert json.loads(index2.read_text())["bags"] == data["bags"]
    with BagReader(tmp_path / "set" / "env3_t1") as a, BagReader(tmp_path / "set2" / "env3_t1") as b:
        assert list(a.messages()) == list(b.messages())


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(SynthError, match="encoding"):
        write_traversal(tmp_path / "x", dataclasses.replace(_tiny(), encoding="nope"), Environment.ENV1, 0, seed=0)
    with pytest.raises(SynthError, match="traversals"):
        generate_route_set(tmp_path / "y", _tiny(), traversals=0, progress=False)
    with pytest.raises(DatasetError, match=r"route\.json"):
        load_route_meta(tmp_path)


@pytest.mark.slow
def test_cli_writes_a_demo_route(tmp_path, capsys):
    from hstnn_ros.data_tools.synth_route import main

    rc = main(["--out", str(tmp_path / "r"), "--envs", "env2", "--traversals", "1", "--storage", "sqlite3",
               "--quiet", "--seed", "3"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "env2_t0" in out and "index.json" in out
    assert main(["--out", str(tmp_path / "r"), "--envs", "env9", "--quiet"]) == 2


@pytest.mark.slow
def test_cli_prints_synthetic_stats_beside_real_bags(tmp_path, capsys, shared_data):
    from hstnn_ros.data_tools.synth_route import main

    real = shared_data / "bags"
    args = ["--out", str(tmp_path / "r"), "--envs", "env1,env3", "--traversals", "1", "--quiet", "--places", "2"]
    assert main([*args, "--compare-real", str(real)]) == 0
    table = capsys.readouterr().out.split("beside real recordings")[1]
    for name in ["synthetic env1", "synthetic env3", *(b.name for b in real.iterdir() if b.is_dir())]:
        assert name[:44] in table
    assert main([*args, "--overwrite", "--compare-real", str(tmp_path)]) == 1
    assert "no rosbag2 folders" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["libcaer_cmp", "mono", "dvs_msgs"])
def test_other_event_encodings_decode_to_the_same_events(tmp_path, kind):
    from hstnn_ros.datasets.synth import EventMessageKind

    cfg = _tiny(length_m=0.4)
    ref = write_traversal(tmp_path / "evt3", cfg, Environment.ENV1, 0, seed=5)
    if kind == "dvs_msgs":
        cfg = dataclasses.replace(cfg, event_message=EventMessageKind.DVS_EVENT_ARRAY)
    else:
        cfg = dataclasses.replace(cfg, encoding=Encoding(kind))
    res = write_traversal(tmp_path / kind, cfg, Environment.ENV1, 0, seed=5)
    expect_type = "dvs_msgs/msg/EventArray" if kind == "dvs_msgs" else "event_camera_msgs/msg/EventPacket"
    assert res.meta["topics"][TOPIC_EVENTS]["type"] == expect_type
    with BagReader(tmp_path / "evt3") as a, BagReader(tmp_path / kind) as b:
        assert str(b.topics[TOPIC_EVENTS]) == expect_type
        ea, eb = _decode_all(a), _decode_all(b)
    assert ref.meta["event_stats"]["events"] > 0
    for x, y in zip(ea, eb, strict=True):
        assert np.array_equal(x, y)


def test_long_evt3_route_survives_the_24_bit_time_wrap(tmp_path):
    """evt3 time wraps every 16.77 s: a 20 s traversal (tiny sensor to stay fast) still decodes exactly."""
    from hstnn_ros.datasets.synth import CameraConfig, EventSimConfig, MotionConfig

    cfg = dataclasses.replace(
        _tiny(length_m=20.0), camera=CameraConfig(dvs_width=32, dvs_height=24, rgb_width=16, rgb_height=12),
        events=EventSimConfig(render_hz=40.0), rgb_hz=2.0, odom_hz=2.0, packet_ms=100.0,
        motion=MotionConfig(speed_mps=1.0, speed_var_between=0.0))
    res = write_traversal(tmp_path / "long", cfg, Environment.ENV1, 0, seed=2)
    assert res.meta["duration_s"] > 17.0
    with BagReader(tmp_path / "long") as reader:
        t_ns, x, y, p = _decode_all(reader)
    sim = TraversalSimulator(build_world(cfg.world, 2), cfg, Environment.ENV1, 0, seed=2)
    ev = [r.events for r in sim.records() if isinstance(r, EventsRecord)]
    assert np.array_equal(t_ns, np.concatenate([e.t_ns for e in ev]))
    for got, field in ((x, "x"), (y, "y"), (p, "p")):
        assert np.array_equal(got, np.concatenate([getattr(e, field) for e in ev]))
    assert t_ns[-1] - t_ns[0] > 16_777_216_000
