"""Chunk -> joint trajectory under the ros2_control joint_trajectory_controller contract
(docs/architecture.md, convention 5): every configured joint in order, strictly increasing times, velocities
given, ending at rest, positions within the limits.

Positions are clamped to the joint limits, and a joint heading for a limit is slowed so that it
never approaches it faster than it could stop there (speed <= sqrt(2 a d) at distance d, with a =
BRAKE_SHARE x its max_acceleration): a bare clamp would stop it dead at the limit, an acceleration
no robot has (the adapter's acceleration gate would refuse such a plan). Values changed by either
count as `clamped`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kairos_ros.core.embodiment import slots_to_joints
from kairos_ros.core.types import ActionChunkData

BRAKE_SHARE = 0.9  # of max_acceleration, a margin for the discrete points under the gate's limit


@dataclass
class TrajectoryPlan:
    joint_names: list
    times: np.ndarray  # (N,) seconds from the trajectory start, strictly increasing
    positions: np.ndarray  # (N, J)
    velocities: np.ndarray  # (N, J); the last row is zero
    clamped: int = 0  # number of position values clamped to the limits


def chunk_to_trajectory(chunk: ActionChunkData, spec, current_positions=None, start_delay: float = 0.0) -> TrajectoryPlan:
    """Row k of the chunk lands at start_delay + (k + 1) * step_period (may be <= 0 for a late
    chunk: callers drop those points). Velocities are central differences (the first uses the
    current positions when given), clamped to +-max_velocity; the last point is at rest."""
    target = slots_to_joints(spec, chunk.values)  # (N, J)
    lo, hi = spec.lower, spec.upper
    n = target.shape[0]
    dt = float(chunk.step_period)
    times = start_delay + dt * (np.arange(n) + 1.0)
    prev = np.clip(np.asarray(current_positions, dtype=np.float64), lo, hi) if current_positions is not None else None
    q = brake_at_limits(np.clip(target, lo, hi), times, spec)
    clamped = int(np.count_nonzero(np.abs(q - target) > 1e-12))
    padded = np.vstack([prev[None] if prev is not None else q[:1], q])  # row 0 = state before point 0
    vel = np.empty_like(q)
    if n == 1:
        vel[0] = 0.0
    else:
        vel[1:-1] = (q[2:] - q[:-2]) / (2 * dt)
        vel[0] = (q[1] - padded[0]) / (2 * dt) if prev is not None else (q[1] - q[0]) / dt
    vel[-1] = 0.0
    vel = np.clip(vel, -spec.max_velocity, spec.max_velocity)
    return TrajectoryPlan(list(spec.joint_names), times, q, vel, clamped)


def brake_at_limits(q: np.ndarray, times: np.ndarray, spec) -> np.ndarray:
    """Positions (N, J) inside the limits -> the same, except that no joint approaches a limit faster
    than sqrt(2 a d) between consecutive points (a = BRAKE_SHARE * max_acceleration, d = distance
    left). The first point is taken as it is: the way there from the measured state is not a
    velocity (the start-jump gate's business), as in the velocity and acceleration gates."""
    a = BRAKE_SHARE * np.asarray(spec.max_acceleration, dtype=np.float64)
    dt = np.maximum(np.diff(np.asarray(times, dtype=np.float64)), 1e-9)[:, None]  # (N-1, 1)

    def allowed(p, step):  # fastest segment velocities towards each limit from positions p
        ad = a * step
        with np.errstate(invalid="ignore"):
            up = -ad + np.sqrt(ad * ad + 2 * a * np.maximum(spec.upper - p, 0.0))
            down = ad - np.sqrt(ad * ad + 2 * a * np.maximum(p - spec.lower, 0.0))
        return down, up

    u = np.diff(q, axis=0) / dt
    down, up = allowed(q[:-1], dt)
    bad = (u > up) | (u < down)  # (N-1, J) segments that head for a limit too fast
    if not bad.any():  # the common case: nowhere near a limit at speed
        return q
    out = q.copy()
    steps = dt[:, 0].tolist()
    for j in np.flatnonzero(bad.any(axis=0)).tolist():  # forward pass, joint by joint, from its first bad segment
        a_j, lo, hi = float(a[j]), float(spec.lower[j]), float(spec.upper[j])
        p = float(q[int(np.argmax(bad[:, j])), j])
        for k in range(int(np.argmax(bad[:, j])) + 1, q.shape[0]):
            h = steps[k - 1]
            ad = a_j * h
            v = (float(q[k, j]) - p) / h
            v = min(v, -ad + math.sqrt(ad * ad + 2 * a_j * max(hi - p, 0.0)))
            v = max(v, ad - math.sqrt(ad * ad + 2 * a_j * max(p - lo, 0.0)))
            p += v * h
            out[k, j] = p
    return out


HOLD_SHARE = 0.9  # of max_velocity and max_acceleration a hold may use: a margin under the limits


def cubic_peaks(delta: np.ndarray, v0: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Peak |velocity| and |acceleration| per joint of the cubic a joint_trajectory_controller
    interpolates from (position 0, velocity v0) to (position delta, velocity 0) over `duration`
    (positions and velocities given, no accelerations: a cubic spline)."""
    t = float(duration)
    c2 = (3.0 * delta - 2.0 * v0 * t) / t ** 2
    c3 = (v0 * t - 2.0 * delta) / t ** 3
    acc = np.maximum(np.abs(2.0 * c2), np.abs(2.0 * c2 + 6.0 * c3 * t))  # linear in t: peaks at the ends
    vel = np.abs(v0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = np.where(c3 != 0, -c2 / (3.0 * np.where(c3 != 0, c3, 1.0)), -1.0)
    inside = (ts > 0) & (ts < t)
    vmid = np.abs(v0 + 2.0 * c2 * ts + 3.0 * c3 * ts ** 2)
    return np.where(inside, np.maximum(vel, vmid), vel), acc


@dataclass
class HoldPlan:
    plan: TrajectoryPlan
    outside: list  # (joint, measured, limit) for joints measured outside their limits
    duration: float  # time_from_start of the hold point


def hold_trajectory(spec, positions, duration: float, velocities=None) -> TrajectoryPlan:
    """One point at rest, reached no faster than the joint limits allow (see plan_hold)."""
    return plan_hold(spec, positions, duration, velocities).plan


def plan_hold(spec, positions, min_duration: float, velocities=None) -> HoldPlan:
    """A hold: one point at rest, `duration` >= min_duration seconds from now.

    Each joint stops where it would with a constant deceleration from its measured velocity
    (none given: where it is), kept within its limits: a joint measured outside them is taken back
    to the nearest limit. The duration is the shortest (from min_duration up) at which the cubic the
    controller interpolates stays within HOLD_SHARE of every joint's max_velocity (or the measured
    speed, when higher: a hold never asks for more speed than the joint has) and max_acceleration.
    """
    if not (min_duration > 0 and math.isfinite(min_duration)):
        raise ValueError(f"hold duration {min_duration} must be finite and > 0")
    p0 = np.asarray(positions, dtype=np.float64)
    v0 = np.zeros_like(p0) if velocities is None else np.nan_to_num(np.asarray(velocities, dtype=np.float64),
                                                                   nan=0.0, posinf=0.0, neginf=0.0)
    v0 = np.clip(v0, -spec.max_velocity, spec.max_velocity)  # a measured speed over the limit is not trusted
    vmax = HOLD_SHARE * np.asarray(spec.max_velocity, dtype=np.float64)
    acc = np.asarray(spec.max_acceleration, dtype=np.float64)
    amax = HOLD_SHARE * np.where(acc > 0, acc, np.inf)
    lo, hi = np.asarray(spec.lower, dtype=np.float64), np.asarray(spec.upper, dtype=np.float64)

    def target(t):
        return np.clip(p0 + 0.5 * v0 * t, lo, hi)

    def feasible(t):
        vel, accel = cubic_peaks(target(t) - p0, v0, t)
        return bool(np.all(vel <= np.maximum(vmax, np.abs(v0)) * (1 + 1e-9)) and np.all(accel <= amax * (1 + 1e-9)))

    t = float(min_duration)
    if not feasible(t):
        lo_t = t
        for _ in range(64):  # doubling: a joint 2 pi outside its limit at 0.1 rad/s^2 needs ~40 s
            t *= 2.0
            if feasible(t):
                break
            lo_t = t
        for _ in range(40):
            mid = 0.5 * (lo_t + t)
            if feasible(mid):
                t = mid
            else:
                lo_t = mid
    q = target(t)[None]
    outside = [(name, float(x), float(np.clip(x, a, b))) for name, x, a, b in zip(spec.joint_names, p0, lo, hi)
               if x < a or x > b]
    return HoldPlan(TrajectoryPlan(list(spec.joint_names), np.array([t]), q, np.zeros_like(q), 0), outside, t)


def replan_positions(plan: TrajectoryPlan, positions: np.ndarray, spec, current_positions=None) -> TrajectoryPlan:
    """The same times with new positions (e.g. blended): clamped, velocities recomputed by central
    differences over the (possibly uneven) times, the last point at rest."""
    t = np.asarray(plan.times, dtype=np.float64)
    q = brake_at_limits(np.clip(np.asarray(positions, dtype=np.float64), spec.lower, spec.upper), t, spec)
    n = q.shape[0]
    vel = np.zeros_like(q)
    if n > 1:
        vel[1:-1] = (q[2:] - q[:-2]) / (t[2:] - t[:-2])[:, None]
        if current_positions is not None:
            prev = np.clip(np.asarray(current_positions, dtype=np.float64), spec.lower, spec.upper)
            vel[0] = (q[1] - prev) / max(t[1], 1e-9)  # central difference around point 0 (the state is at t = 0)
        else:
            vel[0] = (q[1] - q[0]) / (t[1] - t[0])
    vel[-1] = 0.0
    vel = np.clip(vel, -spec.max_velocity, spec.max_velocity)
    return TrajectoryPlan(list(plan.joint_names), t.copy(), q, vel, plan.clamped)
