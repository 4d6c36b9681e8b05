"""Small geometry and formatting helpers of the MJCF -> URDF conversion (urdf_build.py)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np


def sanitize(name: str) -> str:
    """ROS-friendly name: every character outside [A-Za-z0-9_] becomes '_'."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def fmt(x: float, digits: int = 8) -> str:
    x = float(x)
    if abs(x) < 10.0 ** -(digits + 4):  # float noise (and negative zero) -> 0
        return "0"
    return f"{x:.{digits}g}"


def vec(v, digits: int = 8) -> str:
    return " ".join(fmt(x, digits) for x in v)


def quat_to_mat(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def mat_to_rpy(r: np.ndarray) -> tuple[float, float, float]:
    """URDF rpy (R = Rz(yaw) Ry(pitch) Rx(roll))."""
    cos_pitch = math.hypot(r[0, 0], r[1, 0])
    pitch = math.atan2(-r[2, 0], cos_pitch)
    if cos_pitch < 1e-9:  # gimbal lock: yaw folded into roll
        return math.atan2(-r[1, 2], r[1, 1]), pitch, 0.0
    return math.atan2(r[2, 1], r[2, 2]), pitch, math.atan2(r[1, 0], r[0, 0])


def axis_angle(axis, angle: float) -> np.ndarray:
    k = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


@dataclass
class Pose:
    p: np.ndarray = field(default_factory=lambda: np.zeros(3))
    r: np.ndarray = field(default_factory=lambda: np.eye(3))

    def __matmul__(self, other: "Pose") -> "Pose":
        return Pose(self.p + self.r @ other.p, self.r @ other.r)

    def is_identity(self) -> bool:
        return bool(np.allclose(self.p, 0, atol=1e-12) and np.allclose(self.r, np.eye(3), atol=1e-12))

    def origin(self, digits: int = 8) -> str:
        return f'<origin xyz="{vec(self.p, digits)}" rpy="{vec(mat_to_rpy(self.r), digits)}"/>'
