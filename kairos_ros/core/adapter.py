"""From a validated action chunk to the trajectory an adapter sends, given the time now: plan_chunk for
one chunk, ChunkPlanner for the stream of chunks (blending, gates) an adapter executes."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from kairos_ros.core.blending import AbsolutePlan, ChunkBlender, DelayEstimator
from kairos_ros.core.chunks import DEFAULT_BOUNDS, ChunkBounds, ChunkError, validate_chunk
from kairos_ros.core.embodiment import EmbodimentSpec
from kairos_ros.core.stamps import FUTURE_TOLERANCE, stamp_problem
from kairos_ros.core.safety import SafetyLimits, SafetyState
from kairos_ros.core.trajectory import TrajectoryPlan, chunk_to_trajectory, replan_positions
from kairos_ros.core.types import ActionChunkData


def plan_chunk(chunk: ActionChunkData, spec: EmbodimentSpec, current_positions: np.ndarray | None,
               now: float, max_age: float, min_lead: float = 0.0, bounds: ChunkBounds = DEFAULT_BOUNDS,
               future_tolerance: float = FUTURE_TOLERANCE) -> TrajectoryPlan:
    """Trajectory for `chunk` whose time_from_start is relative to `now`.

    Row k of the chunk stands for chunk.stamp + (k + 1) * step_period; rows whose time is already
    past (or closer than `min_lead`) are dropped, so a late chunk never replays the past. Raises
    ChunkError naming the reason when the chunk is invalid or too large (`bounds`), stale, stamped
    ahead of `now` by more than `future_tolerance`, or entirely in the past.
    """
    validate_chunk(chunk, spec, bounds)
    problem = stamp_problem(chunk.stamp, now, max_age, future_tolerance, "chunk (its observation)",
                            "max_chunk_age", "future_stamp_tolerance")
    if problem:
        raise ChunkError(("stale chunk: " if chunk.stamp <= now else "") + problem)
    if current_positions is None:
        raise ChunkError("no valid joint state received yet: cannot start a trajectory")
    plan = chunk_to_trajectory(chunk, spec, current_positions, start_delay=chunk.stamp - now)
    keep = plan.times > min_lead
    if not np.any(keep):
        raise ChunkError(f"every point of the chunk lies in the past (last at {plan.times[-1]:+.3f} s)")
    if np.all(keep):
        return plan
    velocities = plan.velocities[keep].copy()
    return replace(plan, times=plan.times[keep], positions=plan.positions[keep], velocities=velocities)


@dataclass
class PlannerSettings:
    """The adapter node's chunk-handling parameters (see its schema for each)."""
    max_chunk_age: float = 0.5
    max_joint_state_age: float = 0.5
    min_lead: float = 0.0
    future_stamp_tolerance: float = FUTURE_TOLERANCE
    blend_mode: str = "rtc"
    blend_time: float = 0.2
    ensemble_decay: float = 2.0
    bounds: ChunkBounds = DEFAULT_BOUNDS


class ChunkPlanner:
    """What an adapter does with one chunk, without ROS: check it, plan it against the newest joint
    state, blend it with the plan being executed, pass it through the safety gates, remember what is
    sent. Used by the adapter node and by closed-loop evaluation, so both execute chunks alike."""

    def __init__(self, spec: EmbodimentSpec, settings: PlannerSettings, safety: SafetyState):
        self.spec = spec
        self.settings = settings
        self.safety = safety
        self.blender = ChunkBlender(settings.blend_mode, settings.blend_time, settings.ensemble_decay)
        self.delay = DelayEstimator()

    def plan(self, chunk: ActionChunkData, positions: np.ndarray | None, positions_stamp: float,
             now: float) -> TrajectoryPlan:
        """The trajectory to send for `chunk` at `now` (times relative to now), or ChunkError /
        GateError (with .gate) naming why not. Nothing is remembered until accept()."""
        s = self.settings
        if positions is not None and s.max_joint_state_age > 0 and now - positions_stamp > s.max_joint_state_age:
            raise ChunkError(f"newest valid joint state is {now - positions_stamp:.3f} s old "
                             f"(> max_joint_state_age {s.max_joint_state_age})")
        plan = plan_chunk(chunk, self.spec, positions, now, s.max_chunk_age, s.min_lead, s.bounds,
                          s.future_stamp_tolerance)
        self.delay.add(now - chunk.stamp)
        blended = self.blender.blend(AbsolutePlan(chunk.stamp, now + plan.times, plan.positions), remember=False)
        plan = replan_positions(plan, blended, self.spec, positions)
        self.safety.check_plan(plan, positions)
        return plan

    def accept(self, chunk: ActionChunkData, plan: TrajectoryPlan, now: float) -> None:
        """The plan was sent: the next chunk blends from it, and the watchdog is fed."""
        self.safety.accepted(now)
        self.blender.remember(AbsolutePlan(chunk.stamp, now + plan.times, plan.positions))

    def reset(self) -> None:
        """After a hold or a time jump: the next chunk starts from the measured state."""
        self.blender.reset()
        self.delay.reset()


def planner_from_params(spec: EmbodimentSpec, p: dict, armed: bool) -> ChunkPlanner:
    """The ChunkPlanner (with its SafetyState) that the adapter node's validated parameters describe;
    the node and closed-loop evaluation both build it here. ValueError names a bad combination."""
    limits = SafetyLimits(p["max_start_jump"], p["max_step"], p["velocity_tolerance"], p["watchdog_timeout"],
                          p["acceleration_tolerance"])
    bounds = ChunkBounds(p["max_chunk_rows"], p["max_step_period"], p["max_trajectory_duration"])
    settings = PlannerSettings(p["max_chunk_age"], p["max_joint_state_age"], p["min_lead"],
                               p["future_stamp_tolerance"], p["blend_mode"], p["blend_time"], p["ensemble_decay"],
                               bounds)
    return ChunkPlanner(spec, settings, SafetyState(spec, limits, armed=armed))
