"""The visualizer's state, without ROS: chunks in, trails / ghost poses / strips out.

The node calls these with plain data (core types, numpy arrays, float seconds on its clock) and
turns the results into messages; every method raises a ValueError subclass naming the problem
with bad input, and leaves the state as it was.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from kairos_ros.core.chunks import validate_chunk
from kairos_ros.core.kinematics import Kinematics, KinematicsError, chunk_rows
from kairos_ros.core.types import ActionChunkData
from kairos_ros.core.visualization import GHOST_MODES, MarkerBook, Trail, ghost_pose, trail_markers


def robot_model(spec, urdf_path: str = "", base_link: str = "", end_effectors: Sequence[str] = ()):
    """(urdf_path, base_link, end_effectors) from the overrides, else from the embodiment
    (EmbodimentSpec.urdf_path / base_link / end_effectors; no end effectors: no trails). Raises
    ValueError when there is no URDF."""
    urdf = urdf_path or getattr(spec, "urdf_path", "") or ""
    where = f"embodiment '{spec.name}' ({spec.path or 'no adapter.yaml'})"
    if not urdf:
        raise ValueError(f"{where} names no URDF (EmbodimentSpec.urdf_path) and parameter 'urdf_path' is empty")
    ees = list(end_effectors) or list(getattr(spec, "end_effectors", None) or [])
    base = base_link or getattr(spec, "base_link", "") or ""
    return urdf, base, ees


class Visualizer:
    """Trails of the current and previous chunks, the trajectory-preview trail and the ghost."""

    def __init__(self, spec, kin: Kinematics, trail_width: float = 0.005, ghost_mode: str = "play"):
        if ghost_mode not in GHOST_MODES:
            raise ValueError(f"ghost mode '{ghost_mode}' is not one of {list(GHOST_MODES)}")
        unknown = [j for j in spec.joint_names if j not in kin.movable_joints]
        if unknown:
            raise KinematicsError(f"joints {unknown} of embodiment '{spec.name}' are not movable joints of "
                                  f"URDF '{kin.urdf_path}' (it has {list(kin.movable_joints)})")
        self.spec, self.kin = spec, kin
        self.width, self.ghost_mode = trail_width, ghost_mode
        self.state: dict[str, float] = {}  # newest finite joint-state value per URDF joint
        self.current: np.ndarray | None = None  # (H, E, 3)
        self.previous: np.ndarray | None = None
        self.trails = MarkerBook()
        self.preview = MarkerBook()
        self.ghost_rows: np.ndarray | None = None  # (H, A) for kin.joint_names
        self.ghost_period = 0.0
        self.last_chunk_time: float | None = None

    def set_joint_state(self, names: Sequence[str], positions: Sequence[float]) -> None:
        """Remember the robot's joints (used for the URDF joints a chunk does not drive). Joints the
        URDF does not have are skipped; a length mismatch or non-finite value raises."""
        q = np.asarray(positions, dtype=np.float64)
        if q.shape != (len(names),):
            raise ValueError(f"joint state has {len(names)} names and {q.size} positions")
        bad = [n for n, x in zip(names, q) if not np.isfinite(x)]
        if bad:
            raise ValueError(f"joint state has non-finite positions for {bad}")
        known = set(self.kin.joint_names)
        self.state.update({n: float(x) for n, x in zip(names, q) if n in known})

    def defaults(self) -> np.ndarray:
        """(A,) the newest joint state where known, else the URDF's neutral value."""
        out = self.kin.neutral()
        for i, name in enumerate(self.kin.joint_names):
            if name in self.state:
                out[i] = self.state[name]
        return out

    def on_chunk(self, chunk: ActionChunkData, now: float) -> tuple[list[Trail], list[tuple[str, int]]]:
        """A new predicted chunk: (trails to draw, (ns, id) to delete). The previous chunk's trail
        becomes the dimmer one. Raises ChunkError / KinematicsError and keeps the old state."""
        validate_chunk(chunk, self.spec)
        rows = chunk_rows(self.kin, self.spec, chunk.values, self.defaults())
        path = self.kin.positions(rows)
        if not np.all(np.isfinite(path)):
            raise KinematicsError("forward kinematics gave non-finite positions")
        self.previous, self.current = self.current, path
        self.ghost_rows, self.ghost_period, self.last_chunk_time = rows, float(chunk.step_period), now
        trails = trail_markers(path, self.kin.frames, "current", self.width)
        if self.previous is not None:
            trails += trail_markers(self.previous, self.kin.frames, "previous", self.width, previous=True)
        return self.trails.update(trails)

    def on_trajectory(self, joint_names: Sequence[str], points: np.ndarray):
        """A JointTrajectory's positions (N, J) named by joint_names -> (trails, deletes)."""
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[0] == 0:
            raise ValueError(f"trajectory positions of shape {points.shape}")
        path = self.kin.fk(list(joint_names), points, self.defaults())
        return self.preview.update(trail_markers(path, self.kin.frames, "preview", self.width))

    def expire(self, now: float, stale_after: float) -> list[tuple[str, int]]:
        """Markers to delete when no chunk came for stale_after seconds (0: never); the ghost stops."""
        if stale_after <= 0 or self.last_chunk_time is None or now - self.last_chunk_time <= stale_after:
            return []
        self.current = self.previous = self.ghost_rows = self.last_chunk_time = None
        return self.trails.clear()

    def ghost(self, now: float) -> tuple[list[str], np.ndarray] | None:
        """(joint names, positions) for the ghost robot now, or None before the first chunk."""
        if self.ghost_rows is None:
            return None
        pose = ghost_pose(self.ghost_rows, self.ghost_period, now - self.last_chunk_time, self.ghost_mode)
        return list(self.kin.joint_names), pose

