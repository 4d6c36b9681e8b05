"""Unit tests for kairos_ros.core.diagnostics with an injected clock."""
import numpy as np
import pytest

from kairos_ros.core.diagnostics import OK, WARN, LatencyStats, ProblemCounter, RateMeter, latency_percentiles


class Clock:
    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


def test_problem_warnings_are_throttled_per_key():
    clock = Clock()
    pc = ProblemCounter("cam", warn_period=2.0, clock=clock)
    assert pc.problem("bad_encoding", "yuv") is True  # first one is always logged
    clock.t += 0.5
    assert pc.problem("bad_encoding", "yuv") is False
    assert pc.problem("late", "old stamp") is True  # another key has its own throttle
    clock.t += 1.49
    assert pc.problem("bad_encoding", "yuv") is False  # 1.99 s after the logged one
    clock.t += 0.01
    assert pc.problem("bad_encoding", "yuv") is True  # 2.0 s: logged again
    clock.t += 1.0
    assert pc.problem("bad_encoding", "yuv") is False  # the period restarts at the last logged warning
    assert pc.counts() == {"bad_encoding": 5, "late": 1}


def test_counts_is_a_copy():
    pc = ProblemCounter("x", clock=Clock())
    pc.problem("a", "m")
    pc.counts()["a"] = 99
    assert pc.counts() == {"a": 1}


def test_status_levels_and_values():
    clock = Clock()
    pc = ProblemCounter("node", recent=5.0, clock=clock)
    assert pc.status() == (OK, "ok", {})
    pc.problem("late", "stamp 1.0 older than 2.0")
    clock.t += 1.0
    pc.problem("bad", "first")
    pc.problem("bad", "second")
    level, message, values = pc.status()
    assert level == WARN
    assert message == "recent problems: bad (2), late (1)"
    assert values == {"last.bad": "second", "last.late": "stamp 1.0 older than 2.0"}
    clock.t += 4.5  # 'late' is 5.5 s old, 'bad' 4.5 s
    level, message, values = pc.status()
    assert (level, message, values) == (WARN, "recent problems: bad (2)", {"last.bad": "second"})
    clock.t += 1.0
    assert pc.status() == (OK, "ok", {})
    assert pc.counts() == {"late": 1, "bad": 2}  # totals survive


def test_rate_meter_with_injected_clock():
    clock = Clock(0.0)
    rm = RateMeter(window=5.0, clock=clock)
    assert rm.rate() == 0.0
    rm.tick()
    assert rm.rate() == 0.0  # one event: no rate
    for _ in range(20):
        clock.t += 0.125  # binary-exact times: no rounding at the window edge
        rm.tick()
    assert rm.rate() == pytest.approx(8.0)
    # events older than the window are forgotten
    for _ in range(100):
        clock.t += 0.5
        rm.tick()
    assert rm.rate() == pytest.approx(2.0)
    # silence lowers the rate (the span reaches to now) and finally drops it to zero
    clock.t += 2.25
    assert rm.rate() == pytest.approx(5 / 4.75)  # 6 ticks remain (now-4.75 .. now-2.25), span to now 4.75 s
    clock.t += 10.0
    assert rm.rate() == 0.0


def test_rate_meter_simultaneous_ticks():
    clock = Clock(1.0)
    rm = RateMeter(clock=clock)
    rm.tick()
    rm.tick()
    assert rm.rate() == 0.0  # zero span: no division by zero


def test_latency_percentiles_against_numpy():
    rng = np.random.default_rng(3)
    samples = rng.exponential(0.02, 501)
    stats = latency_percentiles(samples)
    assert stats["count"] == 501
    assert stats["mean"] == pytest.approx(samples.mean())
    assert stats["max"] == samples.max()
    assert stats["p50"] == pytest.approx(np.median(samples))
    assert stats["p90"] == pytest.approx(np.sort(samples)[450])  # 501 samples: exact order statistics
    assert stats["p99"] == pytest.approx(np.sort(samples)[495])


def test_latency_percentiles_small_and_empty():
    assert latency_percentiles([]) == {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None,
                                       "max": None}
    stats = latency_percentiles(iter([0.3]))
    assert stats == {"count": 1, "mean": 0.3, "p50": 0.3, "p90": 0.3, "p99": 0.3, "max": 0.3}
    assert all(type(v) is float for k, v in stats.items() if k != "count")


def test_latency_stats_keeps_the_last_samples():
    ls = LatencyStats(maxlen=3)
    assert ls.percentiles()["count"] == 0
    for v in (10, 1, 2, 3):
        ls.add(v)
    assert ls.values() == [1.0, 2.0, 3.0]
    p = ls.percentiles()
    assert p["count"] == 3 and p["max"] == 3.0 and p["p50"] == 2.0 and p["mean"] == pytest.approx(2.0)
