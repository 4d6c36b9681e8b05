"""Stamp checks against the clock in both directions.

Every age check in the graph uses `stamp_problem`: a stamp older than `max_age` is stale, and a
stamp ahead of the clock by more than `future_tolerance` is refused too (a camera stamped in 2038,
a chunk stamped 100 s ahead). Both use the node's clock, sim time included. Pure logic.
"""
from __future__ import annotations

import math

# Default tolerance for stamps ahead of the node's clock (s): clock skew between hosts that are
# synchronised with NTP/PTP stays well below this; anything further ahead is not a measurement.
FUTURE_TOLERANCE = 0.1
FUTURE_TOLERANCE_MAX = 10.0


def readable(x: float) -> str:
    """A number that reads well whatever its size (no 300-digit floats in a log line)."""
    if not math.isfinite(x):
        return str(x)
    return f"{x:.3f}" if abs(x) < 1e6 else f"{x:.4g}"


def stamp_problem(stamp: float, now: float, max_age: float, future_tolerance: float, what: str,
                  age_param: str = "max_age", future_param: str = "future_stamp_tolerance") -> str | None:
    """None when `stamp` (s) is usable at `now`; else a message naming what is wrong and the
    parameter that bounds it. max_age <= 0 disables the age check only, never the future check."""
    if not math.isfinite(stamp):
        return f"{what} stamp {stamp} is not finite"
    ahead = stamp - now
    if ahead > future_tolerance:
        return (f"{what} stamp is {readable(ahead)} s ahead of the clock (> {future_param} "
                f"{future_tolerance}): refused")
    if max_age > 0 and -ahead > max_age:
        return f"{what} is {readable(-ahead)} s old (> {age_param} {max_age})"
    return None
