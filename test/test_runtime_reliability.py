"""Stress: malformed messages, duplicated/late/out-of-order stamps, gaps, a resolution change and a 10x event burst.

The engine must not crash, its memory must stay bounded (measured with tracemalloc) and its counters must match
exactly what the test dropped on purpose.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import torch
from test_engine import PERIOD, Batch, make_pipeline, random_events, random_image

from hstnn_ros.perception.enums import DropPolicy
from hstnn_ros.runtime.engine import EngineConfig, PlaceRecognitionEngine

torch.set_num_threads(1)


def test_malformed_inputs_are_counted_not_raised() -> None:
    eng = PlaceRecognitionEngine(make_pipeline(), EngineConfig(reorder_delay_ns=0))
    rng = np.random.default_rng(0)
    good = random_events(rng, 0, PERIOD, 100)
    bad = [
        Batch(good.t_ns, good.x[:-1], good.y, good.p),  # ragged
        Batch(good.t_ns, good.x + 1000, good.y, good.p),  # outside the sensor
        Batch(good.t_ns, good.x, good.y, good.p + 2),  # polarity not 0/1
        Batch(good.t_ns.astype(np.float64), good.x, good.y, good.p),  # float stamps
        Batch(good.t_ns, good.x, good.y, good.p, width=0),  # no sensor size
        object(),  # not an event batch at all
    ]
    for b in bad:
        assert not eng.push_events(b)  # type: ignore[arg-type]
    bad_frames = [None, np.zeros((48, 64), np.uint8), np.zeros((48, 64, 3), np.float32), np.zeros((0, 4, 3), np.uint8)]
    for f in bad_frames:
        assert not eng.push_frame(PERIOD, f)
    assert not eng.push_frame(PERIOD, random_image(rng), depth=np.zeros((5, 5), np.float32))
    assert eng.counters.malformed == len(bad) + len(bad_frames) + 1
    assert eng.pending_frames == 0 and eng.buffered_events == 0


def test_duplicate_late_and_overflowing_frames_are_counted() -> None:
    eng = PlaceRecognitionEngine(make_pipeline(), EngineConfig(reorder_delay_ns=10 * PERIOD, max_pending_frames=4))
    rng = np.random.default_rng(1)
    img = random_image(rng)
    for k in (5, 3, 4):  # out of order within the delay: all accepted
        assert eng.push_frame(k * PERIOD, img)
    assert not eng.push_frame(4 * PERIOD, img)  # duplicate of a queued frame
    assert eng.push_frame(6 * PERIOD, img)
    assert eng.push_frame(7 * PERIOD, img)  # queue was full (4): the oldest (3) is dropped
    assert eng.pending_frames == 4
    eng.flush()
    assert not eng.push_frame(7 * PERIOD, img)  # duplicate of a processed frame
    assert not eng.push_frame(2 * PERIOD, img)  # older than the last processed frame
    c = eng.counters
    assert (c.frames_dropped_duplicate, c.frames_dropped_late, c.frames_dropped_overflow) == (2, 1, 1)
    assert c.frames_processed == 4 and c.frames_in == 8

    newest = PlaceRecognitionEngine(make_pipeline(), EngineConfig(reorder_delay_ns=10 * PERIOD, max_pending_frames=2,
                                                                  drop_policy=DropPolicy.DROP_NEWEST))
    assert newest.push_frame(PERIOD, img) and newest.push_frame(2 * PERIOD, img)
    assert not newest.push_frame(3 * PERIOD, img)
    assert newest.frames.pending_stamps() == [PERIOD, 2 * PERIOD]
    assert newest.counters.frames_dropped_overflow == 1


def test_late_events_are_dropped_and_counted() -> None:
    eng = PlaceRecognitionEngine(make_pipeline(), EngineConfig(reorder_delay_ns=0))
    rng = np.random.default_rng(2)
    for k in range(1, 4):
        eng.push_events(random_events(rng, (k - 1) * PERIOD, k * PERIOD, 500))
        eng.push_frame(k * PERIOD, random_image(rng))
        eng.poll()
    horizon = 3 * PERIOD - eng.pipeline.window.span_ns
    late = random_events(rng, 0, horizon, 300)
    before = eng.counters.events_dropped_late
    assert not eng.push_events(late)
    assert eng.counters.events_dropped_late - before == 300


def test_stress_stream_no_crash_bounded_memory_counters_match() -> None:  # noqa: PLR0915  one scenario, top to bottom
    cap = 60_000
    eng = PlaceRecognitionEngine(make_pipeline(), EngineConfig(reorder_delay_ns=2 * PERIOD, max_buffered_events=cap,
                                                               max_gap_ns=10 * PERIOD))
    rng = np.random.default_rng(7)
    expected_dup = expected_gaps = expected_res = 0
    results = []
    peaks = []
    tracemalloc.start()
    t = 0
    k = 0
    stamp_prev = 0
    try:
        for step in range(120):
            k += 1
            if step == 40:  # a gap of 20 frames
                k += 20
                expected_gaps += 1
            stamp = k * PERIOD
            burst = 10 if 60 <= step < 70 else 1  # 10x event-rate burst
            n = 4000 * burst
            wh = (64, 48) if step < 80 else (128, 96)  # mid-stream resolution change
            if step == 80:
                expected_res += 1
            batch = random_events(rng, stamp_prev, stamp + 1, n, wh)
            # deliver events in two halves, second half first (out of order inside the delay)
            half = n // 2
            second = Batch(batch.t_ns[half:], batch.x[half:], batch.y[half:], batch.p[half:], *wh)
            first = Batch(batch.t_ns[:half], batch.x[:half], batch.y[:half], batch.p[:half], *wh)
            eng.push_events(second)
            eng.push_events(first)
            eng.push_frame(stamp, random_image(rng))
            if step % 10 == 3:
                eng.push_frame(stamp, random_image(rng))  # duplicate
                expected_dup += 1
            if step % 17 == 5:
                eng.push_events(Batch(batch.t_ns, batch.x[:3], batch.y, batch.p, *wh))  # malformed
            results += eng.poll()
            stamp_prev = stamp + 1
            t = stamp
            assert eng.buffered_events <= cap
            if step in (20, 119):
                peaks.append(tracemalloc.get_traced_memory()[0])
        results += eng.flush()
    finally:
        tracemalloc.stop()
    c = eng.counters
    assert t > 0
    assert c.frames_dropped_duplicate == expected_dup
    assert c.gaps == expected_gaps
    assert c.resolution_changes == expected_res
    assert c.malformed == len([s for s in range(120) if s % 17 == 5])
    assert c.frames_processed == 120 and c.frames_dropped_late == 0
    # every event is either still buffered, consumed by a frame, or counted as dropped
    assert c.events_dropped_overflow > 0  # the burst overflowed the cap
    assert c.events_dropped_resolution > 0
    assert c.events_in == (eng.buffered_events + c.events_expired + c.events_dropped_overflow
                           + c.events_dropped_late + c.events_dropped_resolution)
    # results: 120 frames, window refilled after the gap (2 frames lost twice: start + gap)
    assert c.results == len(results) == 120 - 2 * (1 + expected_gaps)
    # memory after 120 frames (including the burst) is within 8 MB of memory after 20 frames
    assert peaks[1] - peaks[0] < 8 * 2**20, peaks


def test_time_jump_back_decides_queued_frames_resets_and_goes_on() -> None:
    """The same recording played twice into a running engine: frames queued before the jump are still decided, the
    state resets once (logged, counted), and decisions go on with the replayed stream; nothing is dropped as late."""
    eng = PlaceRecognitionEngine(make_pipeline(), EngineConfig(reorder_delay_ns=2 * PERIOD, time_jump_ns=5 * PERIOD))
    rng = np.random.default_rng(11)
    inputs = []
    for k in range(1, 13):
        inputs.append((random_events(rng, (k - 1) * PERIOD, k * PERIOD, 800), k * PERIOD, random_image(rng)))
    results = []
    for _ in range(2):
        for batch, stamp, img in inputs:
            eng.push_events(batch)
            eng.push_frame(stamp, img)
            results += eng.poll()
    results += eng.flush()
    c = eng.counters
    assert c.time_jumps == 1 and c.frames_dropped_late == 0 and c.frames_dropped == 0
    assert c.frames_processed == 24 and len(results) == 2 * (12 - 2)
    first, second = results[:10], results[10:]
    assert [r.stamp_ns for r in first] == [r.stamp_ns for r in second]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_allclose(a.logits, b.logits, rtol=1e-5, atol=1e-6)
