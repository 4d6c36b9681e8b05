"""From a validated action chunk to the trajectory an adapter sends, given the time now."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from kairos_ros.core.chunks import DEFAULT_BOUNDS, ChunkBounds, ChunkError, validate_chunk
from kairos_ros.core.embodiment import EmbodimentSpec
from kairos_ros.core.stamps import FUTURE_TOLERANCE, stamp_problem
from kairos_ros.core.trajectory import TrajectoryPlan, chunk_to_trajectory
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
