"""Event framing: counts conserved on real data, resize modes, streaming framer, noise filter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.bags import BagReader
from hstnn_ros.perception import DecodeError
from hstnn_ros.perception import events as pev


@pytest.mark.parametrize("name", ["libcaer_cmp_davis346_mcap", "evt3_640x480"])
def test_real_frames_sum_to_event_counts(shared_data: Path, name: str) -> None:
    dec = pev.StreamDecoder()
    with BagReader(shared_data / "bags" / name) as r:
        b = pev.EventBatch.concat([dec.decode(m.msgtype, m.data) for m in r.messages()])
    edges = pev.split_interval(int(b.t_ns[0]), int(b.t_ns[-1]) + 1, 9)
    frames = pev.events_to_frames(b, edges)
    assert frames.shape == (9, 2, 180, 240) and frames.dtype == np.float32
    assert frames.sum() == len(b)
    for i in range(9):
        part = b.slice_time(int(edges[i]), int(edges[i + 1]))
        assert frames[i].sum() == len(part)
        assert frames[i, 1].sum() == int(part.p.sum())


@settings(max_examples=40, deadline=None)
@given(w=st.integers(1, 700), h=st.integers(1, 500), ow=st.integers(1, 300), oh=st.integers(1, 300),
       n=st.integers(0, 400), seed=st.integers(0, 2**31), mode=st.sampled_from(list(pev.ResizeMode)))
def test_resize_modes_conserve_or_crop_counts(*, w: int, h: int, ow: int, oh: int, n: int, seed: int,
                                              mode: pev.ResizeMode) -> None:
    rng = np.random.default_rng(seed)
    b = pev.EventBatch(rng.integers(0, 1000, n), rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n),
                       w, h)
    f = pev.events_to_frames(b, [0, 500, 1000], (ow, oh), mode=mode)  # unsorted batch: slow path
    lx, ly = pev.coordinate_luts(w, h, (ow, oh), mode)
    inside = (lx[b.x] >= 0) & (ly[b.y] >= 0)
    assert f.sum() == int(inside.sum())
    if mode is pev.ResizeMode.SCALE:
        assert f.sum() == n  # scaling keeps every event; CROP and FIT drop the cropped margins
    sorted_b = b.select(np.argsort(b.t_ns, kind="stable"))
    np.testing.assert_array_equal(pev.events_to_frames(sorted_b, [0, 500, 1000], (ow, oh), mode=mode), f)


@settings(max_examples=40, deadline=None)
@given(w=st.integers(1, 400), h=st.integers(1, 300), ow=st.integers(1, 200), oh=st.integers(1, 200),
       n=st.integers(0, 600), seed=st.integers(0, 2**31), mode=st.sampled_from(list(pev.ResizeMode)))
def test_downscaling_sensor_resolution_counts_equals_framing_directly(*, w: int, h: int, ow: int, oh: int, n: int,
                                                                       seed: int, mode: pev.ResizeMode) -> None:
    rng = np.random.default_rng(seed)
    b = pev.EventBatch(np.sort(rng.integers(0, 21, n)), rng.integers(0, w, n), rng.integers(0, h, n),
                       rng.integers(0, 2, n), w, h)
    edges = [0, 7, 14, 21]
    sensor = pev.events_to_frames(b, edges, (w, h))
    np.testing.assert_array_equal(pev.downscale_counts(sensor, (ow, oh), mode),
                                  pev.events_to_frames(b, edges, (ow, oh), mode=mode))


@settings(max_examples=60, deadline=None)
@given(w=st.integers(1, 400), h=st.integers(1, 300), ow=st.integers(1, 120), oh=st.integers(1, 120),
       n=st.integers(0, 500), seed=st.integers(0, 2**31), mode=st.sampled_from(list(pev.ResizeMode)),
       sort=st.booleans(), bins=st.integers(1, 5))
def test_framing_equals_counting_each_event(*, w: int, h: int, ow: int, oh: int, n: int, seed: int,
                                            mode: pev.ResizeMode, sort: bool, bins: int) -> None:
    """The compiled framing pass against the definition, event by event: each event inside ``[edges[0],
    edges[-1])`` and not cropped adds 1 to its bin, polarity and mapped cell (events outside the edges included)."""
    rng = np.random.default_rng(seed)
    t = rng.integers(-50, 1050, n)
    b = pev.EventBatch(np.sort(t) if sort else t, rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n),
                       w, h)
    edges = np.unique(np.concatenate([[0, 1000], rng.integers(1, 1000, bins - 1)]))
    lx, ly = pev.coordinate_luts(w, h, (ow, oh), mode)
    want = np.zeros((len(edges) - 1, 2, oh, ow), np.float32)
    for ti, xi, yi, pi in zip(b.t_ns.tolist(), b.x.tolist(), b.y.tolist(), b.p.tolist(), strict=True):
        k = int(np.searchsorted(edges, ti, side="right")) - 1
        if 0 <= k < len(edges) - 1 and lx[xi] >= 0 and ly[yi] >= 0:
            want[k, pi, ly[yi], lx[xi]] += 1
    np.testing.assert_array_equal(pev.events_to_frames(b, edges, (ow, oh), mode=mode), want)


def test_framing_refuses_events_outside_the_sensor() -> None:
    b = pev.EventBatch(np.zeros(2), [0, 5], [0, 0], [0, 1], 4, 4)  # x = 5 on a 4-pixel-wide sensor
    with pytest.raises(DecodeError, match="outside"):
        pev.events_to_frames(b, [0, 1], (2, 2))


def test_normalisation_and_clip() -> None:
    b = pev.EventBatch(np.zeros(7), [0, 0, 0, 0, 0, 1, 1], [0] * 7, [1] * 7, 2, 1)
    raw = pev.events_to_frames(b, [0, 1], (2, 1))
    assert raw[0, 1].tolist() == [[5.0, 2.0]]
    mx = pev.events_to_frames(b, [0, 1], (2, 1), normalize=pev.Normalization.MAX)
    np.testing.assert_allclose(mx[0, 1], [[1.0, 0.4]])
    cl = pev.events_to_frames(b, [0, 1], (2, 1), clip=4, normalize=pev.Normalization.CLIP)
    np.testing.assert_allclose(cl[0, 1], [[1.0, 0.5]])
    with pytest.raises(DecodeError, match="clip"):
        pev.events_to_frames(b, [0, 1], (2, 1), normalize=pev.Normalization.CLIP)
    with pytest.raises(DecodeError, match="increasing"):
        pev.events_to_frames(b, [1, 1], (2, 1))


