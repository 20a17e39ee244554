"""PlaceRecognitionEngine: windowing, sliding-window equality with the offline model, ordering, events-only mode."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from hstnn_ros import defaults
from hstnn_ros.model import HSTNN, HSTNNConfig, LayerSpec
from hstnn_ros.perception.enums import EventBinning
from hstnn_ros.perception.errors import WindowError
from hstnn_ros.perception.events.batch import EventBatch
from hstnn_ros.perception.events.framing import events_to_frames
from hstnn_ros.perception.window import WindowSpec, assemble_window
from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine
from hstnn_ros.runtime.enums import InputMode
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.loading import HstnnClassifier
from hstnn_ros.runtime.pipeline import FrontendResult, Pipeline

torch.set_num_threads(1)

HW = (24, 32)  # small front-end grid keeps the tests fast


class ConvFrontEnd(nn.Module):
    """A small real conv feature extractor (two strided convs + linear) with MACs counted from its shapes."""

    def __init__(self, in_ch: int, feature_size: int, hw: tuple[int, int], spiking: bool) -> None:
        super().__init__()
        self.feature_size = feature_size
        self.spiking = spiking
        self.c1 = nn.Conv2d(in_ch, 8, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        h2, w2 = (hw[0] + 3) // 4, (hw[1] + 3) // 4
        self.fc = nn.Linear(8 * h2 * w2, feature_size)
        h1, w1 = (hw[0] + 1) // 2, (hw[1] + 1) // 2
        self._macs = 9 * in_ch * 8 * h1 * w1 + 9 * 8 * 8 * h2 * w2 + 8 * h2 * w2 * feature_size

    def forward(self, x: torch.Tensor) -> FrontendResult:
        z = torch.relu(self.c2(torch.relu(self.c1(x))))
        f = self.fc(z.flatten(1))
        if self.spiking:
            f = (f > 0).float()
            rate = float(f.mean())
            return FrontendResult(f, 0.0, float(self._macs * x.shape[0] * (x > 0).float().mean()), rate)
        return FrontendResult(f, float(self._macs * x.shape[0]), 0.0, None)


def hstnn_classifier(input_size: int, num_classes: int, input_spiking: int) -> HstnnClassifier:
    """The model core's HSTNN (one hybrid layer of 12 LIF + 8 RNN neurons), randomly initialised."""
    cfg = HSTNNConfig(input_size=input_size, hidden=(LayerSpec(12, 8),), num_classes=num_classes,
                      input_spiking=input_spiking, v_th=0.2)
    return HstnnClassifier(HSTNN(cfg))


def make_pipeline(events_only: bool = False, seed: int = 0, rgb_channels: int = 3,
                  window: WindowSpec | None = None) -> Pipeline:
    torch.manual_seed(seed)
    f_ev, f_rgb = 16, 12
    ev = ConvFrontEnd(2, f_ev, HW, spiking=True)
    rgb = None if events_only else ConvFrontEnd(rgb_channels, f_rgb, HW, spiking=False)
    clf = hstnn_classifier(f_ev + f_rgb, 7, f_ev)
    window = window or WindowSpec(input_hw=HW, depth=rgb_channels == 4)
    return Pipeline(ev, rgb, clf, window=window, rgb_feature_size=f_rgb)


@dataclass
class Batch:
    t_ns: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    width: int = 64
    height: int = 48


def random_events(rng: np.random.Generator, t0: int, t1: int, n: int, wh: tuple[int, int] = (64, 48)) -> Batch:
    t = np.sort(rng.integers(t0, t1, n)).astype(np.int64)
    return Batch(t, rng.integers(0, wh[0], n).astype(np.uint16), rng.integers(0, wh[1], n).astype(np.uint16),
                 rng.integers(0, 2, n).astype(np.uint8), wh[0], wh[1])


def random_image(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)


PERIOD = 33_000_000


def stream(engine: PlaceRecognitionEngine, n_frames: int, seed: int = 1) -> tuple[list, dict]:
    """Feeds events and frames in order; returns results and the inputs per frame stamp."""
    rng = np.random.default_rng(seed)
    results, inputs = [], {}
    t_prev = 0
    for k in range(1, n_frames + 1):
        stamp = k * PERIOD
        batch = random_events(rng, t_prev, stamp, 3000)
        img = random_image(rng)
        inputs[stamp] = (batch, img)
        engine.push_events(batch)
        engine.push_frame(stamp, img)
        results += engine.poll()
        t_prev = stamp
    results += engine.flush()
    return results, inputs


def test_one_result_per_frame_once_window_is_full() -> None:
    eng = PlaceRecognitionEngine(make_pipeline(), EngineConfig(reorder_delay_ns=0))
    results, _ = stream(eng, 10)
    # 3 frames fill the 9 event + 3 RGB window: frames 3..10 each give one decision
    assert [r.stamp_ns for r in results] == [k * PERIOD for k in range(3, 11)]
    assert eng.counters.results == 8 and eng.counters.frames_processed == 10
    for r in results:
        assert r.window_start_ns == r.stamp_ns - 2 * PERIOD
        assert r.place_id == r.top_k[0][0] and 0 <= r.place_id < 7
        probs = [p for _, p in r.top_k]
        assert probs == sorted(probs, reverse=True) and len(probs) == 5
        assert r.ops.hstnn_macs > 0 and r.ops.rgb_frontend_macs > 0 and r.ops.event_frontend_acs > 0
        assert 0.0 <= r.ops.event_frontend_spike_rate <= 1.0
        assert r.latency_s > 0


def test_sliding_window_equals_offline_model() -> None:
    """Each online result equals the model run offline on the window built from independently framed inputs."""
    pipe = make_pipeline()
    eng = PlaceRecognitionEngine(pipe, EngineConfig(reorder_delay_ns=0))
    results, inputs = stream(eng, 8)
    stamps = sorted(inputs)
    spec = pipe.window
    # Offline: all events of the recording as one batch, framed per frame by the perception layer's window (the
    # dataset path), front-ends run in one batch.
    every = EventBatch(np.concatenate([inputs[s][0].t_ns for s in stamps]),
                       np.concatenate([inputs[s][0].x for s in stamps]),
                       np.concatenate([inputs[s][0].y for s in stamps]),
                       np.concatenate([inputs[s][0].p for s in stamps]), 64, 48)
    # the documented bins: 3 x 7 ms ending at the stamp, [stamp - 21 ms, stamp), written out independently
    bins = spec.bins_per_rgb
    frames = [events_to_frames(every, s - spec.span_ns + np.arange(bins + 1) * spec.bin_ns, (HW[1], HW[0]))
              for s in stamps]
    with torch.no_grad():
        ev = pipe.event_frontend(torch.from_numpy(np.concatenate(frames))).features.view(len(stamps), bins, -1)
        imgs = torch.stack([eng.preprocess_rgb(inputs[s][1], None) for s in stamps])
        rgb = pipe.rgb_frontend(imgs).features
        windows = torch.stack([
            assemble_window(spec, ev[k - 2 : k + 1].reshape(-1, ev.shape[-1]), rgb[k - 2 : k + 1])
            for k in range(2, len(stamps))
        ])
        offline = pipe.classifier(windows).logits.numpy()
    online = np.stack([r.logits for r in results])
    np.testing.assert_allclose(online, offline, rtol=1e-4, atol=1e-5)
    # the RGB feature sits at the documented steps, zeros elsewhere
    w = windows[0]
    f_ev = pipe.event_frontend.feature_size
    nonzero_steps = [i for i in range(9) if w[i, f_ev:].abs().sum() > 0]
    assert tuple(nonzero_steps) == defaults.RGB_STEPS


def test_a_frame_is_decided_once_its_events_are_in() -> None:
    """With events in time order (one driver) a frame is decided as soon as an event at or after its stamp arrived,
    long before the reorder delay, and with the same result as waiting the whole delay."""
    rng = np.random.default_rng(5)
    pipe = make_pipeline()
    early = PlaceRecognitionEngine(pipe, EngineConfig(reorder_delay_ns=20 * PERIOD))
    late = PlaceRecognitionEngine(pipe, EngineConfig(reorder_delay_ns=20 * PERIOD, release_on_events=False))
    t_prev, got_early, got_late = 0, [], []
    for k in range(1, 13):
        stamp = k * PERIOD
        image = random_image(rng)
        before = random_events(rng, t_prev, stamp, 2000)
        for eng in (early, late):
            eng.push_frame(stamp, image)
            eng.push_events(before)
            assert eng.poll() == []  # the events end before the stamp: not yet complete
        passing = random_events(rng, stamp, stamp + 1, 1)  # the stream passes the stamp
        for eng, got in ((early, got_early), (late, got_late)):
            eng.push_events(passing)
            got.extend(eng.poll())
        if k >= defaults.RGB_FRAMES_PER_WINDOW:
            assert got_early and got_early[-1].stamp_ns == stamp, "decided as soon as its events were in"
        t_prev = stamp + 1
    assert not got_late, "without release_on_events the frames wait the reorder delay"
    got_late += late.flush()
    assert [r.stamp_ns for r in got_early] == [r.stamp_ns for r in got_late]
    for a, b in zip(got_early, got_late, strict=True):
        np.testing.assert_array_equal(a.logits, b.logits)


def test_reordering_within_delay_gives_same_results() -> None:
    rng = np.random.default_rng(3)
    items = []
    t_prev = 0
    for k in range(1, 9):
        stamp = k * PERIOD
        items.append(("e", random_events(rng, t_prev, stamp, 2000)))
        items.append(("f", stamp, random_image(rng)))
        t_prev = stamp

    def run(order: list) -> list:
        # event packets out of order too: the frames must wait the reorder delay, not only for the events to pass
        eng = PlaceRecognitionEngine(make_pipeline(), EngineConfig(reorder_delay_ns=3 * PERIOD,
                                                                   release_on_events=False))
        out = []
        for it in order:
            if it[0] == "e":
                eng.push_events(it[1])
            else:
                eng.push_frame(it[1], it[2])
            out += eng.poll()
        return out + eng.flush()

    in_order = run(items)
    shuffled = list(items)
    # swap neighbouring items: each arrives at most one frame period late
    for i in range(0, len(shuffled) - 3, 3):
        shuffled[i], shuffled[i + 2] = shuffled[i + 2], shuffled[i]
    out_of_order = run(shuffled)
    assert [r.stamp_ns for r in in_order] == [r.stamp_ns for r in out_of_order]
    for a, b in zip(in_order, out_of_order, strict=True):
        np.testing.assert_allclose(a.logits, b.logits, rtol=1e-5, atol=1e-6)


def test_events_only_mode_uses_virtual_clock_and_ignores_rgb() -> None:
    eng = PlaceRecognitionEngine(make_pipeline(events_only=True), EngineConfig(reorder_delay_ns=0,
                                                                                frame_period_ns=PERIOD))
    assert eng.mode is InputMode.EVENTS_ONLY
    rng = np.random.default_rng(0)
    results = []
    for k in range(10):
        eng.push_events(random_events(rng, k * PERIOD, (k + 1) * PERIOD, 2000))
        assert not eng.push_frame((k + 1) * PERIOD, random_image(rng))
        results += eng.poll()
    results += eng.flush()
    assert eng.counters.frames_ignored_events_only == 10
    assert len(results) >= 6
    assert all(r.ops.rgb_frontend_macs == 0 for r in results)
    diffs = np.diff([r.stamp_ns for r in results])
    assert (diffs == PERIOD).all()


def test_rgbd_pipeline_uses_depth_channel() -> None:
    eng = PlaceRecognitionEngine(make_pipeline(rgb_channels=4), EngineConfig(reorder_delay_ns=0))
    img = np.full((48, 64, 3), 128, np.uint8)
    near = eng.preprocess_rgb(img, np.full((48, 64), 1000, np.uint16))
    far = eng.preprocess_rgb(img, np.full((48, 64), 5.0, np.float32))
    assert near.shape == (4, *HW)
    assert torch.allclose(near[3], torch.full(HW, 0.1)) and torch.allclose(far[3], torch.full(HW, 0.5))


def test_bad_configuration_is_refused_with_a_named_fix() -> None:
    with pytest.raises(RuntimeEngineError, match="top_k"):
        EngineConfig(top_k=0)
    with pytest.raises(RuntimeEngineError, match="threads"):
        EngineConfig(threads=0)
    with pytest.raises(WindowError, match="multiple of rgb_frames"):
        WindowSpec(event_frames=8)
    with pytest.raises(RuntimeEngineError, match="drop_policy"):
        EngineConfig(drop_policy="bogus")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeEngineError, match="CUDA is not available"):
            PlaceRecognitionEngine(make_pipeline(), EngineConfig(device="cuda"))
    torch.manual_seed(0)
    with pytest.raises(RuntimeEngineError, match="expects 99 features"):
        Pipeline(ConvFrontEnd(2, 16, HW, True), None, hstnn_classifier(99, 3, 16), window=WindowSpec(input_hw=HW),
                 rgb_feature_size=12)


def test_engine_sets_torch_threads_unless_told_not_to() -> None:
    before = torch.get_num_threads()
    try:
        PlaceRecognitionEngine(make_pipeline(), EngineConfig(threads=2))
        assert torch.get_num_threads() == 2
        PlaceRecognitionEngine(make_pipeline(), EngineConfig(threads=None))
        assert torch.get_num_threads() == 2
        PlaceRecognitionEngine(make_pipeline(), EngineConfig())
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_event_transform_is_applied_before_the_event_frontend() -> None:
    seen: list[np.ndarray] = []

    def clip_and_record(f: np.ndarray) -> np.ndarray:
        out = np.minimum(f, 1.0)
        seen.append(out)
        return out

    pipe = make_pipeline()
    pipe.event_transform = clip_and_record
    eng = PlaceRecognitionEngine(pipe, EngineConfig(reorder_delay_ns=0))
    results, _ = stream(eng, 4)
    assert len(seen) == 4 and all(f.shape == (3, 2, *HW) and f.max() <= 1.0 for f in seen)
    with torch.no_grad():
        expected = pipe.event_frontend(torch.from_numpy(seen[-1])).features
    np.testing.assert_allclose(eng.window.event_features()[-3:].numpy(), expected.numpy(), atol=1e-6)
    assert len(results) == 2


def test_span_binning_uses_every_event_exactly_once() -> None:
    totals: list[float] = []

    def record(f: np.ndarray) -> np.ndarray:
        totals.append(float(f.sum()))
        return f

    pipe = make_pipeline(window=WindowSpec(input_hw=HW, binning=EventBinning.SPAN))
    pipe.event_transform = record
    eng = PlaceRecognitionEngine(pipe, EngineConfig(reorder_delay_ns=0))
    stream(eng, 6)
    c = eng.counters
    assert c.events_dropped_late == c.events_dropped_overflow == 0
    # after the first frame (which has no predecessor and looks back bins x bin_ns), each frame frames exactly the
    # 3000 events that arrived since the previous one; everything left the buffer (expired) once framed
    assert totals[1:] == [3000.0] * 5
    assert c.events_expired == c.events_in - eng.buffered_events == 6 * 3000
    assert sum(totals) == c.events_in - (3000 - totals[0])
