"""Waiting on a condition with a deadline (docs/architecture.md, convention 10): the one helper the
ROS tests (integration/rosutil.py) and the remote-inference tests (remote/serve_util.py) share."""
from __future__ import annotations

import time


def wait_for(predicate, timeout: float, period: float = 0.05) -> bool:
    """True as soon as predicate() holds, polled every `period` s; else its value at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period)
    return bool(predicate())
