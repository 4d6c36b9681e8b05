"""Joint-state validation and reordering into the configured joint order."""
from __future__ import annotations

from typing import Iterable

import numpy as np


class JointStateError(ValueError):
    """A joint state that must not be used; the message names the joints and values."""


def order_joint_state(names, positions, velocities, configured: list[str], ignore: Iterable[str] = ()):
    """(positions, velocities or None) in `configured` order, float64. Raises JointStateError."""
    names = list(names)
    pos = np.asarray(positions, dtype=np.float64).reshape(-1)
    if len(names) != pos.shape[0]:
        raise JointStateError(f"{len(names)} joint names but {pos.shape[0]} positions")
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise JointStateError(f"duplicate joint names {dupes}")
    index = {n: i for i, n in enumerate(names)}
    missing = [j for j in configured if j not in index]
    if missing:
        raise JointStateError(f"missing configured joints {missing}")
    known = set(configured) | set(ignore)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise JointStateError(f"unknown joints {unknown} (not configured, not in ignore_joints)")
    order = [index[j] for j in configured]
    out = pos[order]
    bad = [configured[k] for k in np.flatnonzero(~np.isfinite(out))]
    if bad:
        raise JointStateError(f"non-finite positions for {bad}: {[float(out[configured.index(b)]) for b in bad]}")
    vel = None
    if velocities is not None and len(velocities):
        v = np.asarray(velocities, dtype=np.float64).reshape(-1)
        if v.shape[0] != len(names):
            raise JointStateError(f"{len(names)} joint names but {v.shape[0]} velocities")
        vel = v[order]
        bad = [configured[k] for k in np.flatnonzero(~np.isfinite(vel))]
        if bad:
            raise JointStateError(f"non-finite velocities for {bad}")
    return out, vel
