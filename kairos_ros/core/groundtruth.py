"""Ground truth for scoring: recorded joint states at arbitrary times."""
from __future__ import annotations

import numpy as np


def interpolate_states(stamps, positions, query_times):
    """Linear interpolation of (N,) stamps / (N, D) positions at (H,) times.

    Returns (states (H, D), valid (H,) bool); times outside the recorded range are not valid
    (their rows are NaN), so an evaluator scores only steps that really happened.
    """
    t = np.asarray(stamps, dtype=np.float64)
    q = np.asarray(positions, dtype=np.float64)
    q = q.reshape(len(t), -1) if t.size else q.reshape(0, q.shape[-1] if q.ndim > 1 else 1)  # (N, D)
    x = np.asarray(query_times, dtype=np.float64)
    out = np.full((x.shape[0], q.shape[1]), np.nan)
    if t.size < 2:
        return out, np.zeros(x.shape[0], dtype=bool)
    if np.any(np.diff(t) <= 0):
        order = np.argsort(t, kind="stable")
        t, q = t[order], q[order]
        keep = np.concatenate([[True], np.diff(t) > 0])
        t, q = t[keep], q[keep]
    valid = (x >= t[0]) & (x <= t[-1])
    if np.any(valid):
        idx = np.clip(np.searchsorted(t, x[valid], side="right") - 1, 0, t.size - 2)
        w = ((x[valid] - t[idx]) / (t[idx + 1] - t[idx]))[:, None]
        out[valid] = q[idx] * (1 - w) + q[idx + 1] * w
    return out, valid
