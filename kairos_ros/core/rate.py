"""The perception node's publish rule as a plain class with the clock passed in (no ROS, no sleeps).

Inputs trigger publishing: when a camera frame or joint state arrives, a synchronised set goes out
at once unless one went out less than 0.9 / rate_hz seconds ago (the margin keeps a source at
exactly rate_hz from being throttled by jitter). A set held back by the limit is flushed when the
limit lifts: the caller arms a one-shot timer for `wait` seconds (a periodic flush timer at twice
the rate would burn a core at high rates and delay every other callback). A clock that goes
backwards (sim time, a looping bag) restarts the limiter, and the caller drops a flush armed on the
old timeline, which might never come due.

The live node (nodes/perception_node.py), offline evaluation (eval/offline.py) and dataset
decoding (lib/dataset.py) all follow this rule, so a bag replayed offline yields the observations
the live graph would have published."""
from __future__ import annotations

from dataclasses import dataclass

MARGIN = 0.9  # fraction of the period that must have passed since the last publish


@dataclass(frozen=True)
class Decision:
    publish: bool  # try to publish now (call published() if something went out)
    wait: float  # otherwise: seconds until the limit lifts (arm a one-shot flush for then)
    clock_jumped: bool  # the clock went backwards since the last publish: cancel any armed flush


class PublishRateLimiter:
    def __init__(self, rate_hz: float):
        if not rate_hz > 0:
            raise ValueError(f"rate_hz {rate_hz} must be > 0")
        self.min_period = 1.0 / float(rate_hz)
        self.last: float | None = None  # clock time of the last publish

    def reset(self) -> None:
        """Forget the last publish (the inputs' stamps jumped backwards: synchronisation restarted)."""
        self.last = None

    def decide(self, now: float) -> Decision:
        jumped = self.last is not None and now < self.last
        if jumped:
            self.last = None
        wait = 0.0 if self.last is None else MARGIN * self.min_period - (now - self.last)
        if wait <= 0.0:
            return Decision(True, 0.0, jumped)
        return Decision(False, max(wait, 1e-4), jumped)

    def published(self, now: float) -> None:
        self.last = now

    def due(self, now: float) -> bool:
        """For loops that poll instead of arming timers: decide(now).publish, clock jumps included."""
        return self.decide(now).publish
