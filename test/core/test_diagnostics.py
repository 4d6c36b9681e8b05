"""ProblemCounter, RateMeter and LatencyStats with an injected clock (no sleeping)."""
import numpy as np
import pytest

from kairos_ros.core.diagnostics import ERROR, OK, WARN, LatencyStats, ProblemCounter, RateMeter


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
