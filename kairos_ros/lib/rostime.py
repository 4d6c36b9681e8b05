"""Seconds <-> ROS time messages (builtin_interfaces Time and Duration) without rclpy: the nodes,
the tools that publish (kairos-play, kairos-bench) and the tests convert stamps with these."""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration, Time


def to_sec(stamp) -> float:
    """A Time or Duration (anything with sec and nanosec) in seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def _split(seconds: float) -> tuple[int, int]:
    """(whole seconds rounded down, nanoseconds 0..999999999)."""
    sec = int(np.floor(seconds))
    nsec = int(round((seconds - sec) * 1e9))
    if nsec >= 1_000_000_000:
        sec, nsec = sec + 1, nsec - 1_000_000_000
    return sec, nsec


def to_time(seconds: float) -> Time:
    """A stamp; times before the epoch become the epoch (Time cannot be negative)."""
    sec, nsec = _split(seconds)
    return Time(sec=max(sec, 0), nanosec=nsec if sec >= 0 else 0)


def to_duration(seconds: float) -> Duration:
    sec, nsec = _split(seconds)
    return Duration(sec=sec, nanosec=nsec)
