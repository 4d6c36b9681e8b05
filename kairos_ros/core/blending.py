"""Joining successive action chunks without jerks, and a robust estimate of the inference delay.

Plans are kept in absolute time (node clock), so chunks predicted from different observations
can be compared at the same instants.

- "rtc" (real-time-chunking style): over the first `blend_time` seconds of the new plan, move
  linearly from the previous plan to the new one; after that only the new plan counts.
- "ensemble" (temporal ensembling): every stored plan that covers an instant votes, weighted by
  exp(-decay * age) where age is how much older its observation is than the newest one.
- "none": the new plan replaces the old one.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

MODES = ("none", "rtc", "ensemble")


@dataclass
class AbsolutePlan:
    stamp: float  # observation stamp the chunk was predicted from
    times: np.ndarray  # (N,) absolute node-clock times, increasing
    positions: np.ndarray  # (N, J)

    def sample(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions (M, J), covered (M,) bool): linear interpolation inside the plan's span."""
        covered = (t >= self.times[0]) & (t <= self.times[-1])
        out = np.empty((t.shape[0], self.positions.shape[1]))
        for j in range(self.positions.shape[1]):
            out[:, j] = np.interp(t, self.times, self.positions[:, j])
        return out, covered


class ChunkBlender:
    def __init__(self, mode: str = "rtc", blend_time: float = 0.2, decay: float = 2.0, keep: int = 8):
        if mode not in MODES:
            raise ValueError(f"blend mode '{mode}' is not one of {list(MODES)}")
        if blend_time < 0 or decay < 0:
            raise ValueError(f"blend_time {blend_time} and decay {decay} must be >= 0")
        self.mode, self.blend_time, self.decay = mode, blend_time, decay
        self.plans: deque[AbsolutePlan] = deque(maxlen=keep)

    def reset(self) -> None:
        self.plans.clear()

    def remember(self, plan: AbsolutePlan) -> None:
        """Make `plan` the one being executed (what the next chunk blends from)."""
        self.plans.append(AbsolutePlan(plan.stamp, np.asarray(plan.times, float).copy(),
                                       np.asarray(plan.positions, float).copy()))

    def blend(self, new: AbsolutePlan, remember: bool = True) -> np.ndarray:
        """Positions to execute at new.times (N, J). With remember, the result becomes the current
        plan; a caller that may still refuse the plan passes False and calls remember() once it is
        really sent, so the next chunk never blends from a plan the robot did not get."""
        t = new.times
        out = new.positions.copy()
        if self.mode == "rtc" and self.plans and self.blend_time > 0:
            old, covered = self.plans[-1].sample(t)
            w = np.clip((t - t[0]) / self.blend_time, 0.0, 1.0)[:, None]  # 0 -> previous, 1 -> new
            out = np.where(covered[:, None], (1 - w) * old + w * new.positions, new.positions)
        elif self.mode == "ensemble" and self.plans:
            total = np.ones((t.shape[0], 1))
            acc = new.positions.copy()
            for plan in self.plans:
                values, covered = plan.sample(t)
                weight = np.exp(-self.decay * max(new.stamp - plan.stamp, 0.0)) * covered[:, None]
                acc += weight * values
                total += weight
            out = acc / total
        if remember:
            self.remember(AbsolutePlan(new.stamp, t, out))
        return out


class DelayEstimator:
    """Median of recent inference delays (now - observation stamp at chunk arrival).

    The first `warmup` samples (a cold model, caches being built) are left out, so one slow start
    does not make the estimate, and everything derived from it, wrong for the rest of the run.
    """

    def __init__(self, window: int = 20, warmup: int = 1):
        self.samples: deque[float] = deque(maxlen=window)
        self.warmup = warmup
        self.seen = 0

    def add(self, delay: float) -> None:
        self.seen += 1
        if self.seen > self.warmup:
            self.samples.append(float(delay))

    def estimate(self) -> float | None:
        return float(np.median(self.samples)) if self.samples else None

    def reset(self) -> None:
        self.samples.clear()
        self.seen = 0
