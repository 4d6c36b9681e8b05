"""A joint trajectory executor with ros2_control joint_trajectory_controller (JTC) semantics, as the
simulated robot driver (nodes/sim_node.py) runs it. No ROS here: times are seconds on the caller's
clock (the sim clock), trajectories are plain sequences.

What a trajectory is (as trajectory_msgs/JointTrajectory): joint names, a start stamp (0 means
"now", the instant it is received), points with time_from_start, positions for every named joint,
optional velocities and accelerations, no efforts.

Execution:
  * Between points the executor interpolates as JTC's spline does: cubic Hermite on a segment whose
    two ends both carry velocities, linear when positions only (a JTC would go quintic when
    accelerations are given too: accelerations are validated, then not used).
  * Before the first point it interpolates from the state (position and velocity) commanded at the
    trajectory's start instant; after the last point it holds that point's positions, at rest.
  * A new trajectory replaces the rest of the current one from its start instant: until a future
    stamp is reached, the current trajectory keeps running (ROS 1 JTC "trajectory replacement";
    a ROS 2 JTC drops the current trajectory on receipt and interpolates from the state at
    receipt instead). A stamp in the past starts it now, from the commanded state now: its points
    that lie in the past are dropped (no jump to the middle of a segment), as ROS 1 did.
  * An empty trajectory (no points) cancels the current one and holds the commanded position of
    now, as a ROS 2 JTC does on its topic interface.
  * Joints the trajectory does not name (allowed only with allow_partial_joints_goal, as JTC) hold
    their commanded position at the start instant, with zero velocity (JTC's fill_partial_goal).
  * A first point at time_from_start 0 (on a stamp of now or later) becomes the commanded state at
    the start instant at once; it may differ from it by start_tolerance at most.

Rejections, each with a reason naming the offending joint / point / value and a short key for
diagnostics counters. A JTC rejects size, unknown_joint, missing_joints, times, past and
end_velocity the same way; not_finite, limits and velocity are this driver's own (a real
controller would pass such a trajectory on, and the hardware would fault or move violently):
  size         no joint names with points, duplicate names, a point whose positions (velocities,
               accelerations) do not have one value per named joint, or efforts given
  unknown_joint  a name that is not one of the controller's joints
  missing_joints a controller joint not named, unless allow_partial_joints_goal
  times        time_from_start negative, or not strictly increasing
  not_finite   NaN or infinite positions, velocities or accelerations
  past         a nonzero stamp whose last point ends at or before now (dropped, as JTC does)
  end_velocity nonzero velocities at the last point, unless allow_nonzero_velocity_at_trajectory_end
               (JTC's parameter of that name; its default is false from Iron on, true in Humble)
  limits       a position outside the joint's limits: no silent clamping
  velocity     a segment, from the commanded state at the start to the first point included, whose
               average speed exceeds max_velocity * velocity_tolerance, or a point velocity above it
               (the start jump: a first point far from the commanded state due too soon); position
               changes up to start_tolerance never count (a point at time 0 on the current state)
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass
class TrajectoryPoint:
    time: float  # time_from_start, s
    positions: Sequence[float]
    velocities: Sequence[float] = ()  # empty: not given
    accelerations: Sequence[float] = ()
    effort: Sequence[float] = ()


@dataclass
class Trajectory:
    joint_names: Sequence[str]
    stamp: float = 0.0  # start instant, s on the executor's clock; 0: now
    points: list = field(default_factory=list)  # TrajectoryPoint


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str = ""  # why it was rejected (or what an accepted empty trajectory did)
    key: str = ""  # short reason class for counters: size, unknown_joint, ..., "" when accepted


def _reject(key: str, reason: str) -> Verdict:
    return Verdict(False, reason, key)


class _Plan:
    """Knots over absolute time for every controlled joint: knot i = (t[i], p[i], v[i]); segment i
    (knot i -> i + 1) is cubic Hermite when cubic[i], else linear. Before t[0] and after t[-1]: hold."""

    def __init__(self, t, p, v, cubic):
        self.t = np.asarray(t, dtype=np.float64)
        self.p = np.asarray(p, dtype=np.float64)
        self.v = np.asarray(v, dtype=np.float64)
        self.cubic = np.asarray(cubic, dtype=bool)

    @classmethod
    def hold(cls, t: float, positions) -> "_Plan":
        p = np.asarray(positions, dtype=np.float64)[None, :]
        return cls([t], p, np.zeros_like(p), np.zeros(0, bool))

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        if t < self.t[0] or t >= self.t[-1]:
            return (self.p[0] if t < self.t[0] else self.p[-1]).copy(), np.zeros(self.p.shape[1])
        i = int(np.searchsorted(self.t, t, side="right")) - 1
        t0, t1 = self.t[i], self.t[i + 1]
        h = t1 - t0
        p0, p1 = self.p[i], self.p[i + 1]
        if not self.cubic[i]:
            s = (t - t0) / h
            return p0 + s * (p1 - p0), (p1 - p0) / h
        v0, v1 = self.v[i], self.v[i + 1]
        s = (t - t0) / h
        s2, s3 = s * s, s * s * s
        pos = ((2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * h * v0 + (-2 * s3 + 3 * s2) * p1
               + (s3 - s2) * h * v1)
        vel = ((6 * s2 - 6 * s) * p0 + (3 * s2 - 4 * s + 1) * h * v0 + (-6 * s2 + 6 * s) * p1
               + (3 * s2 - 2 * s) * h * v1) / h
        return pos, vel

    def before(self, t: float) -> "_Plan":
        """This plan up to instant t (exclusive), ending in a knot at t with the state there: the
        truncated segment interpolates exactly as before (a cubic is fixed by its end states)."""
        pos, vel = self.sample(t)
        keep = int(np.searchsorted(self.t, t, side="left"))  # knots strictly before t
        if keep == 0:
            return _Plan.hold(t, pos)
        cubic = self.cubic[:keep]  # the last one is the segment t falls in, truncated
        if keep > len(self.cubic):  # t after the last knot: the hold after it is a flat (linear) segment
            cubic = np.concatenate([cubic, [False]])
        return _Plan(np.concatenate([self.t[:keep], [t]]), np.vstack([self.p[:keep], pos[None]]),
                     np.vstack([self.v[:keep], vel[None]]), cubic)

    def drop_before(self, t: float) -> None:
        """Forget knots no sample at or after t needs."""
        i = int(np.searchsorted(self.t, t, side="right")) - 1
        if i > 0:
            self.t, self.p, self.v, self.cubic = self.t[i:], self.p[i:], self.v[i:], self.cubic[i:]


class TrajectoryExecutor:
    """Accepts trajectories for a fixed set of joints and samples the commanded positions.

    joint_names, lower, upper, max_velocity: the controller's joints and their limits (max_velocity
    may hold inf for "no limit"). Thread-safe: submit() and sample() may run on different threads.
    """

    def __init__(self, joint_names: Sequence[str], lower, upper, max_velocity, *,
                 allow_partial_joints_goal: bool = False,
                 allow_nonzero_velocity_at_trajectory_end: bool = False,
                 velocity_tolerance: float = 1.2, start_tolerance: float = 0.01,
                 limit_tolerance: float = 1e-9):
        self.joint_names = list(joint_names)
        n = len(self.joint_names)
        if n == 0:
            raise ValueError("a trajectory executor needs at least one joint")
        if len(set(self.joint_names)) != n:
            raise ValueError(f"joint names repeat: {self.joint_names}")
        self.lower = np.asarray(lower, dtype=np.float64).reshape(-1)
        self.upper = np.asarray(upper, dtype=np.float64).reshape(-1)
        self.max_velocity = np.asarray(max_velocity, dtype=np.float64).reshape(-1)
        for label, arr in (("lower", self.lower), ("upper", self.upper), ("max_velocity", self.max_velocity)):
            if arr.shape != (n,):
                raise ValueError(f"{label} has {arr.size} values for {n} joints")
        if np.any(self.lower > self.upper):
            bad = int(np.argmax(self.lower > self.upper))
            raise ValueError(f"joint '{self.joint_names[bad]}': lower limit {self.lower[bad]} > "
                             f"upper {self.upper[bad]}")
        if np.any(~(self.max_velocity > 0)):
            bad = int(np.argmax(~(self.max_velocity > 0)))
            raise ValueError(f"joint '{self.joint_names[bad]}': max_velocity {self.max_velocity[bad]} must be > 0")
        if not velocity_tolerance >= 1.0:
            raise ValueError(f"velocity_tolerance {velocity_tolerance} must be >= 1")
        if not start_tolerance >= 0.0:
            raise ValueError(f"start_tolerance {start_tolerance} must be >= 0")
        self.allow_partial = bool(allow_partial_joints_goal)
        self.allow_end_velocity = bool(allow_nonzero_velocity_at_trajectory_end)
        self.velocity_tolerance = float(velocity_tolerance)
        self.start_tolerance = float(start_tolerance)
        self.limit_tolerance = float(limit_tolerance)
        self._index = {name: i for i, name in enumerate(self.joint_names)}
        self._lock = threading.Lock()
        self._plan = _Plan.hold(0.0, np.clip(np.zeros(n), self.lower, self.upper))

    # -- state -------------------------------------------------------------------------------
    def reset(self, positions, now: float) -> None:
        """Forget every trajectory; hold `positions` (e.g. the measured state after a sim reset)."""
        p = np.asarray(positions, dtype=np.float64).reshape(-1)
        if p.shape != (len(self.joint_names),):
            raise ValueError(f"reset: {p.size} positions for {len(self.joint_names)} joints")
        with self._lock:
            self._plan = _Plan.hold(float(now), p)

    def hold(self, now: float) -> None:
        """Cancel the current trajectory: hold the commanded position of now."""
        with self._lock:
            self._plan = _Plan.hold(float(now), self._plan.sample(now)[0])

    def sample(self, t: float) -> np.ndarray:
        """Commanded positions (J,) of the controlled joints at instant t."""
        return self.sample_state(t)[0]

    def sample_state(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Commanded (positions (J,), velocities (J,)) at instant t."""
        with self._lock:
            return self._plan.sample(float(t))

    def end_time(self) -> float:
        """Instant of the current trajectory's last point (from then on it holds)."""
        with self._lock:
            return float(self._plan.t[-1])

    # -- trajectories ------------------------------------------------------------------------
    def submit(self, traj: Trajectory, now: float) -> Verdict:
        """Validate and, when accepted, execute `traj` (received at instant `now`)."""
        names = list(traj.joint_names)
        points = list(traj.points)
        if not points:
            self.hold(now)
            return Verdict(True, "empty trajectory: current trajectory cancelled, holding position")
        verdict = self._check_names(names)
        if verdict:
            return verdict
        k = len(names)
        times = []
        for i, pt in enumerate(points):
            for label, one, values in (("positions", "position", pt.positions),
                                       ("velocities", "velocity", pt.velocities),
                                       ("accelerations", "acceleration", pt.accelerations)):
                if label != "positions" and len(values) == 0:
                    continue
                if len(values) != k:
                    return _reject("size", f"point {i}: {len(values)} {label} for {k} joint names")
                arr = np.asarray(values, dtype=np.float64)
                if not np.all(np.isfinite(arr)):
                    j = int(np.argmax(~np.isfinite(arr)))
                    return _reject("not_finite", f"point {i}: {one} of joint '{names[j]}' is {arr[j]}")
            if len(pt.effort):
                return _reject("size", f"point {i}: efforts given; this controller commands positions only")
            t = float(pt.time)
            if not math.isfinite(t) or t < 0:
                return _reject("times", f"point {i}: time_from_start {t} s is negative")
            if times and t <= times[-1]:
                return _reject("times", f"point {i}: time_from_start {t:.6g} s does not increase "
                                        f"(point {i - 1} is at {times[-1]:.6g} s)")
            times.append(t)
        stamp = float(traj.stamp)
        if not math.isfinite(stamp) or stamp < 0:
            return _reject("times", f"stamp {stamp} is not a valid instant")
        if stamp != 0.0 and stamp + times[-1] <= now:
            return _reject("past", f"trajectory ends in the past: stamp {stamp:.6f} + {times[-1]:.6g} s "
                                   f"<= now {now:.6f} s (dropped)")
        idx = [self._index[n] for n in names]
        pos = np.array([np.asarray(p.positions, dtype=np.float64) for p in points])  # (N, k)
        has_vel = np.array([len(p.velocities) > 0 for p in points])
        vel = np.array([np.asarray(p.velocities, dtype=np.float64) if len(p.velocities) else np.zeros(k)
                        for p in points])
        if has_vel[-1] and not self.allow_end_velocity and np.any(vel[-1] != 0):
            j = int(np.argmax(vel[-1] != 0))
            return _reject("end_velocity", f"last point: velocity {vel[-1][j]:.6g} of joint '{names[j]}' is not "
                                           "zero (allow_nonzero_velocity_at_trajectory_end is false)")
        lo, hi = self.lower[idx] - self.limit_tolerance, self.upper[idx] + self.limit_tolerance
        outside = (pos < lo) | (pos > hi)
        if np.any(outside):
            i, j = np.argwhere(outside)[0]
            return _reject("limits", f"point {i}: position {pos[i, j]:.6g} of joint '{names[j]}' is outside its "
                                     f"limits [{self.lower[idx[j]]:.6g}, {self.upper[idx[j]]:.6g}]")
        vmax = self.max_velocity[idx] * self.velocity_tolerance
        fast = np.abs(vel) > vmax
        if np.any(fast):
            i, j = np.argwhere(fast)[0]
            return _reject("velocity", f"point {i}: velocity {vel[i, j]:.6g} of joint '{names[j]}' exceeds "
                                       f"{vmax[j]:.6g} (max_velocity x velocity_tolerance)")
        with self._lock:
            return self._install(names, idx, stamp, np.asarray(times), pos, vel, has_vel, now)

    def _check_names(self, names: list) -> Verdict | None:
        if not names:
            return _reject("size", "trajectory has points but no joint names")
        seen = set()
        for n in names:
            if n in seen:
                return _reject("size", f"joint '{n}' is named twice")
            seen.add(n)
            if n not in self._index:
                return _reject("unknown_joint", f"unknown joint '{n}' (controller joints: {self.joint_names})")
        missing = [n for n in self.joint_names if n not in seen]
        if missing and not self.allow_partial:
            return _reject("missing_joints", f"joints {missing} are not in the trajectory "
                                             "(allow_partial_joints_goal is false)")
        return None

    def _install(self, names, idx, stamp, times, pos, vel, has_vel, now) -> Verdict:
        past = stamp != 0.0 and stamp < now
        start = now if stamp == 0.0 or past else stamp
        abs_t = (now if stamp == 0.0 else stamp) + times
        keep = abs_t > start if past else abs_t >= start  # a late trajectory's past points are dropped
        old = self._plan
        start_pos, start_vel = old.sample(start)
        # Every controlled joint, in controller order; joints not named hold at their start state.
        full_p = np.repeat(start_pos[None, :], len(times), axis=0)
        full_v = np.zeros((len(times), len(self.joint_names)))
        full_p[:, idx] = pos
        full_v[:, idx] = vel
        full_p, full_v, abs_t, has_vel = full_p[keep], full_v[keep], abs_t[keep], has_vel[keep]
        vmax = self.max_velocity * self.velocity_tolerance
        first_at_start = bool(abs_t[0] <= start)  # time_from_start 0 on a stamp of now or later
        if first_at_start:  # the point replaces the commanded state at once: only a tiny step may
            jump = np.abs(full_p[0] - start_pos)
            if np.any(jump > self.start_tolerance):
                j = int(np.argmax(jump))
                return _reject("velocity", f"start jump: the point at the start instant moves joint "
                                           f"'{self.joint_names[j]}' {jump[j]:.6g} from its commanded position "
                                           f"{start_pos[j]:.6g} at once (> start_tolerance {self.start_tolerance:g})")
            knot_t, knot_p = abs_t, full_p
        else:
            knot_t, knot_p = np.concatenate([[start], abs_t]), np.vstack([start_pos[None], full_p])
        dt = np.diff(knot_t)
        dp = np.abs(np.diff(knot_p, axis=0))
        speed = dp / dt[:, None] if len(dt) else dp
        too_fast = speed > vmax
        if len(dt) and not first_at_start:  # the start segment: differences within start_tolerance never count
            too_fast[0] &= dp[0] > self.start_tolerance
        if np.any(too_fast):
            s, j = np.argwhere(too_fast)[0]
            name = self.joint_names[j]
            if s == 0 and not first_at_start:
                what = (f"start jump: the first point moves joint '{name}' {dp[s, j]:.6g} from its commanded "
                        f"position {start_pos[j]:.6g} in {dt[s]:.6g} s")
            else:
                what = f"segment {s}: joint '{name}' moves {dp[s, j]:.6g} in {dt[s]:.6g} s"
            return _reject("velocity", f"{what}: {speed[s, j]:.6g} > {vmax[j]:.6g} "
                                       "(max_velocity x velocity_tolerance)")
        prefix = old.before(start)
        if first_at_start:
            prefix.p[-1] = full_p[0]
            prefix.v[-1] = full_v[0] if has_vel[0] else start_vel
            rest_t, rest_p, rest_v, rest_has = abs_t[1:], full_p[1:], full_v[1:], has_vel[1:]
            start_has = bool(has_vel[0])
        else:
            rest_t, rest_p, rest_v, rest_has = abs_t, full_p, full_v, has_vel
            start_has = True  # the commanded state at the start carries its velocity
        ends_has = np.concatenate([[start_has], rest_has])
        cubic = ends_has[:-1] & ends_has[1:]
        plan = _Plan(np.concatenate([prefix.t, rest_t]), np.vstack([prefix.p, rest_p]),
                     np.vstack([prefix.v, rest_v]), np.concatenate([prefix.cubic, cubic]))
        plan.drop_before(min(now, start))
        self._plan = plan
        dropped = int((~keep).sum())
        note = f" ({dropped} points already past dropped)" if dropped else ""
        return Verdict(True, f"accepted: {int(keep.sum())} points from {start:.6f} s to {abs_t[-1]:.6f} s{note}")
