"""A chunk's time in stages (issue 13): percentiles per stage, and a late chunk's warning names the
stage that took longest, with every stage's time."""
from kairos_ros.core.stages import Arrivals, StageTimes, chunk_stages, health, slowest


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


def test_chunk_stages_from_the_instants_measured():
    assert chunk_stages(1.0, 1.5, 2.0, 3.0, 3.25) == {"intake": 0.5, "wait": 0.5, "backend": 1.0, "message": 0.25}
    assert chunk_stages(1.0, 1.5, 2.0, 3.0, 3.25, {"encode": 0.4, "sample": 0.6}) == {
        "intake": 0.5, "wait": 0.5, "encode": 0.4, "sample": 0.6, "message": 0.25}


def test_add_chunk_totals_from_arrival_to_publication():
    t = StageTimes()
    assert t.add_chunk(1.0, 1.0, 1.0, 1.02, 1.021, budget=0.05) is None
    warning = t.add_chunk(1.0, 1.001, 1.1, 1.12, 1.121, budget=0.05)
    assert warning.startswith("chunk took 121.0 ms (> latency_budget 50.0 ms), slowest stage wait 99.0 ms")
    assert t.values()["stage.backend.p50_ms"] == "20.00"


def test_arrivals_know_only_the_newest_observation():
    a = Arrivals()
    assert a.of(5.0, 9.0) == (9.0, 9.0)  # nothing taken in yet: no intake or wait known
    a.record(5.0, 1.0, 1.5)
    assert a.of(5.0, 9.0) == (1.0, 1.5)
    assert a.of(4.9, 9.0) == (9.0, 9.0)  # a newer observation was taken in since


def test_health_puts_the_startup_warning_first_and_names_the_last_late_chunk():
    assert health(0, "ok") == (0, "ok")
    assert health(0, "ok", "random weights") == (1, "random weights; ok")
    assert health(2, "recent problems: x (1)", "random weights") == (2, "random weights; recent problems: x (1)")
    late = "chunk took 80.0 ms"
    assert health(1, "recent problems: slow_inference (3)", last_late=late) == (
        1, f"recent problems: slow_inference (3); last late {late}")
    assert health(0, "ok", last_late=late) == (0, "ok")  # no longer a recent problem
