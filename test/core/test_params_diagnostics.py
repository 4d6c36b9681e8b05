"""Parameter schemas, ROS parameter files, problem counting, rates and percentiles."""
import pytest

from kairos_ros.core.diagnostics import OK, WARN, LatencyStats, ProblemCounter, RateMeter, latency_percentiles
from kairos_ros.core.params import (ParameterError, ParamSpec, load_ros_params_yaml, ros_type_name,
                                    schema_markdown, validate_params)

SCHEMA = [
    ParamSpec("rate_hz", "float", 10.0, "rate", min=0.1, max=100.0),
    ParamSpec("layout", "str", "single", "layout", choices=["single", "robotwin"]),
    ParamSpec("count", "int", 3, "count", min=1),
    ParamSpec("topics", "str_array", [], "topics", required=True),
    ParamSpec("flag", "bool", False, "flag"),
]


def test_defaults_and_int_for_float():
    out = validate_params(SCHEMA, {"topics": ["/a"], "rate_hz": 5})
    assert out == {"rate_hz": 5.0, "layout": "single", "count": 3, "topics": ["/a"], "flag": False}
    assert isinstance(out["rate_hz"], float)


@pytest.mark.parametrize("values,match", [
    ({"rate_hz": -1.0}, "parameter 'rate_hz' = -1.0 is out of range: must be >= 0.1"),
    ({"rate_hz": float("nan")}, "must be finite"),
    ({"layout": "grid"}, "parameter 'layout' = 'grid' must be one of"),
    ({"count": 2.5}, "'count' = 2.5 must be an integer"),
    ({"count": True}, "must be an integer"),
    ({"flag": 1}, "must be a bool"),
    ({"topics": "/a"}, "must be a list"),
    ({"ratee_hz": 1.0}, "unknown parameter 'ratee_hz'"),
    ({}, "parameter 'topics' is required"),
])
def test_errors_name_parameter_and_value(values, match):
    values = {"topics": ["/a"], **values} if "topics" not in values and values != {} else values
    with pytest.raises(ParameterError, match=match):
        validate_params(SCHEMA, values)


def test_ros_params_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("/**:\n  ros__parameters:\n    rate_hz: 2.0\n"
                    "/robot/perception:\n  ros__parameters:\n    layout: robotwin\n    nested:\n      k: 1\n"
                    "other:\n  ros__parameters:\n    count: 9\n")
    assert load_ros_params_yaml(str(path), "perception") == {"rate_hz": 2.0, "layout": "robotwin", "nested.k": 1}
    bad = tmp_path / "bad.yaml"
    bad.write_text("perception:\n  rate_hz: 2.0\n")
    with pytest.raises(ParameterError, match="ros__parameters"):
        load_ros_params_yaml(str(bad), "perception")


def test_type_names_and_markdown():
    assert [ros_type_name(s) for s in SCHEMA] == ["double", "string", "integer", "string_array", "bool"]
    md = schema_markdown(SCHEMA)
    assert "| `rate_hz` | float | `10.0` | [0.1, 100.0] |" in md and "(required)" in md
    with pytest.raises(ValueError, match="unknown type"):
        ParamSpec("x", "complex", 0, "")


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_problem_counter_throttles_and_recovers():
    clock = Clock()
    pc = ProblemCounter("n", warn_period=2.0, recent=5.0, clock=clock)
    assert pc.problem("bad", "first") is True
    clock.t = 1.0
    assert pc.problem("bad", "second") is False  # throttled
    clock.t = 2.5
    assert pc.problem("bad", "third") is True
    assert pc.counts() == {"bad": 3}
    level, message, values = pc.status()
    assert level == WARN and "bad (3)" in message and values["last.bad"] == "third"
    clock.t = 10.0
    assert pc.status()[0] == OK


def test_rate_meter_and_percentiles():
    clock = Clock()
    rate = RateMeter(window=5.0, clock=clock)
    for i in range(11):
        clock.t = i * 0.1
        rate.tick()
    assert rate.rate() == pytest.approx(10.0)
    clock.t = 100.0
    assert rate.rate() == 0.0
    stats = LatencyStats(maxlen=3)
    for x in (1.0, 2.0, 3.0, 4.0):
        stats.add(x)
    assert stats.values() == [2.0, 3.0, 4.0] and stats.percentiles()["p50"] == 3.0
    assert latency_percentiles([])["count"] == 0
