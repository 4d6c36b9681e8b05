"""Unit tests for kairos_ros.core.params: schema validation, ROS 2 parameter files, markdown."""
import math
import textwrap

import pytest

from kairos_ros.core.params import (ParameterError, ParamSpec, load_ros_params_yaml, ros_type_name, schema_markdown,
                                    validate_params)

SCHEMA = [
    ParamSpec("rate", "float", 10.0, "loop rate (Hz)", min=0.5, max=100.0),
    ParamSpec("count", "int", 3, "how many", min=1),
    ParamSpec("enabled", "bool", True, "on or off"),
    ParamSpec("mode", "str", "fast", "how", choices=("fast", "safe")),
    ParamSpec("cams", "str_array", ["head"], "camera names"),
    ParamSpec("gains", "float_array", [1.0, 2.0], "gains", min=0.0),
    ParamSpec("ids", "int_array", (1, 2), "ids", choices=(1, 2, 3)),
    ParamSpec("robot", "str", "", "embodiment name", required=True),
]


def ok(**values):
    return validate_params(SCHEMA, {"robot": "single_arm", **values})


def test_defaults_are_filled_in():
    out = ok()
    assert out == {"rate": 10.0, "count": 3, "enabled": True, "mode": "fast", "cams": ["head"],
                   "gains": [1.0, 2.0], "ids": [1, 2], "robot": "single_arm"}
    assert isinstance(out["ids"], list)  # tuple defaults come back as lists


def test_default_lists_are_copies():
    out = ok()
    out["cams"].append("wrist")
    assert ok()["cams"] == ["head"]


def test_none_means_default():
    assert ok(rate=None)["rate"] == 10.0


def test_int_accepted_for_float_and_converted():
    out = ok(rate=20, gains=[0, 3])
    assert out["rate"] == 20.0 and isinstance(out["rate"], float)
    assert out["gains"] == [0.0, 3.0] and all(isinstance(g, float) for g in out["gains"])


@pytest.mark.parametrize("name,value,msg", [
    ("count", True, "parameter 'count' = True must be an integer"),
    ("count", 2.0, "parameter 'count' = 2.0 must be an integer"),
    ("count", "3", "parameter 'count' = '3' must be an integer"),
    ("rate", False, "parameter 'rate' = False must be a number"),
    ("rate", "fast", "must be a number"),
    ("rate", math.nan, "parameter 'rate' = nan must be finite"),
    ("rate", math.inf, "must be finite"),
    ("enabled", 1, "parameter 'enabled' = 1 must be a bool"),
    ("enabled", "true", "must be a bool"),
    ("mode", 3, "parameter 'mode' = 3 must be a string"),
    ("cams", "head", "parameter 'cams' = 'head' must be a list"),
    ("cams", ["head", 3], "must be a string"),
    ("ids", [1, True], "must be an integer"),
])
def test_type_errors_name_parameter_and_value(name, value, msg):
    with pytest.raises(ParameterError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        ok(**{name: value})


@pytest.mark.parametrize("name,value,msg", [
    ("rate", 0.4, "parameter 'rate' = 0.4 is out of range: must be >= 0.5"),
    ("rate", 100.5, "parameter 'rate' = 100.5 is out of range: must be <= 100.0"),
    ("count", 0, "parameter 'count' = 0 is out of range: must be >= 1"),
    ("gains", [1.0, -0.1], r"parameter 'gains' = \[1.0, -0.1\] is out of range: must be >= 0.0"),
    ("mode", "slow", r"parameter 'mode' = 'slow' must be one of \['fast', 'safe'\]"),
    ("ids", [1, 4], r"parameter 'ids' = \[1, 4\] must be one of \[1, 2, 3\]"),
])
def test_range_and_choices(name, value, msg):
    with pytest.raises(ParameterError, match=msg):
        ok(**{name: value})


def test_range_bounds_are_inclusive():
    assert ok(rate=0.5)["rate"] == 0.5 and ok(rate=100)["rate"] == 100.0 and ok(count=1)["count"] == 1


def test_required():
    with pytest.raises(ParameterError, match=r"parameter 'robot' is required \(embodiment name\)"):
        validate_params(SCHEMA, {})
    with pytest.raises(ParameterError, match="'robot' is required"):
        validate_params(SCHEMA, {"robot": ""})
    req_list = [ParamSpec("cams", "str_array", [], "cameras", required=True)]
    with pytest.raises(ParameterError, match="'cams' is required"):
        validate_params(req_list, {"cams": []})
    req_int = [ParamSpec("n", "int", 0, "n", required=True)]
    assert validate_params(req_int, {}) == {"n": 0}  # 0 is a value, not "missing"


def test_unknown_parameter_lists_known():
    with pytest.raises(ParameterError, match=r"unknown parameter 'speed' \(known: \['cams', 'count'"):
        ok(speed=1.0)


def test_spec_type_checked_and_ros_type_names():
    with pytest.raises(ValueError, match="parameter 'x': unknown type 'double'"):
        ParamSpec("x", "double", 0.0, "")
    assert [ros_type_name(s) for s in SCHEMA[:7]] == ["double", "integer", "bool", "string", "string_array",
                                                       "double_array", "integer_array"]


# -- ROS 2 parameter files -----------------------------------------------------------------------

def write(tmp_path, text):
    path = tmp_path / "params.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_node_section_and_nested_keys(tmp_path):
    path = write(tmp_path, """
        perception:
          ros__parameters:
            rate: 15.0
            layout:
              name: robotwin
              tile: {width: 160, height: 128}
        other_node:
          ros__parameters:
            rate: 99.0
    """)
    assert load_ros_params_yaml(path, "perception") == {"rate": 15.0, "layout.name": "robotwin",
                                                        "layout.tile.width": 160, "layout.tile.height": 128}
    assert load_ros_params_yaml(path, "other_node") == {"rate": 99.0}
    assert load_ros_params_yaml(path, "absent") == {}


def test_wildcard_and_namespaced_keys_merge_in_file_order(tmp_path):
    path = write(tmp_path, """
        /**:
          ros__parameters:
            use_sim_time: true
            rate: 1.0
        /robot1/perception:
          ros__parameters:
            rate: 2.0
        robot2/perception/:
          ros__parameters:
            count: 4
        /robot1/perception_extra:
          ros__parameters:
            rate: 3.0
    """)
    assert load_ros_params_yaml(path, "perception") == {"use_sim_time": True, "rate": 2.0, "count": 4}


def test_bare_double_star_wildcard(tmp_path):
    path = write(tmp_path, """
        "**":
          ros__parameters: {a: 1}
    """)
    assert load_ros_params_yaml(path, "anything") == {"a": 1}


def test_file_errors(tmp_path):
    with pytest.raises(ParameterError, match="not a ROS 2 parameter file"):
        load_ros_params_yaml(write(tmp_path, "- 1\n- 2\n"), "n")
    with pytest.raises(ParameterError, match="section 'n' has no 'ros__parameters' mapping"):
        load_ros_params_yaml(write(tmp_path, "n:\n  rate: 1.0\n"), "n")
    with pytest.raises(ParameterError, match="section '/\\*\\*' has no 'ros__parameters'"):
        load_ros_params_yaml(write(tmp_path, "/**: null\n"), "n")
    assert load_ros_params_yaml(write(tmp_path, ""), "n") == {}
    # sections of other nodes are not inspected
    assert load_ros_params_yaml(write(tmp_path, "other:\n  rate: 1.0\n"), "n") == {}


def test_loaded_file_validates_through_the_schema(tmp_path):
    path = write(tmp_path, """
        node:
          ros__parameters: {robot: dual_arm, rate: 30, count: 0}
    """)
    with pytest.raises(ParameterError, match="'count' = 0 is out of range"):
        validate_params(SCHEMA, load_ros_params_yaml(path, "node"))


# -- markdown ------------------------------------------------------------------------------------

def test_schema_markdown():
    schema = SCHEMA + [ParamSpec("seed", "int", 0, "random seed", read_only=True, max=10)]
    md = schema_markdown(schema)
    lines = md.rstrip("\n").split("\n")
    assert md.endswith("\n") and len(lines) == 2 + len(schema)
    assert lines[0] == "| name | type | default | range / choices | description |"
    assert "| `rate` | float | `10.0` | [0.5, 100.0] | loop rate (Hz) |" in lines
    assert "| `mode` | str | `'fast'` | `fast`, `safe` | how |" in lines
    assert "| `ids` | int_array | `(1, 2)` | `1`, `2`, `3` | ids |" in lines
    assert "| `robot` | str | (required) |  | embodiment name |" in lines
    assert "| `seed` | int | `0` | [, 10] | random seed Read-only. |" in lines
    assert "| `count` | int | `3` | [1, ] | how many |" in lines
