"""The node's parameter table (ROS-free): defaults are the engine's own, impossible values and unknown names are
refused with one message naming the parameter, the value and the valid ones; the shipped YAML files are valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hstnn_ros.runtime.engine import EngineConfig
from hstnn_ros.runtime.enums import Preset
from hstnn_ros.runtime.errors import RuntimeEngineError
from hstnn_ros.runtime.params import PARAMS, PARAMS_BY_NAME, node_settings

REPO = Path(__file__).resolve().parents[1]


def test_defaults_are_the_engines_own() -> None:
    s = node_settings({})
    assert s.engine == EngineConfig() and s.preset is Preset.DEFAULT and not s.use_depth
    for p in PARAMS:
        assert p.check(p.default) == p.default, p.name


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("drop_policy", "bogus", "drop_oldest | drop_newest"),
    ("top_k", 0, "int in [1, 1000]"),
    ("environment", "night", "env1 | env2 | env3 | default | auto | events_only"),
    ("reorder_delay_ms", -5.0, "float in [0, 10000]"),
    ("top_k", 2.5, "not an integer"),
    ("use_depth", "yes", "not a bool"),
    ("event_msg_type", "sensor_msgs/msg/Image", "EventPacket"),
])
def test_bad_values_name_the_parameter_and_the_valid_ones(name: str, value: object, fragment: str) -> None:
    with pytest.raises(RuntimeEngineError, match=name) as info:
        node_settings({name: value})
    assert fragment in str(info.value) and repr(value) in str(info.value)


def test_unknown_parameters_are_refused_not_ignored() -> None:
    with pytest.raises(RuntimeEngineError, match=r"unknown parameter\(s\) \['bin_ms'\].*comes from the model bundle"):
        node_settings({}, overridden={"bin_ms", "top_k", "use_sim_time", "qos_overrides./events.reliability"})


def test_engine_rules_that_span_parameters_are_reported() -> None:
    with pytest.raises(RuntimeEngineError, match="time_jump_ns > reorder_delay_ns"):
        node_settings({"reorder_delay_ms": 2000.0, "time_jump_ms": 1000.0})


@pytest.mark.parametrize("name", ["place_recognition.yaml", "replay.yaml"])
def test_shipped_parameter_files_are_valid(name: str) -> None:
    values = yaml.safe_load((REPO / "config" / name).read_text())["/place_recognition_node"]["ros__parameters"]
    assert set(values) <= set(PARAMS_BY_NAME)
    node_settings(values, overridden=set(values))
