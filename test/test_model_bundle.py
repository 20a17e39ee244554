"""Model bundles: round trip, and refusal of corrupt, truncated, replaced or mismatched files (naming the file)."""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hstnn_ros.model import (
    HSTNN,
    BundleError,
    Component,
    HSTNNConfig,
    hstnn_from_component,
    load_bundle,
    save_bundle,
)
from hstnn_ros.model.bundle import JSON_NAME, WEIGHTS_NAME

torch.set_num_threads(1)


def _model(**kw):
    torch.manual_seed(0)
    raw = {"input_size": 6, "hidden": [[4, 3], [2, 5]], "num_classes": 4, "input_spiking": 2,
           "spiking_kind": "alif", "nonspiking_kind": "lstm", "v_th": 0.2}
    raw.update(kw)
    return HSTNN(HSTNNConfig.from_dict(raw))


@pytest.fixture
def saved(tmp_path):
    m = _model()
    extra = Component(kind="scnn", config={"channels": [2, 8]}, state={"conv.weight": torch.randn(8, 2, 3, 3)})
    meta = {"snn_ratio": 0.5, "kept": [[0, 2], [1]], "places": 4}
    save_bundle(tmp_path / "b", {"hstnn": m, "scnn": extra}, meta)
    return tmp_path / "b", m, extra, meta


def test_round_trip_gives_identical_model_and_metadata(saved):
    path, m, extra, meta = saved
    b = load_bundle(path)
    assert b.metadata == meta
    assert set(b.components) == {"hstnn", "scnn"}
    assert torch.equal(b.components["scnn"].state["conv.weight"], extra.state["conv.weight"])
    m2 = b.hstnn()
    x = torch.rand(3, 5, 6)
    assert torch.equal(m.eval()(x), m2(x))
    assert m2.config == m.config
    doc = json.loads((path / JSON_NAME).read_text())
    assert doc["format"] == "hstnn_ros.bundle" and len(doc["weights"]["sha256"]) == 64
    assert b"pickle" not in (path / WEIGHTS_NAME).read_bytes()[:64]


def test_double_precision_round_trip(tmp_path):
    m = _model().double()
    save_bundle(tmp_path, {"hstnn": m})
    m2 = load_bundle(tmp_path).hstnn()
    assert m2.readout.weight.dtype == torch.float64
    x = torch.rand(2, 3, 6, dtype=torch.float64)
    assert torch.equal(m.eval()(x), m2(x))


def test_flipped_byte_is_refused_naming_the_file(saved):
    path = saved[0]
    w = path / WEIGHTS_NAME
    data = bytearray(w.read_bytes())
    data[-5] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"weights\.safetensors.*SHA-256"):
        load_bundle(path)


def test_truncated_weights_are_refused(saved):
    path = saved[0]
    w = path / WEIGHTS_NAME
    w.write_bytes(w.read_bytes()[:100])
    with pytest.raises(BundleError, match=r"weights\.safetensors.*truncated"):
        load_bundle(path)


def test_corrupt_or_foreign_json_is_refused(saved):
    path = saved[0]
    j = path / JSON_NAME
    text = j.read_text()
    j.write_text(text[: len(text) // 2])
    with pytest.raises(BundleError, match=r"bundle\.json.*not valid JSON"):
        load_bundle(path)
    doc = json.loads(text)
    doc["format_version"] = 99
    j.write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="format_version 99"):
        load_bundle(path)
    doc["format_version"], doc["format"] = 1, "something.else"
    j.write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="format"):
        load_bundle(path)
    with pytest.raises(BundleError, match="no bundle description"):
        load_bundle(path / "missing")


def test_shapes_that_disagree_with_the_description_are_refused(saved):
    path = saved[0]
    j = path / JSON_NAME
    doc = json.loads(j.read_text())
    doc["components"]["scnn"]["tensors"]["conv.weight"]["shape"] = [8, 2, 5, 5]
    j.write_text(json.dumps(doc))
    with pytest.raises(BundleError, match=r"conv\.weight"):
        load_bundle(path)


def test_config_that_does_not_match_the_weights_is_refused(tmp_path):
    c = _model().to_component()
    c.config["hidden"] = [{"n_snn": 5, "n_rnn": 3}, {"n_snn": 2, "n_rnn": 5}]
    save_bundle(tmp_path, {"hstnn": c})
    with pytest.raises(BundleError, match=r"bundle\.json: tensor .layers\.0\.snn\..* the config needs"):
        load_bundle(tmp_path).hstnn()
    with pytest.raises(BundleError, match="kind"):
        hstnn_from_component(Component("scnn", {}, {}))
    bad = _model().to_component()
    bad.config["decay"] = 7.0
    with pytest.raises(BundleError, match="invalid HSTNN config"):
        hstnn_from_component(bad)


def test_unsaveable_inputs_are_refused(tmp_path):
    with pytest.raises(BundleError, match="component names"):
        save_bundle(tmp_path, {"a.b": _model()})
    with pytest.raises(BundleError, match="JSON"):
        save_bundle(tmp_path, {"hstnn": _model()}, {"when": object()})
    with pytest.raises(BundleError, match="not a Component"):
        save_bundle(tmp_path, {"x": 3})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from([JSON_NAME, WEIGHTS_NAME]), pos=st.floats(0, 1, exclude_max=True),
       mask=st.integers(1, 255), cut=st.booleans())
def test_any_corruption_is_refused_or_harmless(tmp_path, which, pos, mask, cut):
    """Flipping any bits of, or truncating, either file yields BundleError or (JSON only, e.g. a changed metadata
    digit) a bundle that still loads; never another exception, and never different weights."""
    path = tmp_path / "b"
    m = _model()
    save_bundle(path, {"hstnn": m}, {"note": "x"})
    f = path / which
    data = bytearray(f.read_bytes())
    i = int(pos * len(data))
    if cut:
        data = data[:i]
    else:
        data[i] ^= mask
    f.write_bytes(bytes(data))
    try:
        b = load_bundle(path)
        m2 = b.hstnn()
    except BundleError as exc:
        assert str(path) in str(exc)
        return
    assert which == JSON_NAME
    for k, v in m.state_dict().items():
        assert torch.equal(m2.state_dict()[k], v)


def test_build_uses_the_builders_it_is_given(saved):
    """An HSTNN builds by itself; any other kind only with the caller's builders (no registry filled by imports)."""
    path, m, extra, _ = saved
    b = load_bundle(path)
    x = torch.rand(2, 3, 6)
    assert torch.equal(b.build("hstnn")(x), m.eval()(x))

    def conv_builder(c):
        conv = torch.nn.Conv2d(*c.config["channels"], 3, bias=False)
        conv.load_state_dict({"weight": c.state["conv.weight"]})
        return conv

    assert torch.equal(b.build("scnn", {"scnn": conv_builder}).weight, extra.state["conv.weight"])
    broken = {"scnn": lambda c: conv_builder({**c.__dict__})}
    with pytest.raises(BundleError, match=r"bundle\.json: component 'scnn' \(scnn\) cannot be built"):
        b.build("scnn", broken)
    with pytest.raises(BundleError, match="no builder for component kind 'scnn'"):
        b.build("scnn")
    with pytest.raises(BundleError, match="no component 'cnn'"):
        b.build("cnn")
