"""core.params: schema types and aliases, defaults, validation messages (types, ranges, choices,
required), ROS 2 parameter files (sections, wildcards, namespaces, errors), Markdown."""
import math
import textwrap

import pytest

from kairos_ros.core.params import (ParameterError, ParamSpec, load_ros_params_yaml, ros_type_name, schema_markdown,
                                    validate_params)

SCHEMA = [
    ParamSpec("rate_hz", "float", 10.0, "control rate", min=0.1, max=1000.0),
    ParamSpec("layout", "str", "single", "composed layout", choices=["single", "side_by_side", "robotwin"]),
    ParamSpec("queue_size", "int", 10, "sync queue", min=1),
    ParamSpec("camera_topics", "str_array", ["/cam"], "image topics"),
    ParamSpec("use_cv_bridge", "bool", True, "use cv_bridge"),
    ParamSpec("gains", "float_array", [1.0], "gains", min=0.0),
    ParamSpec("ids", "int_array", [], "ids", min=0, max=9),
]


@pytest.mark.parametrize("values,match", [
    ({"rate_hz": -1.0}, r"^parameter 'rate_hz' = -1\.0 is out of range: must be >= 0\.1$"),
    ({"layout": "foo"}, r"^parameter 'layout' = 'foo' must be one of \['single', 'side_by_side', 'robotwin'\]$"),
    ({"ratee_hz": 1.0}, r"^unknown parameter 'ratee_hz' \(known: .*\); did you mean 'rate_hz'\?$"),
    ({"zzz": 1}, r"^unknown parameter 'zzz' \(known: \['camera_topics', .*\]\)$"),
    ({"queue_size": 2.0}, r"^parameter 'queue_size' = 2\.0 must be an integer$"),
    ({"queue_size": True}, "must be an integer"),
    ({"rate_hz": True}, "must be a number"),
    ({"use_cv_bridge": "yes"}, r"^parameter 'use_cv_bridge' = 'yes' must be a bool$"),
    ({"gains": [1.0, -2]}, r"^parameter 'gains' = \[1\.0, -2\] is out of range: must be >= 0\.0 \(element 1 = -2\)$"),
    ({"camera_topics": ["/a", 5]}, r"^parameter 'camera_topics' = \['/a', 5\] must be a string \(element 1 = 5\)$"),
    ({"ids": (3, 10)}, r"= \[3, 10\] is out of range: must be <= 9 \(element 1 = 10\)$"),
    ({"ids": [1.0]}, "must be an integer"),
])
def test_messages_name_parameter_and_value(values, match):
    with pytest.raises(ParameterError, match=match):
        validate_params(SCHEMA, values)


def test_full_dict_with_defaults_and_conversions():
    out = validate_params(SCHEMA, {"rate_hz": 30, "gains": (1, 2.5), "ids": (1, 2)})
    assert out == {"rate_hz": 30.0, "layout": "single", "queue_size": 10, "camera_topics": ["/cam"],
                   "use_cv_bridge": True, "gains": [1.0, 2.5], "ids": [1, 2]}
    assert type(out["rate_hz"]) is float and all(type(g) is float for g in out["gains"])
    out["camera_topics"].append("/other")
    assert SCHEMA[3].default == ["/cam"]  # defaults are copied, never shared


def test_python_types_and_double_array_are_aliases():
    specs = [ParamSpec("a", bool, False, ""), ParamSpec("b", int, 0, ""), ParamSpec("c", float, 0.0, ""),
             ParamSpec("d", str, "", ""), ParamSpec("e", list[str], [], ""), ParamSpec("f", list[float], [], ""),
             ParamSpec("g", list[int], [], ""), ParamSpec("h", "double_array", [0.5], "")]
    assert [s.type for s in specs] == ["bool", "int", "float", "str", "str_array", "float_array", "int_array",
                                       "float_array"]
    assert [ros_type_name(s) for s in specs] == ["bool", "integer", "double", "string", "string_array",
                                                 "double_array", "integer_array", "double_array"]
    with pytest.raises(ValueError, match="parameter 'x': unknown type 'dict'"):
        ParamSpec("x", "dict", {}, "")
    with pytest.raises(ValueError, match="unknown type 'list\\[bool\\]'"):
        ParamSpec("x", list[bool], [], "")


def test_schema_bugs_are_reported_as_such():
    bad_default = [ParamSpec("rate_hz", "float", 0.0, "rate", min=0.1)]
    msg = r"'rate_hz' = 0\.0 is out of range: must be >= 0\.1 \(the schema default\)"
    with pytest.raises(ParameterError, match=msg):
        validate_params(bad_default, {})
    assert validate_params(bad_default, {"rate_hz": 1})["rate_hz"] == 1.0  # a given value is fine
    twice = [ParamSpec("a", "int", 0, ""), ParamSpec("a", "int", 1, "")]
    with pytest.raises(ParameterError, match=r"more than once: \['a'\]"):
        validate_params(twice, {})


def test_required_and_none():
    schema = [ParamSpec("embodiment", "str", "", "robot name", required=True, choices=["single_arm", "dual_arm"]),
              ParamSpec("checkpoint", "str", None, "optional path")]
    with pytest.raises(ParameterError, match=r"^parameter 'embodiment' is required \(robot name\)$"):
        validate_params(schema, {"embodiment": None})
    assert validate_params(schema, {"embodiment": "dual_arm"}) == {"embodiment": "dual_arm", "checkpoint": None}


# -- a schema with a required parameter, arrays with choices, tuple defaults ------------------------

ROBOT_SCHEMA = [
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
    return validate_params(ROBOT_SCHEMA, {"robot": "single_arm", **values})


def test_defaults_are_filled_in():
    out = ok()
    assert out == {"rate": 10.0, "count": 3, "enabled": True, "mode": "fast", "cams": ["head"],
                   "gains": [1.0, 2.0], "ids": [1, 2], "robot": "single_arm"}
    assert isinstance(out["ids"], list)  # tuple defaults come back as lists


def test_none_means_default():
    assert ok(rate=None)["rate"] == 10.0


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
        validate_params(ROBOT_SCHEMA, {})
    with pytest.raises(ParameterError, match="'robot' is required"):
        validate_params(ROBOT_SCHEMA, {"robot": ""})
    req_list = [ParamSpec("cams", "str_array", [], "cameras", required=True)]
    with pytest.raises(ParameterError, match="'cams' is required"):
        validate_params(req_list, {"cams": []})
    req_int = [ParamSpec("n", "int", 0, "n", required=True)]
    assert validate_params(req_int, {}) == {"n": 0}  # 0 is a value, not "missing"


def test_spec_type_checked_and_ros_type_names():
    with pytest.raises(ValueError, match="parameter 'x': unknown type 'double'"):
        ParamSpec("x", "double", 0.0, "")
    assert [ros_type_name(s) for s in ROBOT_SCHEMA[:7]] == ["double", "integer", "bool", "string", "string_array",
                                                       "double_array", "integer_array"]


# -- ROS 2 parameter files -----------------------------------------------------------------------

def write(tmp_path, text, name="params.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


PARAMS_FILE = """
    /**:
      ros__parameters:
        use_sim_time: true
    /**/perception:
      ros__parameters:
        rate_hz: 5.0
    /robot1/perception:
      ros__parameters:
        layout: robotwin
        tile: {width: 160, height: 128}
    /robot2/*:
      ros__parameters:
        queue_size: 3
    perception:
      ros__parameters:
        camera_topics: [/head]
"""


def test_ros_params_file_wildcards_and_namespaces(tmp_path):
    path = write(tmp_path, PARAMS_FILE)
    assert load_ros_params_yaml(path, "/robot1/perception") == {
        "use_sim_time": True, "rate_hz": 5.0, "layout": "robotwin", "tile.width": 160, "tile.height": 128,
        "camera_topics": ["/head"]}
    assert load_ros_params_yaml(path, "/robot2/perception") == {
        "use_sim_time": True, "rate_hz": 5.0, "queue_size": 3, "camera_topics": ["/head"]}
    assert load_ros_params_yaml(path, "/robot2/adapter") == {"use_sim_time": True, "queue_size": 3}
    assert load_ros_params_yaml(path, "/robot3/sub/adapter") == {"use_sim_time": True}
    # a bare node name matches its sections in any namespace (file order: later overrides)
    bare = load_ros_params_yaml(path, "perception")
    assert bare["layout"] == "robotwin" and bare["queue_size"] == 3


def test_loaded_values_validate_through_the_schema(tmp_path):
    path = write(tmp_path, """
        perception:
          ros__parameters: {rate_hz: 30, layout: grid}
    """)
    with pytest.raises(ParameterError, match="'layout' = 'grid' must be one of"):
        validate_params(SCHEMA, load_ros_params_yaml(path, "perception"))


def test_file_errors_are_parameter_errors(tmp_path):
    with pytest.raises(ParameterError, match="cannot read parameter file .*missing.yaml"):
        load_ros_params_yaml(str(tmp_path / "missing.yaml"), "n")
    with pytest.raises(ParameterError, match="invalid YAML"):
        load_ros_params_yaml(write(tmp_path, "n: [unclosed\n"), "n")
    with pytest.raises(ParameterError, match="section 'n' has no 'ros__parameters' mapping"):
        load_ros_params_yaml(write(tmp_path, "n:\n  ros__parameters: [1, 2]\n"), "n")


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


# -- markdown ------------------------------------------------------------------------------------

def test_schema_markdown_table():
    schema = SCHEMA[:2] + [ParamSpec("expr", "str", "a|b", "pipe | separated\nvalues", read_only=True)]
    lines = schema_markdown(schema).splitlines()
    assert lines[:2] == ["| name | type | default | range / choices | description |", "|---|---|---|---|---|"]
    assert lines[2] == "| `rate_hz` | float | `10.0` | [0.1, 1000.0] | control rate |"
    assert lines[3] == "| `layout` | str | `'single'` | `single`, `side_by_side`, `robotwin` | composed layout |"
    assert lines[4] == "| `expr` | str | `'a\\|b'` |  | pipe \\| separated values Read-only. |"


def test_schema_markdown():
    schema = ROBOT_SCHEMA + [ParamSpec("seed", "int", 0, "random seed", read_only=True, max=10)]
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
