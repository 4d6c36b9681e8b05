"""A chunk's time in stages (issue 13): percentiles per stage, and a late chunk's warning names the
stage that took longest, with every stage's time."""
from kairos_ros.core.stages import StageTimes, slowest


def test_on_time_chunks_only_count():
    t = StageTimes()
    assert t.add({"wait": 0.001, "sample": 0.020}, 0.022, budget=0.05) is None
    assert t.add({"wait": 0.001, "sample": 0.020}, 0.022) is None  # no budget
    values = t.values()
    assert values["stage.sample.p50_ms"] == "20.00" and values["stage.total.p50_ms"] == "22.00"
    assert not any(k.startswith("late_by.") for k in values) and t.last_late == ""


def test_a_late_chunk_names_its_slowest_stage():
    t = StageTimes()
    warning = t.add({"wait": 0.120, "encode": 0.001, "sample": 0.030, "message": 0.0005}, 0.1515, budget=0.05)
    assert warning.startswith("chunk took 151.5 ms (> latency_budget 50.0 ms), slowest stage wait 120.0 ms")
    assert "encode 1.0 ms, sample 30.0 ms, message 0.5 ms" in warning
    t.add({"wait": 0.001, "sample": 0.080}, 0.081, budget=0.05)
    assert t.values()["late_by.wait"] == 1 and t.values()["late_by.sample"] == 1
    assert "slowest stage sample 80.0 ms" in t.last_late
    assert slowest({"a": 1.0, "b": 2.0}) == ("b", 2.0)
