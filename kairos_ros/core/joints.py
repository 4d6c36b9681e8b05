"""Joint-state validation and reordering into the configured joint order.

Rules for one sensor_msgs/JointState (each failure raises JointStateError naming joints/values):
- names and positions have the same length; names are unique;
- every configured joint is present; every other joint must be listed in `ignore`
  (grippers, mimic joints, wheels published by the same driver);
- configured positions are finite (an ignored joint may carry NaN: many drivers do);
- velocities are optional: None or empty means "not reported" and gives None. When present they
  must match the names in length and be finite on configured joints: a NaN velocity is an error,
  not silently dropped, because the trajectory blending uses it as the start velocity.
Efforts are not used.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np


class JointStateError(ValueError):
    """A joint state that must not be used; the message names the joints and values."""


def _as_vector(values, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise JointStateError(f"{what} are not numbers: {exc}") from exc
    if arr.ndim != 1:
        raise JointStateError(f"{what} must be a flat list, got shape {arr.shape}")
    return arr


def _non_finite(values: np.ndarray, configured: list[str]) -> dict[str, float]:
    return {configured[k]: float(values[k]) for k in np.flatnonzero(~np.isfinite(values))}


def order_joint_state(names, positions, velocities, configured: list[str], ignore: Iterable[str] = ()):
    """(positions (J,), velocities (J,) or None) in `configured` order, float64 copies."""
    names = list(names)
    pos = _as_vector(positions, "positions")
    if len(names) != pos.shape[0]:
        raise JointStateError(f"{len(names)} joint names but {pos.shape[0]} positions")
    index = {n: i for i, n in enumerate(names)}
    if len(index) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise JointStateError(f"duplicate joint names {dupes}")
    missing = [j for j in configured if j not in index]
    if missing:
        raise JointStateError(f"missing configured joints {missing} (got {names})")
    known = set(configured).union(ignore)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise JointStateError(f"unknown joints {unknown} (not configured, not in ignore_joints)")
    order = [index[j] for j in configured]
    out = pos[order]
    bad = _non_finite(out, configured)
    if bad:
        raise JointStateError(f"non-finite positions for {list(bad)}: {list(bad.values())}")
    if velocities is None or len(velocities) == 0:
        return out, None
    vel = _as_vector(velocities, "velocities")
    if vel.shape[0] != len(names):
        raise JointStateError(f"{len(names)} joint names but {vel.shape[0]} velocities")
    vel = vel[order]
    bad = _non_finite(vel, configured)
    if bad:
        raise JointStateError(f"non-finite velocities for {list(bad)}: {list(bad.values())}")
    return out, vel


def fit_velocity(times, values) -> np.ndarray | None:
    """Least-squares slope of values (N, D) against times (N,): the velocity that best explains N
    samples (robust to one noisy sample, unlike a two-point difference). None when N < 2 or the
    times do not spread."""
    t = np.asarray(times, dtype=np.float64)
    q = np.asarray(values, dtype=np.float64)
    if t.shape[0] < 2:
        return None
    t = t - t.mean()
    denom = float(np.sum(t * t))
    if denom <= 0:
        return None
    return (t[:, None] * (q - q.mean(axis=0))).sum(axis=0) / denom
