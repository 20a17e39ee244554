"""Core mapping: strategy choice, padding, resource limits and refusals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hstnn_ros.tianjicx.enums import MappingStrategy, PopulationKind
from hstnn_ros.tianjicx.errors import TianjicxError
from hstnn_ros.tianjicx.mapping import CoreLimits, PopulationShape, map_network

SNN, RNN, OUT = PopulationKind.SNN, PopulationKind.RNN, PopulationKind.READOUT


def _net(f_in: int, hidden: list[tuple[int, int]], classes: int) -> list[list[PopulationShape]]:
    layers, fin = [], f_in
    for i, (ns, nr) in enumerate(hidden):
        layers.append([PopulationShape(i, SNN, ns, fin), PopulationShape(i, RNN, nr, fin + nr)])
        fin = ns + nr
    layers.append([PopulationShape(len(hidden), OUT, classes, fin)])
    return layers


def test_small_layers_get_fixed_cores_one_per_population() -> None:
    m = map_network(_net(64, [(40, 24), (16, 48)], 10))
    assert [g.strategy for g in m.groups] == [MappingStrategy.FIXED] * 3
    assert [len(g.cores) for g in m.groups] == [2, 2, 1]
    c = m.groups[0].cores[0]
    assert c.fan_in_padded % 16 == 0 and c.columns_padded % 32 == 0
    assert c.columns_padded == 64 and m.groups[0].cores[1].fan_in_padded == 96  # 64 + 24 recurrent -> 96


def test_paper_sized_layers_get_variable_cores_proportional_to_neurons() -> None:
    m = map_network(_net(1024, [(375, 125), (125, 375)], 100))
    g0 = m.groups[0]
    assert g0.strategy == MappingStrategy.VARIABLE
    snn = [c for c in g0.cores if c.kind == SNN]
    rnn = [c for c in g0.cores if c.kind == RNN]
    assert len(snn) > len(rnn)  # more SNN neurons -> more SNN cores in layer 0
    g1 = m.groups[1]
    assert sum(c.kind == RNN for c in g1.cores) > sum(c.kind == SNN for c in g1.cores)


@settings(max_examples=40, deadline=None)
@given(
    f_in=st.integers(1, 2000),
    hidden=st.lists(st.tuples(st.integers(0, 600), st.integers(0, 600)), min_size=1, max_size=3),
    classes=st.integers(1, 120),
)
def test_every_neuron_placed_once_and_every_core_within_memory(f_in: int, hidden: list, classes: int) -> None:
    try:
        m = map_network(_net(f_in, hidden, classes))
    except TianjicxError as e:  # refusals must say by how much
        assert "exceed" in str(e)
        return
    lim = m.limits
    assert len(m.cores) <= lim.cores_per_chip
    for c in m.cores:
        assert c.memory_bytes <= lim.memory_bytes
        assert c.fan_in_padded % 16 == 0 and c.columns_padded % 32 == 0
    by_pop: dict[str, list[tuple[int, int]]] = {}
    for c in m.cores:
        by_pop.setdefault(c.population, []).append(c.columns)
    for i, (ns, nr) in enumerate(hidden):
        for name, n in ((f"layer{i}.snn", ns), (f"layer{i}.rnn", nr)):
            spans = sorted(by_pop.get(name, []))
            covered = [j for lo, hi in spans for j in range(lo, hi)]
            assert covered == list(range(n))


def test_fan_in_beyond_core_memory_is_refused_naming_layer_and_excess() -> None:
    with pytest.raises(TianjicxError, match=r"layer0\.snn: fan-in 5000 .* by \d+ bytes"):
        map_network(_net(5000, [(32, 32)], 10))


def test_chip_beyond_160_cores_is_refused_with_the_excess() -> None:
    with pytest.raises(TianjicxError, match=r"needs \d+ cores .* by \d+"):
        map_network(_net(2048, [(3000, 0), (3000, 0)], 10))


def test_forced_fixed_mapping_refuses_a_layer_that_needs_several_cores() -> None:
    with pytest.raises(TianjicxError, match=r"layer0\.snn: 2000 neurons exceed"):
        map_network(_net(1024, [(2000, 32)], 10), strategy=MappingStrategy.FIXED)


def test_smaller_memory_needs_more_cores() -> None:
    net = _net(512, [(256, 256)], 10)
    big = map_network(net, strategy=MappingStrategy.VARIABLE)
    small = map_network(net, limits=CoreLimits(memory_bytes=48 * 1024), strategy=MappingStrategy.VARIABLE)
    assert len(small.cores) > len(big.cores)
