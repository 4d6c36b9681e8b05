"""Safety state of one adapter: gates on every planned trajectory, the stale-input watchdog, a
latching e-stop and the dry-run/armed switch. Pure logic; the adapter node wires it to ROS.

Decisions are returned, never executed here: `check_plan` raises GateError (a ChunkError) naming
the gate, `watchdog` says when to send a hold once, `route` says where a trajectory may go.

Gates, per joint, in joint units: start jump (first point vs the measured state), step (between
consecutive points, the state included), velocity (between consecutive points) and acceleration
(second differences of the planned positions at their own, possibly uneven, times). The velocity
gate includes the segment from the measured state to the first point, over the time until that
point is due: the controller interpolates it, so a first point 0.19 rad away due in 0.048 s is a
4 rad/s command whatever max_start_jump allows (min_lead keeps points that close in time out).
The acceleration gate leaves that segment out (the robot's own velocity at the start is the
controller's business) and so does it for the stop at the end of a trajectory (the controller
contract's zero final velocity). Holds have a gate of their own (`check_hold`): the cubic the
controller interpolates from the measured state to the hold point stays within the velocity and
acceleration limits.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kairos_ros.core.chunks import ChunkError
from kairos_ros.core.stamps import readable
from kairos_ros.core.trajectory import TrajectoryPlan, cubic_peaks

PREVIEW, CONTROLLER, NOWHERE = "preview", "controller", "nowhere"
GATES = ("estop", "start_jump", "step", "velocity", "acceleration", "hold")


class GateError(ChunkError):
    """A plan refused by a safety gate; `gate` is one of GATES (diagnostics count them by name)."""

    def __init__(self, gate: str, message: str):
        super().__init__(message)
        self.gate = gate


@dataclass
class SafetyLimits:
    max_start_jump: float = 0.2  # rad (or m): first point vs current state, per joint
    max_step: float = 0.3  # between consecutive points, per joint
    velocity_tolerance: float = 1.05  # a point-to-point speed above max_velocity * this is refused
    watchdog_timeout: float = 1.0  # s without a valid chunk -> hold position once
    acceleration_tolerance: float = 1.05  # an acceleration above max_acceleration * this is refused

    def __post_init__(self):
        for name in ("max_start_jump", "max_step", "watchdog_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} = {getattr(self, name)} must be > 0")
        for name in ("velocity_tolerance", "acceleration_tolerance"):
            if not getattr(self, name) >= 1.0:
                raise ValueError(f"{name} = {getattr(self, name)} must be >= 1")


class SafetyState:
    def __init__(self, spec, limits: SafetyLimits, armed: bool = False):
        self.spec = spec
        self.limits = limits
        self.armed = armed
        self.estopped = False
        self.last_valid = None  # node time of the last accepted chunk
        self.holding = False  # a hold was sent and no valid chunk came since

    def check_plan(self, plan: TrajectoryPlan, current: np.ndarray) -> None:
        """Raise GateError naming the gate a planned trajectory fails."""
        if self.estopped:
            raise GateError("estop", "e-stop is latched: no trajectory until reset")
        names = self.spec.joint_names
        jump = np.abs(plan.positions[0] - current)
        k = int(np.argmax(jump))
        if jump[k] > self.limits.max_start_jump:
            raise GateError("start_jump", f"start-jump gate: joint '{names[k]}' would jump {readable(jump[k])} from "
                            f"the current state (> max_start_jump {self.limits.max_start_jump})")
        path = np.vstack([current[None], plan.positions])
        steps = np.abs(np.diff(path, axis=0))
        i, k = np.unravel_index(int(np.argmax(steps)), steps.shape)
        if steps[i, k] > self.limits.max_step:
            raise GateError("step", f"step gate: joint '{names[k]}' moves {readable(steps[i, k])} between "
                            f"{'the current state' if i == 0 else f'point {i - 1}'} and point {i} (> max_step {self.limits.max_step})")
        # From the measured state (t = 0) to the first point, then between consecutive points.
        dt = np.diff(np.concatenate([[0.0], np.asarray(plan.times, dtype=np.float64)]))[:, None]
        speed = steps / np.maximum(dt, 1e-9)
        allowed = self.spec.max_velocity * self.limits.velocity_tolerance
        over = speed / allowed
        i, k = np.unravel_index(int(np.argmax(over)), over.shape)
        if over[i, k] > 1.0:
            where = (f"from the current state to point 0 (due in {plan.times[0]:.3f} s)" if i == 0
                     else f"between points {i - 1} and {i}")
            raise GateError("velocity", f"velocity gate: joint '{names[k]}' needs {readable(speed[i, k])}/s {where} "
                            f"(> max_velocity {self.spec.max_velocity[k]:.3f} x {self.limits.velocity_tolerance})")
        dt = dt[1:]
        if len(plan.times) < 3:
            return
        rate = np.diff(plan.positions, axis=0) / np.maximum(dt, 1e-9)  # (N-1, J) segment velocities
        half = 0.5 * (plan.times[2:] - plan.times[:-2])[:, None]
        accel = np.abs(np.diff(rate, axis=0)) / np.maximum(half, 1e-9)  # (N-2, J) at points 1 .. N-2
        over = accel / (self.spec.max_acceleration * self.limits.acceleration_tolerance)
        i, k = np.unravel_index(int(np.argmax(over)), over.shape)
        if over[i, k] > 1.0:
            raise GateError("acceleration", f"acceleration gate: joint '{names[k]}' needs {readable(accel[i, k])}/s^2 at "
                            f"point {i + 1} (> max_acceleration {self.spec.max_acceleration[k]:.3f} x "
                            f"{self.limits.acceleration_tolerance})")

    def check_hold(self, plan: TrajectoryPlan, current: np.ndarray, velocities=None) -> None:
        """Raise GateError('hold') when the cubic from the measured state (and velocity, when known)
        to a one-point hold exceeds a joint's velocity limit (or its measured speed, when higher) or
        its acceleration limit."""
        names = self.spec.joint_names
        v0 = np.zeros(len(names)) if velocities is None else np.nan_to_num(
            np.asarray(velocities, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        v0 = np.clip(v0, -self.spec.max_velocity, self.spec.max_velocity)
        if len(plan.times) != 1 or not plan.times[0] > 0:
            raise GateError("hold", f"hold gate: a hold is one point due after now, got {len(plan.times)} points")
        vel, acc = cubic_peaks(plan.positions[0] - np.asarray(current, dtype=np.float64), v0, float(plan.times[0]))
        over_v = vel / np.maximum(self.spec.max_velocity, np.abs(v0))
        limit_a = np.where(self.spec.max_acceleration > 0, self.spec.max_acceleration, np.inf)
        over_a = acc / limit_a
        k = int(np.argmax(np.maximum(over_v, over_a)))
        if over_v[k] > 1.0 + 1e-6:
            raise GateError("hold", f"hold gate: joint '{names[k]}' would need {readable(vel[k])}/s to reach its "
                            f"hold point in {plan.times[0]:.3f} s (> max_velocity {self.spec.max_velocity[k]:.3f})")
        if over_a[k] > 1.0 + 1e-6:
            raise GateError("hold", f"hold gate: joint '{names[k]}' would need {readable(acc[k])}/s^2 to reach its "
                            f"hold point in {plan.times[0]:.3f} s (> max_acceleration {limit_a[k]:.3f})")

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
