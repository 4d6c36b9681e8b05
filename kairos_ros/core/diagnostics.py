"""Problem counting with throttled warnings, rates and latency percentiles (no ROS here).

A node keeps one ProblemCounter, calls problem(key, message) for every dropped input and logs the
message only when problem() returns True; status() becomes its diagnostic_msgs/DiagnosticStatus.
All classes take an injectable monotonic clock so tests need no sleeping.
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


class ProblemCounter:
    """Counts named problems; problem() says when a (throttled) warning should be logged.

    Throttling is per key: the first problem of a key is logged, then at most one every
    `warn_period` seconds. status() is WARN (or ERROR, if any recent problem was raised with
    level=ERROR) while some problem happened within the last `recent` seconds, else OK; ok(key)
    declares a problem resolved at once. Totals never reset.
    """

    def __init__(self, name: str, warn_period: float = 2.0, clock=time.monotonic, recent: float = 5.0):
        self.name = name
        self.warn_period = warn_period
        self.recent = recent
        self.clock = clock
        self._counts: dict[str, int] = {}
        self._last_warn: dict[str, float] = {}
        self._last_seen: dict[str, float] = {}
        self._levels: dict[str, int] = {}
        self.last_messages: dict[str, str] = {}

    def problem(self, key: str, message: str, level: int = WARN) -> bool:
        """Count one problem; True when the caller should log `message` now."""
        if level not in (WARN, ERROR):
            raise ValueError(f"problem level {level} must be WARN ({WARN}) or ERROR ({ERROR})")
        now = self.clock()
        self._counts[key] = self._counts.get(key, 0) + 1
        self._last_seen[key] = now
        self._levels[key] = level
        self.last_messages[key] = message
        last = self._last_warn.get(key)
        if last is None or now - last >= self.warn_period:
            self._last_warn[key] = now
            return True
        return False

    def ok(self, key: str | None = None) -> None:
        """The problem `key` (every problem when None) is resolved: it no longer raises the level.
        The next problem of that key is logged at once."""
        for k in [key] if key is not None else list(self._last_seen):
            self._last_seen.pop(k, None)
            self._last_warn.pop(k, None)

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def status(self) -> tuple[int, str, dict[str, str]]:
        """(level, message, values) for a diagnostic_msgs/DiagnosticStatus."""
        now = self.clock()
        recent = sorted(k for k, t in self._last_seen.items() if now - t <= self.recent)
        values = {f"last.{k}": self.last_messages[k] for k in recent}
        if recent:
            level = max(self._levels[k] for k in recent)
            return level, "recent problems: " + ", ".join(f"{k} ({self._counts[k]})" for k in recent), values
        return OK, "ok", values


class RateMeter:
    """Events per second over a sliding window of `window` seconds."""

    def __init__(self, window: float = 5.0, clock=time.monotonic):
        if not window > 0:
            raise ValueError(f"window {window} must be > 0")
        self.window = window
        self.clock = clock
        self._times: deque[float] = deque()

    def tick(self) -> None:
        now = self.clock()
        self._times.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    def rate(self) -> float:
        """(events - 1) / span of the events in the window, the span reaching to now so that
        silence lowers the rate; 0.0 with fewer than two events."""
        now = self.clock()
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], self._times[-1] - self._times[0])
        return (len(self._times) - 1) / span if span > 0 else 0.0


def latency_percentiles(samples) -> dict:
    """p50/p90/p99/mean/max/count of a sequence of seconds; empty -> count 0 and None values."""
    data = np.asarray(list(samples), dtype=np.float64)
    if data.size == 0:
        return {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.percentile(data, [50, 90, 99])
    return {"count": int(data.size), "mean": float(data.mean()), "p50": float(p50), "p90": float(p90),
            "p99": float(p99), "max": float(data.max())}


class LatencyStats:
    """The last `maxlen` latency samples (seconds) with their percentiles."""

    def __init__(self, maxlen: int = 1000):
        if maxlen < 1:
            raise ValueError(f"maxlen {maxlen} must be >= 1")
        self._samples: deque[float] = deque(maxlen=maxlen)

    def add(self, seconds: float) -> None:
        self._samples.append(float(seconds))

    def values(self) -> list[float]:
        return list(self._samples)

    def percentiles(self) -> dict:
        return latency_percentiles(self._samples)
