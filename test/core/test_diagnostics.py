"""core.diagnostics: ProblemCounter, RateMeter, LatencyStats and latency_percentiles, with an injected
clock (no sleeping)."""
import numpy as np
import pytest

from kairos_ros.core.diagnostics import ERROR, OK, WARN, LatencyStats, ProblemCounter, RateMeter, latency_percentiles


class Clock:
    def __init__(self, t=0.0):
        self.t = t

    def __call__(self):
        return self.t


def test_positional_signature_matches_the_brief():
    clock = Clock(5.0)
    pc = ProblemCounter("perception", 1.0, clock)
    assert pc.warn_period == 1.0 and pc.clock is clock and pc.recent == 5.0


def test_throttle_per_key_and_last_messages():
    clock = Clock()
    pc = ProblemCounter("perception", warn_period=2.0, clock=clock)
    logged = []
    for k in range(50):  # 10 problems a second for 5 s
        clock.t = k * 0.1
        logged.append(pc.problem("bad_encoding", f"frame {k}"))
    assert sum(logged) == 3 and [i for i, x in enumerate(logged) if x] == [0, 20, 40]
    assert pc.counts() == {"bad_encoding": 50}
    assert pc.last_messages == {"bad_encoding": "frame 49"}


def test_error_level_dominates_and_expires():
    clock = Clock()
    pc = ProblemCounter("world_model", clock=clock, recent=5.0)
    pc.problem("late", "slow frame")
    assert pc.status()[0] == WARN
    pc.problem("backend", "model raised", level=ERROR)
    level, message, values = pc.status()
    assert level == ERROR and message == "recent problems: backend (1), late (1)"
    assert values == {"last.backend": "model raised", "last.late": "slow frame"}
    clock.t = 3.0
    pc.problem("late", "slow again")
    clock.t = 6.0  # backend is 6 s old, late 3 s
    assert pc.status() == (WARN, "recent problems: late (2)", {"last.late": "slow again"})
    clock.t = 8.5
    assert pc.status() == (OK, "ok", {})
    with pytest.raises(ValueError, match="problem level 0"):
        pc.problem("x", "y", level=OK)


def test_ok_resolves_a_problem_now_and_rearms_its_warning():
    clock = Clock()
    pc = ProblemCounter("adapter", clock=clock)
    assert pc.problem("watchdog_hold", "no chunk") is True
    assert pc.problem("estop", "e-stop") is True
    pc.ok("watchdog_hold")
    level, message, _ = pc.status()
    assert level == WARN and message == "recent problems: estop (1)"
    assert pc.problem("watchdog_hold", "no chunk") is True  # logged at once after recovery
    pc.ok()
    assert pc.status() == (OK, "ok", {}) and pc.counts() == {"watchdog_hold": 2, "estop": 1}
    pc.ok("never_seen")  # harmless


def test_rate_meter_sliding_window():
    clock = Clock()
    rm = RateMeter(window=2.0, clock=clock)
    for k in range(31):  # 30 Hz for 1 s
        clock.t = k / 30
        rm.tick()
    assert rm.rate() == pytest.approx(30.0)
    for k in range(1, 41):  # then 10 Hz for 4 s: the 30 Hz part leaves the window
        clock.t = 1.0 + k / 10
        rm.tick()
    assert rm.rate() == pytest.approx(10.0)
    with pytest.raises(ValueError, match="window 0 must be > 0"):
        RateMeter(window=0)


def test_latency_stats_percentiles():
    stats = LatencyStats(maxlen=1000)
    assert stats.percentiles() == {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    samples = np.arange(1, 1001) / 1000.0  # 1 ms .. 1 s
    for x in samples:
        stats.add(x)
    p = stats.percentiles()
    assert p["count"] == 1000 and p["max"] == 1.0
    assert p["p50"] == pytest.approx(np.percentile(samples, 50))
    assert p["p90"] == pytest.approx(0.9001) and p["p99"] == pytest.approx(0.99001)
    stats.add(5.0)  # maxlen: the oldest sample falls out
    assert stats.percentiles()["count"] == 1000 and stats.values()[0] == 0.002
    with pytest.raises(ValueError, match="maxlen 0"):
        LatencyStats(maxlen=0)


def test_problem_warnings_are_throttled_per_key():
    clock = Clock(100.0)
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
    pc = ProblemCounter("x", clock=Clock(100.0))
    pc.problem("a", "m")
    pc.counts()["a"] = 99
    assert pc.counts() == {"a": 1}


def test_status_levels_and_values():
    clock = Clock(100.0)
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
