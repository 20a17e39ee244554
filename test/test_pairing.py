"""Colour/depth pairing by stamp (``RgbdPairer``): the one rule the node, replay and dataset building share."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.perception.pairing import RgbdPairer

SLOP, WAIT = 5, 100


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.booleans(), st.integers(-8, 8)), max_size=60),
       st.integers(1, 6))
def test_every_colour_frame_leaves_once_in_order_with_a_depth_only_within_slop(frames, shuffle: int) -> None:
    """Colour frames at increasing stamps, some with a depth frame whose stamp is off by up to 8, arriving before
    or after the colour frame: each colour frame leaves exactly once, in stamp order, with a depth whose stamp is
    within the slop (or none), and counters add up."""
    stamps = sorted({s for s, _, _ in frames})
    offsets = {s: (has, off) for s, has, off in frames}
    pairer: RgbdPairer[int, int] = RgbdPairer(slop_ns=SLOP, max_wait_ns=WAIT, max_pending=16)
    out = []
    for i, s in enumerate(stamps):
        has, off = offsets[s]
        depth_first = (i % shuffle) == 0
        if has and depth_first:
            out += pairer.push_depth(s + off, s + off)
        out += pairer.push_colour(s, s)
        if has and not depth_first:
            out += pairer.push_depth(s + off, s + off)
    out += pairer.flush()
    assert [p.stamp_ns for p in out] == stamps and [p.colour for p in out] == stamps
    for p in out:
        assert p.depth is None or abs(p.depth - p.stamp_ns) <= SLOP
    c = pairer.counters
    assert c.colour_in == len(stamps) == c.paired + c.colour_without_depth
    assert c.depth_in == sum(1 for s in stamps if offsets[s][0])


def test_exact_pairs_and_a_late_depth_that_never_comes() -> None:
    pairer: RgbdPairer[str, str] = RgbdPairer(slop_ns=0, max_wait_ns=WAIT)
    assert pairer.push_colour(10, "c10") == []  # waits for its depth
    (p,) = pairer.push_depth(10, "d10")
    assert (p.stamp_ns, p.colour, p.depth) == (10, "c10", "d10")
    assert pairer.push_colour(20, "c20") == []
    assert pairer.push_colour(50, "c50") == []
    # the stream moved more than max_wait past 20: it leaves without depth, 50 keeps waiting behind nothing
    out = pairer.push_colour(130, "c130")
    assert [(p.stamp_ns, p.depth) for p in out] == [(20, None)]
    assert pairer.counters.colour_without_depth == 1
