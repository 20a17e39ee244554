"""The integer kernels reproduce BiMap's C++ behaviour simulator bit for bit (golden vectors in shared/data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hstnn_ros.tianjicx.enums import FireType, LutWidth, ResetMode
from hstnn_ros.tianjicx.errors import TianjicxError
from hstnn_ros.tianjicx.primitives import (
    LifParams,
    p04_matvec,
    p04_reference,
    p07_lut,
    p07_output_words,
    p08_lif,
    p08_output_layout,
    pack_int8_words,
    pack_p04_input,
    pack_p04_weights,
    pack_v_state,
    unpack_int8_words,
    unpack_v_state,
)

GOLDEN = Path(__file__).resolve().parents[2] / "shared" / "data" / "tianjicx_golden"


def _cases(prim: str) -> list[dict]:
    """Cases of one primitive from cases.json (empty list when the data is absent; the fixture then skips)."""
    if not (GOLDEN / "cases.json").is_file():
        return [{"case": f"missing-{prim}"}]
    return [c for c in json.loads((GOLDEN / "cases.json").read_text())["cases"] if c["primitive"] == prim]


def _load(shared_data: Path, case: dict) -> dict[str, np.ndarray]:
    folder = shared_data / "tianjicx_golden"
    with np.load(folder / case["file"]) as z:
        arrays = {k: z[k] for k in z.files}
    # Every array listed in cases.json must be there with the stated dtype and shape.
    for name, (dtype, shape) in case["arrays"].items():
        assert arrays[name].dtype == np.dtype(dtype), name
        assert list(arrays[name].shape) == shape, name
    return arrays


def test_all_28_cases_are_covered(shared_data: Path) -> None:
    cases = json.loads((shared_data / "tianjicx_golden" / "cases.json").read_text())["cases"]
    assert len(cases) == 28
    assert sum(len(_cases(p)) for p in ("P04", "P07", "P08")) == 28


@pytest.mark.parametrize("case", _cases("P04"), ids=lambda c: c["case"])
def test_p04_golden(shared_data: Path, case: dict) -> None:
    a = _load(shared_data, case)
    out = p04_matvec(a["x"], a["weights"], a["bias"])
    np.testing.assert_array_equal(out, a["output"])
    np.testing.assert_array_equal(p04_reference(a["x"], a["weights"], a["bias"]), a["output"])
    np.testing.assert_array_equal(pack_p04_input(a["x"]), a["x_words"])
    np.testing.assert_array_equal(pack_p04_weights(a["weights"]), a["weights_words"])
    # Batched call gives the same rows.
    batch = p04_matvec(np.stack([a["x"], a["x"]]), a["weights"], a["bias"])
    np.testing.assert_array_equal(batch[1], a["output"])


def test_p04_saturation_order_differs_from_final_clip(shared_data: Path) -> None:
    case = next(c for c in _cases("P04") if c["case"] == "p04_sat_order_rails")
    a = _load(shared_data, case)
    exact = a["bias"].astype(np.int64) + a["x"].astype(np.int64) @ a["weights"].astype(np.int64)
    assert not np.array_equal(np.clip(exact, -(2**31), 2**31 - 1), a["output"])
    np.testing.assert_array_equal(p04_matvec(a["x"], a["weights"], a["bias"]), a["output"])


@pytest.mark.parametrize("case", _cases("P07"), ids=lambda c: c["case"])
def test_p07_golden(shared_data: Path, case: dict) -> None:
    a = _load(shared_data, case)
    out = p07_lut(a["x"], a["table"], case["lut_width_bits"], case["shift"], case["neuron_real_num"])
    assert out.dtype == a["output"].dtype
    np.testing.assert_array_equal(out, a["output"])
    np.testing.assert_array_equal(p07_output_words(out), a["output_words"])


def _lif_params(case: dict) -> LifParams:
    return LifParams(
        v_threshold=case["v_threshold"],
        v_floor=case["v_floor"],
        reset_value=case["reset_value"],
        reset_subtract_dv=case["reset_subtract_dv"],
        reset_mode=ResetMode(case["reset_mode"]),
        leak_multiplicative_enable=bool(case["leak_multiplicative_enable"]),
        leak_alpha_256=case["leak_alpha_256"],
        leak_beta=case["leak_beta"],
        theta_decay_enable=bool(case["theta_decay_enable"]),
        theta_alpha_256=case["theta_alpha_256"],
        theta_beta=case["theta_beta"],
        theta_increment=case["theta_increment"],
        refractory_steps=case["refractory_steps"],
        fire_type=FireType(case["fire_type"]),
        seed=case["seed"],
        time_window_count=case["time_window_count"],
        time_window_length=case["time_window_length"],
        v_init=case["v_init"],
    )


@pytest.mark.parametrize("case", _cases("P08"), ids=lambda c: c["case"])
def test_p08_golden_12_steps(shared_data: Path, case: dict) -> None:
    """Run all 12 steps from the loaded initial state with our own state propagation."""
    a = _load(shared_data, case)
    assert not a["vm_mask"].any()
    params = _lif_params(case)
    state, vtheta = a["state_in"][0], a["vtheta_in"][0]
    v0, r0 = unpack_v_state(state)
    np.testing.assert_array_equal(v0, a["v_in"][0])
    np.testing.assert_array_equal(r0, a["refractory_in"][0])
    for t in range(case["steps"]):
        step = p08_lif(state, vtheta, a["uin"][t], params)
        np.testing.assert_array_equal(step.state, a["state_out"][t], err_msg=f"state step {t}")
        v, r = unpack_v_state(step.state)
        np.testing.assert_array_equal(v, a["v_out"][t])
        np.testing.assert_array_equal(r, a["refractory_out"][t])
        np.testing.assert_array_equal(step.vtheta, a["vtheta_out"][t], err_msg=f"vtheta step {t}")
        laid = p08_output_layout(step.output, case["group_num"])
        np.testing.assert_array_equal(laid, a["output"][t], err_msg=f"output step {t}")
        np.testing.assert_array_equal(pack_int8_words(laid).reshape(-1), a["output_words"][t])
        np.testing.assert_array_equal(step.para_out, a["para_out"][t])
        state, vtheta = step.state, step.vtheta


def test_p08_batched_equals_single(shared_data: Path) -> None:
    case = next(c for c in _cases("P08") if c["case"] == "p08_reset2_sub_dv_adaptive_theta")
    a = _load(shared_data, case)
    params = _lif_params(case)
    state = np.stack([a["state_in"][0], a["state_in"][0]])
    vtheta = np.stack([a["vtheta_in"][0], a["vtheta_in"][0]])
    for t in range(case["steps"]):
        step = p08_lif(state, vtheta, np.stack([a["uin"][t], a["uin"][t]]), params)
        np.testing.assert_array_equal(step.state[1], a["state_out"][t])
        np.testing.assert_array_equal(step.vtheta[0], a["vtheta_out"][t])
        state, vtheta = step.state, step.vtheta


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(np.int8, st.integers(0, 40)),
    data=st.data(),
)
def test_p04_fast_path_equals_literal_loop(x: np.ndarray, data: st.DataObject) -> None:
    nf = data.draw(st.integers(1, 40))
    w = data.draw(hnp.arrays(np.int8, (x.shape[0], nf)))
    bias = data.draw(hnp.arrays(np.int32, (nf,), elements=st.integers(-(2**31), 2**31 - 1)))
    np.testing.assert_array_equal(p04_matvec(x, w, bias), p04_reference(x, w, bias))


@given(hnp.arrays(np.int8, st.integers(0, 70)))
def test_int8_packing_round_trips(v: np.ndarray) -> None:
    np.testing.assert_array_equal(unpack_int8_words(pack_int8_words(v), v.shape[0]), v)


@given(
    hnp.arrays(np.int32, 20, elements=st.integers(-(2**27), 2**27 - 1)),
    hnp.arrays(np.int32, 20, elements=st.integers(0, 15)),
)
def test_state_packing_round_trips(v: np.ndarray, r: np.ndarray) -> None:
    v2, r2 = unpack_v_state(pack_v_state(v, r))
    np.testing.assert_array_equal(v2, v)
    np.testing.assert_array_equal(r2, r)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(TianjicxError, match="4 bits"):
        LifParams(v_threshold=1, refractory_steps=16)
    with pytest.raises(TianjicxError, match="P04"):
        p04_matvec(np.zeros(3, np.int8), np.zeros((4, 2), np.int8))
    with pytest.raises(TianjicxError, match="entries"):
        p07_lut(np.zeros((1, 4), np.int32), np.zeros(10, np.int32), LutWidth.BITS_4, 0)
