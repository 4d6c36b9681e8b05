"""Approximate-time synchronisation of N streams (cameras + joint states) within a slop."""
from __future__ import annotations

from collections import deque


class OutOfOrderError(ValueError):
    """A message older than what was already used or seen on its stream (dropped)."""


class ApproximateSync:
    """Per-stream bounded queues; pop_latest() returns the newest complete set within `slop`.

    A set takes one message per stream, chosen closest in time to a pivot message; its stamps
    span at most `slop`. After a set is returned, every queued message at or before the chosen
    one of its stream is discarded, so each set is made of fresh messages. A stamp more than
    `jump_threshold` seconds behind the newest one seen on its stream (a looping bag, a clock
    reset) makes add() return "reset" after clearing all state; a smaller step backwards raises
    OutOfOrderError (the message is dropped).
    """

    def __init__(self, stream_names: list[str], slop: float, queue_size: int = 10, jump_threshold: float = 1.0):
        if slop <= 0:
            raise ValueError(f"slop {slop} must be > 0")
        if queue_size < 1:
            raise ValueError(f"queue_size {queue_size} must be >= 1")
        if len(set(stream_names)) != len(stream_names) or not stream_names:
            raise ValueError(f"stream names must be unique and non-empty: {stream_names}")
        self.names = list(stream_names)
        self.slop = slop
        self.jump_threshold = max(jump_threshold, slop)
        self.queues = {n: deque(maxlen=queue_size) for n in self.names}
        self.newest = {n: None for n in self.names}
        self.last_set_stamp: float | None = None
        self.dropped_late = 0

    def clear(self) -> None:
        for q in self.queues.values():
            q.clear()
        self.newest = {n: None for n in self.names}
        self.last_set_stamp = None

    def add(self, stream: str, stamp: float, item) -> str | None:
        if stream not in self.queues:
            raise KeyError(f"unknown stream '{stream}' (known: {self.names})")
        newest = self.newest[stream]
        if newest is not None and stamp < newest:
            if newest - stamp > self.jump_threshold:
                self.clear()
                return "reset"
            self.dropped_late += 1
            raise OutOfOrderError(f"stream '{stream}': stamp {stamp:.6f} is older than the newest {newest:.6f}")
        self.newest[stream] = stamp
        self.queues[stream].append((stamp, item))
        return None

    def pop_latest(self) -> dict | None:
        """{stream: (stamp, item)} for the newest valid set, or None when no set is complete."""
        if any(not q for q in self.queues.values()):
            return None
        pivots = sorted((s for q in self.queues.values() for s, _ in q), reverse=True)
        for pivot in pivots:
            chosen = {n: min(q, key=lambda m: abs(m[0] - pivot)) for n, q in self.queues.items()}
            stamps = [m[0] for m in chosen.values()]
            if max(stamps) - min(stamps) > self.slop:
                continue
            if self.last_set_stamp is not None and max(stamps) <= self.last_set_stamp:
                return None
            for n, q in self.queues.items():
                cut = chosen[n][0]
                while q and q[0][0] <= cut:
                    q.popleft()
            self.last_set_stamp = max(stamps)
            return chosen
        return None
