"""Problem counting with throttled warnings, rates and latency percentiles (no ROS here)."""
from __future__ import annotations

import time
from collections import deque

import numpy as np

OK, WARN, ERROR = 0, 1, 2


class ProblemCounter:
    """Counts named problems; problem() says when a (throttled) warning should be logged."""

    def __init__(self, name: str, warn_period: float = 2.0, recent: float = 5.0, clock=time.monotonic):
        self.name = name
        self.warn_period = warn_period
        self.recent = recent
        self.clock = clock
        self._counts: dict[str, int] = {}
        self._last_warn: dict[str, float] = {}
        self._last_seen: dict[str, float] = {}
        self.last_messages: dict[str, str] = {}

    def problem(self, key: str, message: str) -> bool:
        now = self.clock()
        self._counts[key] = self._counts.get(key, 0) + 1
        self._last_seen[key] = now
        self.last_messages[key] = message
        last = self._last_warn.get(key)
        if last is None or now - last >= self.warn_period:
            self._last_warn[key] = now
            return True
        return False

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def status(self) -> tuple[int, str, dict[str, str]]:
        """(level, message, values) for a diagnostic_msgs/DiagnosticStatus."""
        now = self.clock()
        recent = sorted(k for k, t in self._last_seen.items() if now - t <= self.recent)
        values = {f"last.{k}": self.last_messages[k] for k in recent}
        if recent:
            return WARN, "recent problems: " + ", ".join(f"{k} ({self._counts[k]})" for k in recent), values
        return OK, "ok", values


class RateMeter:
    """Events per second over a sliding window."""

    def __init__(self, window: float = 5.0, clock=time.monotonic):
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
    """The last `maxlen` latency samples with their percentiles."""

    def __init__(self, maxlen: int = 1000):
        self._samples: deque[float] = deque(maxlen=maxlen)

    def add(self, seconds: float) -> None:
        self._samples.append(float(seconds))

    def values(self) -> list[float]:
        return list(self._samples)

    def percentiles(self) -> dict:
        return latency_percentiles(self._samples)
