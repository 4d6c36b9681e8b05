"""What the visualizer draws, as plain data (no ROS): the future-frame strip, end-effector trails
coloured by time, the marker bookkeeping that deletes stale markers, and the ghost robot's pose.

Trails: one LINE_STRIP per end effector and chunk, points = FK of each chunk row, coloured from
START_COLOR (first row) to END_COLOR (last row); the previous chunk's trail is drawn dimmer.
Marker identity is (namespace, id) and stays stable: namespace = "<kind>/<end effector>", id 0,
so a new chunk replaces its predecessor in RViz, and MarkerBook emits a DELETE for every marker
that was drawn before and is no longer part of the picture.

Ghost modes (the pose the ghost robot shows, t = seconds since the chunk arrived):
  play   rows at their own time base (row k at k * step_period), linearly interpolated; after
         the last row the final pose is held until the next chunk
  loop   the same, restarting from the first row every horizon * step_period
  final  the chunk's last row
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GHOST_MODES = ("play", "loop", "final")
GHOST_PREFIX = "ghost/"  # frame_prefix of the ghost's robot_state_publisher (RViz: TF Prefix "ghost")
GHOST_JOINT_STATES = "/kairos/ghost/joint_states"
GHOST_DESCRIPTION = "/kairos/ghost/robot_description"
START_COLOR = (0.1, 0.6, 1.0)  # RGB of a chunk's first row (blue) ...
END_COLOR = (1.0, 0.25, 0.1)  # ... blending into its last row (orange-red)
CURRENT_ALPHA, PREVIOUS_ALPHA, PREVIOUS_SHADE = 1.0, 0.35, 0.5


class VisualizationError(ValueError):
    """Input the visualizer cannot draw; the message names the problem."""


def image_strip(frames: list[np.ndarray], gap: int = 0) -> np.ndarray:
    """Frames (each (H_i, W_i, 3) uint8) side by side, oldest left, `gap` black columns between
    them; shorter frames are top-aligned on black. Returns (max H_i, sum W_i + gap * (n-1), 3)."""
    if not frames:
        raise VisualizationError("no frames to put in a strip")
    if gap < 0:
        raise VisualizationError(f"strip gap {gap} must be >= 0")
    for i, f in enumerate(frames):
        if f.ndim != 3 or f.shape[2] != 3 or f.dtype != np.uint8 or f.shape[0] == 0 or f.shape[1] == 0:
            raise VisualizationError(f"frame {i} has shape {f.shape} and dtype {f.dtype}, expected (H, W, 3) uint8")
    height = max(f.shape[0] for f in frames)
    width = sum(f.shape[1] for f in frames) + gap * (len(frames) - 1)
    out = np.zeros((height, width, 3), dtype=np.uint8)
    x = 0
    for f in frames:
        out[:f.shape[0], x:x + f.shape[1]] = f
        x += f.shape[1] + gap
    return out


def time_colors(n: int, alpha: float = 1.0, shade: float = 1.0) -> np.ndarray:
    """(n, 4) RGBA from START_COLOR to END_COLOR along a chunk, RGB scaled by `shade`."""
    s = np.linspace(0.0, 1.0, n)[:, None] if n > 1 else np.zeros((n, 1))
    rgb = (1 - s) * np.asarray(START_COLOR) + s * np.asarray(END_COLOR)
    return np.concatenate([rgb * shade, np.full((n, 1), alpha)], axis=1)


@dataclass
class Trail:
    """One LINE_STRIP marker."""

    ns: str
    id: int
    points: np.ndarray  # (N, 3) in the base link
    colors: np.ndarray  # (N, 4) RGBA in [0, 1]
    width: float


def trail_markers(path: np.ndarray, end_effectors, kind: str, width: float, previous: bool = False) -> list[Trail]:
    """(H, E, 3) end-effector path -> one Trail per end effector (none when H < 2: a line strip
    needs two points)."""
    path = np.asarray(path, dtype=np.float64)
    if path.ndim != 3 or path.shape[1] != len(end_effectors) or path.shape[2] != 3:
        raise VisualizationError(f"path of shape {path.shape} for {len(end_effectors)} end effectors")
    if not np.all(np.isfinite(path)):
        raise VisualizationError("path has non-finite points")
    if path.shape[0] < 2:
        return []
    colors = time_colors(path.shape[0], PREVIOUS_ALPHA if previous else CURRENT_ALPHA,
                         PREVIOUS_SHADE if previous else 1.0)
    return [Trail(f"{kind}/{ee}", 0, path[:, e].copy(), colors, width) for e, ee in enumerate(end_effectors)]


class MarkerBook:
    """Remembers which (ns, id) are on screen, so every update deletes the ones that went away."""

    def __init__(self):
        self.shown: set[tuple[str, int]] = set()

    def update(self, trails: list[Trail]) -> tuple[list[Trail], list[tuple[str, int]]]:
        """(markers to add or modify, (ns, id) to delete)."""
        keys = {(t.ns, t.id) for t in trails}
        if len(keys) != len(trails):
            raise VisualizationError(f"duplicate marker ids among {sorted(t.ns for t in trails)}")
        stale = sorted(self.shown - keys)
        self.shown = keys
        return trails, stale

    def clear(self) -> list[tuple[str, int]]:
        stale, self.shown = sorted(self.shown), set()
        return stale


def ghost_pose(joints: np.ndarray, step_period: float, elapsed: float, mode: str = "play") -> np.ndarray:
    """The pose (J,) the ghost robot shows `elapsed` seconds after a chunk of (H, J) joint
    positions arrived (see the module docstring for the modes)."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 2 or joints.shape[0] == 0:
        raise VisualizationError(f"ghost chunk of shape {joints.shape}, expected (H >= 1, J)")
    if mode not in GHOST_MODES:
        raise VisualizationError(f"ghost mode '{mode}' is not one of {list(GHOST_MODES)}")
    if not (np.isfinite(step_period) and step_period > 0):
        raise VisualizationError(f"step_period {step_period} must be finite and > 0")
    horizon = joints.shape[0]
    if mode == "final" or horizon == 1:
        return joints[-1].copy()
    t = max(float(elapsed), 0.0) / step_period  # in rows
    if mode == "loop":
        t = t % horizon  # the last row is held for one step, then the replay jumps back to the first
    if t >= horizon - 1:
        return joints[-1].copy()
    k = int(np.floor(t))
    frac = t - k
    return (1 - frac) * joints[k] + frac * joints[k + 1]
