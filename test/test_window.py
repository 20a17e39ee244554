"""The event window: ``WindowSpec`` (validated, stored in bundles) and ``EventBuffer`` (the one cutter), and a model
trained with non-default windowing running online on exactly its windows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.model import HSTNN, HSTNNConfig, LayerSpec, save_bundle
from hstnn_ros.perception.enums import DropPolicy, EventBinning
from hstnn_ros.perception.errors import WindowError
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.enums import Normalization, ResizeMode
from hstnn_ros.perception.events.framing import events_to_frames
from hstnn_ros.perception.frontends import RGBCNN, SCNN, FrontendConfig
from hstnn_ros.perception.window import EventBuffer, WindowSpec, assemble_window, window_from_metadata
from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine
from hstnn_ros.runtime.loading import load_pipeline

torch.set_num_threads(1)

specs = st.builds(
    WindowSpec,
    bin_ns=st.integers(1_000, 50_000_000),
    binning=st.sampled_from(list(EventBinning)),
    input_hw=st.tuples(st.integers(8, 64), st.integers(8, 64)),
    resize=st.sampled_from(list(ResizeMode)),
    clip=st.one_of(st.none(), st.floats(0.5, 10.0)),
    normalize=st.sampled_from([Normalization.NONE, Normalization.MAX]),
    depth=st.booleans(),
    depth_max_m=st.floats(0.5, 20.0),
)


@given(specs)
def test_spec_round_trips_through_json(spec: WindowSpec) -> None:
    import json

    assert WindowSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_impossible_windows_are_refused_naming_the_field() -> None:
    for kwargs, what in [({"event_frames": 8}, "multiple of rgb_frames"), ({"rgb_steps": (2, 5)}, "rgb_steps"),
                         ({"rgb_steps": (5, 2, 8)}, "rgb_steps"), ({"bin_ns": 0}, "bin_ns"),
                         ({"binning": "weekly"}, "binning"), ({"normalize": "clip"}, "needs clip")]:
        with pytest.raises(WindowError, match=what):
            WindowSpec(**kwargs)
    with pytest.raises(WindowError, match="unknown window keys"):
        WindowSpec.from_dict({"bins": 3}, source="x/bundle.json")


def test_legacy_bundle_metadata_reads_as_the_same_window() -> None:
    legacy = {"input_hw": [90, 120], "bins": 3, "bin_ns": 7_000_000, "rgb_channels": 3,
              "event_framing": {"mode": "scale", "clip": None, "normalize": "none"}}
    assert window_from_metadata(legacy, source="old") == WindowSpec(input_hw=(90, 120))
    with pytest.raises(WindowError, match="no 'window'"):
        window_from_metadata({}, source="empty")


def _events(rng: np.random.Generator, t0: int, t1: int, n: int, wh: tuple[int, int] = (64, 48)) -> EventBatch:
    return EventBatch(np.sort(rng.integers(t0, t1, n)), rng.integers(0, wh[0], n), rng.integers(0, wh[1], n),
                      rng.integers(0, 2, n), *wh)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from(list(EventBinning)), st.integers(1, 9))
def test_buffer_cuts_what_direct_framing_gives_and_conserves_events(seed: int, binning: EventBinning,
                                                                    chunks: int) -> None:
    """Events pushed in any chunking, frames cut at each stamp: equal to framing the whole stream between the
    documented edges, and every event is buffered, expired or counted as dropped."""
    rng = np.random.default_rng(seed)
    spec = WindowSpec(input_hw=(12, 16), bin_ns=3_000_000, binning=binning)
    period = 10_000_000
    stamps = [period * k for k in range(1, 8)]
    every = _events(rng, 0, stamps[-1] + period, 4000)
    buf = EventBuffer(spec)
    pushed, prev, k = 0, None, 0
    for part in np.array_split(np.arange(len(every)), chunks):
        buf.push(every.select(part))
        pushed = int(part[-1]) + 1 if len(part) else pushed
        # cut every frame whose stamp the stream has passed (as the engine does with no reorder delay)
        while k < len(stamps) and pushed and every.t_ns[pushed - 1] >= stamps[k]:
            batch, edges = buf.cut(stamps[k], prev)
            want = spec.edges(stamps[k], prev)
            np.testing.assert_array_equal(edges, want)
            np.testing.assert_array_equal(spec.frames(batch, edges), events_to_frames(every, want, spec.grid_wh))
            prev, k = stamps[k], k + 1
    c = buf.counters
    assert c.events_in == len(every)
    assert c.events_in == buf.buffered + c.expired + c.dropped_overflow + c.dropped_late + c.dropped_resolution
    if binning is EventBinning.FIXED:
        np.testing.assert_array_equal(spec.edges(70_000_000), 70_000_000 - 9_000_000 + np.arange(4) * 3_000_000)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), n_batches=st.integers(1, 12), max_events=st.integers(50, 3000),
       policy=st.sampled_from(list(DropPolicy)))
def test_buffer_scan_of_decoder_dtypes_equals_the_general_checks(seed: int, n_batches: int, max_events: int,
                                                                  policy: DropPolicy) -> None:
    """Batches of the decoders' dtypes take one compiled scan on push (``kernels.scan_columns``); the same batches as
    int64 columns take the numpy checks: equal counters, buffer and cuts, whatever the batches hold (late, unsorted,
    outside the sensor, polarity 2, empty)."""
    rng = np.random.default_rng(seed)
    spec = WindowSpec(input_hw=(12, 16), bin_ns=3_000_000)
    fast, general = EventBuffer(spec, max_events, policy), EventBuffer(spec, max_events, policy)
    t0 = 0
    for k in range(n_batches):
        n = int(rng.integers(0, 300))
        t = rng.integers(t0 - 5_000_000, t0 + 20_000_000, n)  # late and unsorted ones too
        if k % 3 != 2:
            t = np.sort(t)
        x, y = rng.integers(0, 40 if k == 4 else 32, n), rng.integers(0, 24, n)  # batch 4: outside the sensor
        pol = rng.integers(0, 3 if k == 5 else 2, n)  # batch 5: a polarity of 2
        batch = EventBatch(t, x, y, pol, 32, 24)
        wide = type("Columns", (), {"t_ns": t.astype(np.int64), "x": x.astype(np.int64), "y": y.astype(np.int64),
                                    "p": pol.astype(np.int64), "width": 32, "height": 24})()
        assert fast.push(batch) == general.push(wide)
        assert (fast.first_ns, fast.newest_ns, fast.buffered) == (general.first_ns, general.newest_ns, general.buffered)
        t0 += 20_000_000
        a, b = fast.cut(t0 - 5_000_000), general.cut(t0 - 5_000_000)
        np.testing.assert_array_equal(a[0].t_ns, b[0].t_ns)
        np.testing.assert_array_equal(a[0].x, b[0].x)
    assert fast.counters == general.counters


def test_buffer_bound_and_drop_policies() -> None:
    rng = np.random.default_rng(0)
    spec = WindowSpec()
    for policy in DropPolicy:
        buf = EventBuffer(spec, max_events=1000, drop_policy=policy)
        for k in range(5):
            buf.push(_events(rng, k * 10**6, (k + 1) * 10**6, 400))
            assert buf.buffered <= 1000
        c = buf.counters
        # drop_oldest keeps the newest 1000 events; drop_newest refuses whole batches once one would not fit
        assert c.dropped_overflow == (1000 if policy is DropPolicy.DROP_OLDEST else 1200)
        assert c.events_in == 2000 == buf.buffered + c.dropped_overflow
        kept = buf.cut(6 * 10**6)[0]
        assert (kept.t_ns.max() >= 4 * 10**6) == (policy is DropPolicy.DROP_OLDEST)
    assert buf.push(object()) is None and buf.counters.malformed_batches == 1


def test_assemble_window_places_rgb_at_its_steps() -> None:
    spec = WindowSpec(event_frames=6, rgb_frames=2, rgb_steps=(1, 5))
    ev = np.arange(6 * 2, dtype=np.float32).reshape(6, 2)
    rgb = np.array([[10.0], [20.0]], np.float32)
    w = assemble_window(spec, ev, rgb)
    assert w.shape == (6, 3) and w[:, 2].tolist() == [0, 10, 0, 0, 0, 20]
    t = assemble_window(spec, torch.from_numpy(ev)[None], torch.from_numpy(rgb)[None])
    np.testing.assert_array_equal(t[0].numpy(), w)


def test_bundle_with_non_default_window_runs_online_on_its_own_windows(tmp_path: Path) -> None:
    """A front-end bundle recorded with 4 ms bins, a 20 x 28 grid, crop mapping and clipped counts: the engine cuts
    and frames events with exactly that window (taken from the bundle, never re-typed), so its event features equal
    the SCNN on independently framed events of those bins."""
    spec = WindowSpec(bin_ns=4_000_000, input_hw=(20, 28), resize=ResizeMode.CROP, clip=2.0,
                      normalize=Normalization.CLIP, depth=True)
    torch.manual_seed(0)
    shape = {"widths": (4, 4, 8, 8), "pooled_hw": (2, 2), "hidden": 16, "features": 12, "input_hw": spec.input_hw}
    scnn, cnn = SCNN(FrontendConfig(in_channels=2, **shape)).eval(), RGBCNN(FrontendConfig(in_channels=4, **shape))
    save_bundle(tmp_path / "fe", {"scnn": scnn, "cnn": cnn.eval()}, {"window": spec.to_dict()})
    hstnn = HSTNN(HSTNNConfig(input_size=24, hidden=(LayerSpec(6, 6),), num_classes=4, input_spiking=12))
    save_bundle(tmp_path / "m", {"hstnn": hstnn}, {"frontend_bundle": "../fe"})
    pipe = load_pipeline(tmp_path / "m")
    assert pipe.window == spec and pipe.rgb_channels == 4
    eng = PlaceRecognitionEngine(pipe, EngineConfig(reorder_delay_ns=0))
    rng = np.random.default_rng(1)
    every = _events(rng, 0, 200_000_000, 30_000, wh=(40, 30))
    period = 33_000_000
    for k in range(1, 6):
        stamp = k * period
        eng.push_events(every.select((every.t_ns >= stamp - period) & (every.t_ns < stamp)))
        eng.push_frame(stamp, rng.integers(0, 255, (30, 40, 3), dtype=np.uint8), np.full((30, 40), 1.5, np.float32))
        eng.poll()
    eng.push_events(every.select(every.t_ns >= 5 * period))
    eng.poll()
    frames = [events_to_frames(every, s - 12_000_000 + np.arange(4) * 4_000_000, (28, 20), mode=ResizeMode.CROP,
                               clip=2.0, normalize=Normalization.CLIP) for s in (3 * period, 4 * period, 5 * period)]
    with torch.no_grad():
        want = scnn.extract(torch.from_numpy(np.concatenate(frames))).features
    torch.testing.assert_close(eng.window.event_features(), want)
    assert dataclasses.asdict(eng.counters)["results"] == 3
