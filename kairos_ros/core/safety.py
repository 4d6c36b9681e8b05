"""Safety state of one adapter: gates on every planned trajectory, the stale-input watchdog, a
latching e-stop and the dry-run/armed switch. Pure logic; the adapter node wires it to ROS.

Decisions are returned, never executed here: `check_plan` raises ChunkError naming the gate,
`watchdog` says when to send a hold once, `route` says where a trajectory may go.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kairos_ros.core.chunks import ChunkError
from kairos_ros.core.trajectory import TrajectoryPlan

PREVIEW, CONTROLLER, NOWHERE = "preview", "controller", "nowhere"


@dataclass
class SafetyLimits:
    max_start_jump: float = 0.2  # rad (or m): first point vs current state, per joint
    max_step: float = 0.3  # between consecutive points, per joint
    velocity_tolerance: float = 1.05  # a point-to-point speed above max_velocity * this is refused
    watchdog_timeout: float = 1.0  # s without a valid chunk -> hold position once

    def __post_init__(self):
        for name in ("max_start_jump", "max_step", "watchdog_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} = {getattr(self, name)} must be > 0")
        if not self.velocity_tolerance >= 1.0:
            raise ValueError(f"velocity_tolerance = {self.velocity_tolerance} must be >= 1")


class SafetyState:
    def __init__(self, spec, limits: SafetyLimits, armed: bool = False):
        self.spec = spec
        self.limits = limits
        self.armed = armed
        self.estopped = False
        self.last_valid = None  # node time of the last accepted chunk
        self.holding = False  # a hold was sent and no valid chunk came since

    def check_plan(self, plan: TrajectoryPlan, current: np.ndarray) -> None:
        """Raise ChunkError naming the gate a planned trajectory fails."""
        if self.estopped:
            raise ChunkError("e-stop is latched: no trajectory until reset")
        names = self.spec.joint_names
        jump = np.abs(plan.positions[0] - current)
        k = int(np.argmax(jump))
        if jump[k] > self.limits.max_start_jump:
            raise ChunkError(f"start-jump gate: joint '{names[k]}' would jump {jump[k]:.3f} from the current "
                             f"state (> max_start_jump {self.limits.max_start_jump})")
        path = np.vstack([current[None], plan.positions])
        times = np.concatenate([[0.0], plan.times])
        steps = np.abs(np.diff(path, axis=0))
        i, k = np.unravel_index(int(np.argmax(steps)), steps.shape)
        if steps[i, k] > self.limits.max_step:
            raise ChunkError(f"step gate: joint '{names[k]}' moves {steps[i, k]:.3f} between points {i - 1} and {i} "
                             f"(> max_step {self.limits.max_step})")
        if len(plan.times) < 2:
            return
        # Between consecutive points only: the first point may lie milliseconds ahead after late
        # rows were dropped, and the distance from the measured state to it is the start-jump gate's.
        dt = np.diff(plan.times)[:, None]
        speed = steps[1:] / np.maximum(dt, 1e-9)
        allowed = self.spec.max_velocity * self.limits.velocity_tolerance
        over = speed / allowed
        i, k = np.unravel_index(int(np.argmax(over)), over.shape)
        if over[i, k] > 1.0:
            raise ChunkError(f"velocity gate: joint '{names[k]}' needs {speed[i, k]:.3f}/s between points {i} and "
                             f"{i + 1} (> max_velocity {self.spec.max_velocity[k]:.3f} x {self.limits.velocity_tolerance})")

    def accepted(self, now: float) -> None:
        self.last_valid = now
        self.holding = False

    def watchdog(self, now: float, started: float) -> bool:
        """True exactly once per stale period: time to send a hold-position trajectory."""
        if self.holding:
            return False
        reference = self.last_valid if self.last_valid is not None else started
        if now - reference > self.limits.watchdog_timeout:
            self.holding = True
            return True
        return False

    def estop(self) -> None:
        self.estopped = True

    def reset_estop(self) -> None:
        self.estopped = False
        self.last_valid = None
        self.holding = True  # nothing runs until a fresh valid chunk arrives

    def route(self) -> str:
        """Where a trajectory goes: the controller only when armed and no e-stop is latched."""
        if self.estopped:
            return NOWHERE
        return CONTROLLER if self.armed else PREVIEW
