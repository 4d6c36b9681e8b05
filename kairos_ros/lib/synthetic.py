"""Deterministic synthetic robot data for test bags: smooth joint motion and camera scenes.

Everything is a pure function of (seed, time): the same arguments always give the same arrays, so
regenerated bags carry byte-identical message payloads.

Joints: each joint follows a sum of three low-frequency sinusoids (0.08-0.45 Hz) around the middle
of its range, reaching at most 40 % of the half-range, so positions stay strictly inside the
limits; when the robot's velocity and acceleration limits are given, the amplitude is also small
enough that the motion needs at most half of each (a synthetic robot moves as a real one could).
Grippers (flagged by the caller, by default joints named "*gripper*") open and close slowly (one
sinusoid of 0.1-0.2 Hz between 5 % and 95 % of their range). Velocities are the exact time
derivatives.

Cameras: a fixed gradient + soft checker background per camera and three anti-aliased shapes
(two discs, one rectangle) whose positions follow the joints (a shape's x and y are two joints'
normalised positions; on cameras named left_*/right_* the joints of that arm when the names tell),
and whose size follows a gripper when there is one. So the pictures move exactly when and as the
robot moves: there is something to predict.
"""
from __future__ import annotations

import numpy as np

AMPLITUDE = 0.4  # fraction of the half-range the sum of sinusoids reaches at most
LIMIT_SHARE = 0.5  # share of the velocity / acceleration limits the motion may use
FALLBACK_HALF_RANGE = np.pi  # joints without finite limits (continuous joints)
PALETTE = np.array([[230, 60, 50], [40, 170, 70], [50, 90, 220], [240, 200, 40], [200, 70, 200],
                    [40, 200, 210]], dtype=np.float32)


def is_gripper(name: str) -> bool:
    return "gripper" in name.lower()


class JointMotion:
    """q(t), dq/dt(t) for joints with limits [lower, upper]; vectorised over time."""

    def __init__(self, names: list[str], lower, upper, seed: int, grippers=None, max_velocity=None,
                 max_acceleration=None):
        self.names = list(names)
        grippers = [is_gripper(n) for n in self.names] if grippers is None else list(grippers)
        lower = np.asarray(lower, dtype=np.float64)
        upper = np.asarray(upper, dtype=np.float64)
        finite = np.isfinite(lower) & np.isfinite(upper) & (upper > lower)
        self.mid = np.where(finite, 0.5 * (lower + upper), 0.0)
        self.half = np.where(finite, 0.5 * (upper - lower), FALLBACK_HALF_RANGE)
        self.gripper = np.array([g and f for g, f in zip(grippers, finite)], dtype=bool)
        rng = np.random.default_rng(seed)
        n = len(self.names)
        self.freq = rng.uniform(0.08, 0.45, size=(n, 3))
        self.phase = rng.uniform(0.0, 2.0 * np.pi, size=(n, 3))
        weights = rng.uniform(0.3, 1.0, size=(n, 3))
        self.weight = weights / weights.sum(axis=1, keepdims=True)  # |sum of sines| <= 1
        # Grippers: one slow sinusoid only.
        self.freq[self.gripper, 0] = rng.uniform(0.1, 0.2, size=int(self.gripper.sum()))
        self.weight[self.gripper] = (1.0, 0.0, 0.0)
        self.scale = np.where(self.gripper, 0.9 * self.half, AMPLITUDE * self.half)
        omega = 2.0 * np.pi * self.freq
        for limit, bound in ((max_velocity, (self.weight * omega).sum(axis=1)),  # max |du/dt|
                             (max_acceleration, (self.weight * omega ** 2).sum(axis=1))):  # max |d2u/dt2|
            if limit is not None:
                self.scale = np.minimum(self.scale, LIMIT_SHARE * np.asarray(limit, dtype=np.float64) / bound)

    def _unit(self, t) -> tuple[np.ndarray, np.ndarray]:
        """u(t) in [-1, 1] and du/dt, each (T, J)."""
        t = np.asarray(t, dtype=np.float64).reshape(-1, 1, 1)
        arg = 2.0 * np.pi * self.freq * t + self.phase  # (T, J, 3)
        u = (self.weight * np.sin(arg)).sum(axis=-1)
        du = (self.weight * 2.0 * np.pi * self.freq * np.cos(arg)).sum(axis=-1)
        return u, du

    def positions(self, t) -> np.ndarray:
        return self.state(t)[0]

    def state(self, t) -> tuple[np.ndarray, np.ndarray]:
        """(positions, velocities), each (T, J) float64."""
        u, du = self._unit(t)
        return self.mid + self.scale * u, self.scale * du

    def normalised(self, t) -> np.ndarray:
        """Joint positions mapped to [-1, 1] over their motion range, (T, J)."""
        return self._unit(t)[0]


def _arm_pool(camera: str, names: list[str]) -> list[int]:
    """Indices of the joints a camera follows: its arm's when the names say, else all."""
    for side in ("left", "right"):
        if camera.lower().startswith(side):
            pool = [i for i, n in enumerate(names) if side in n.lower()]
            if pool:
                return pool
    return list(range(len(names)))


class Scene:
    """Renders (H, W, 3) uint8 RGB frames of one camera from normalised joint positions."""

    def __init__(self, camera: str, index: int, width: int, height: int, joint_names: list[str], seed: int,
                 grippers=None):
        self.width, self.height = width, height
        rng = np.random.default_rng([seed, index, 7919])
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        self.yy, self.xx = yy, xx
        top = rng.uniform(40, 200, size=3).astype(np.float32)
        bottom = rng.uniform(40, 200, size=3).astype(np.float32)
        grad = top + (bottom - top) * (yy / max(height - 1, 1))[..., None]
        cell = max(4, min(width, height) // 6)
        checker = (((xx // cell) + (yy // cell)) % 2)[..., None] * 2.0 - 1.0
        self.background = np.clip(grad + 12.0 * checker, 0, 255).astype(np.float32)
        pool = _arm_pool(camera, joint_names)
        flags = [is_gripper(n) for n in joint_names] if grippers is None else list(grippers)
        grippers = [i for i in pool if flags[i]] or [i for i, f in enumerate(flags) if f]
        self.size_joint = grippers[0] if grippers else None
        movers = [i for i in pool if i != self.size_joint] or pool
        n = len(movers)
        start, stride = int(rng.integers(0, n)), max(2, n // 3)  # spread the shapes over the joints
        self.axes = [(movers[(start + stride * k) % n], movers[(start + stride * k + 1) % n]) for k in range(3)]
        self.colors = PALETTE[rng.permutation(len(PALETTE))[:3]]
        self.radius = min(width, height) * rng.uniform(0.11, 0.17, size=3)

    def render(self, u: np.ndarray) -> np.ndarray:
        """u: (J,) normalised joint positions in [-1, 1] -> frame."""
        img = self.background.copy()
        grow = 1.0 + (0.35 * u[self.size_joint] if self.size_joint is not None else 0.0)
        for k, (ja, jb) in enumerate(self.axes):
            cx = self.width * (0.5 + 0.36 * u[ja])
            cy = self.height * (0.5 + 0.36 * u[jb])
            r = self.radius[k] * (grow if k == 0 else 1.0)
            if k < 2:
                dist = np.hypot(self.xx - cx, self.yy - cy)
                cover = np.clip(r - dist + 0.5, 0.0, 1.0)
            else:  # axis-aligned rectangle with soft edges
                cover = (np.clip(r - np.abs(self.xx - cx) + 0.5, 0.0, 1.0)
                         * np.clip(0.6 * r - np.abs(self.yy - cy) + 0.5, 0.0, 1.0))
            img += cover[..., None] * (self.colors[k] - img)
        return np.clip(img + 0.5, 0, 255).astype(np.uint8)
