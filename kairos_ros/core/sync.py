"""Approximate-time synchronisation of N streams (cameras + joint states) within a slop.

Rules (all stamps are float seconds):
- add() queues a message on its stream (bounded: the oldest falls out at `queue_size`).
- A stamp behind the newest one already seen on its stream by at most `jump_threshold` is late
  (reordered in transit): it is dropped, counted in `dropped_late`, and OutOfOrderError is raised.
  An equal stamp is not late.
- A stamp behind by more than `jump_threshold` starts a new time epoch (a looping bag, a clock
  reset). If it lies within `jump_threshold` of the newest stamp of another stream, those streams
  have already jumped and only this stream's queue held leftovers of the old epoch: they are
  cleared (counted in `stale_cleared`) and the message is queued. Otherwise every queue and the
  last-returned marker are cleared, add() returns "reset" and the message is NOT queued (the
  caller resets its own state and adds it again). A bag that loops thus gives one reset, not
  one per stream.
- pop_latest() returns the newest complete set whose stamps span at most `slop`, newer (by its
  newest stamp) than the last set returned; then every queued message at or before the chosen one
  of its stream is discarded, so no message is used twice and older sets are skipped.
"""
from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import deque


class OutOfOrderError(ValueError):
    """A message older than the newest one already seen on its stream (dropped)."""


def _closest(stamps: list[float], pivot: float) -> int:
    """Index of the stamp closest to pivot in a sorted list; a tie goes to the newer stamp and,
    among equal stamps, to the message that arrived last."""
    i = bisect_left(stamps, pivot)
    if i == len(stamps):
        return i - 1
    upper = bisect_right(stamps, stamps[i]) - 1
    if i > 0 and pivot - stamps[i - 1] < stamps[upper] - pivot:
        return i - 1
    return upper


class ApproximateSync:
    """Per-stream bounded queues; pop_latest() returns the newest complete set within `slop`."""

    def __init__(self, stream_names: list[str], slop: float, queue_size: int = 10, jump_threshold: float = 1.0):
        if not slop > 0:
            raise ValueError(f"slop {slop} must be > 0")
        if queue_size < 1:
            raise ValueError(f"queue_size {queue_size} must be >= 1")
        if len(set(stream_names)) != len(stream_names) or not stream_names:
            raise ValueError(f"stream names must be unique and non-empty: {stream_names}")
        self.names = list(stream_names)
        self.slop = float(slop)
        self.jump_threshold = max(float(jump_threshold), self.slop)
        self.queues: dict[str, deque] = {n: deque(maxlen=queue_size) for n in self.names}
        self.newest: dict[str, float | None] = {n: None for n in self.names}
        self.last_set_stamp: float | None = None
        self.dropped_late = 0
        self.stale_cleared = 0
        self.resets = 0

    def clear(self) -> None:
        """Forget every queued message, the newest stamps and the last returned set."""
        for q in self.queues.values():
            q.clear()
        self.newest = {n: None for n in self.names}
        self.last_set_stamp = None

    def add(self, stream: str, stamp: float, item) -> str | None:
        """Queue `item`; "reset" after a backwards time jump (see the module rules), else None."""
        if stream not in self.queues:
            raise KeyError(f"unknown stream '{stream}' (known: {self.names})")
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"stream '{stream}': non-finite stamp {stamp}")
        newest = self.newest[stream]
        if newest is not None and stamp < newest:
            if newest - stamp <= self.jump_threshold:
                self.dropped_late += 1
                raise OutOfOrderError(f"stream '{stream}': stamp {stamp:.6f} is older than the newest "
                                      f"{newest:.6f} (dropped)")
            if self._joins_other_streams(stream, stamp):
                self.stale_cleared += len(self.queues[stream])
                self.queues[stream].clear()
            else:
                self.clear()
                self.resets += 1
                return "reset"
        self.newest[stream] = stamp
        self.queues[stream].append((stamp, item))
        return None

    def _joins_other_streams(self, stream: str, stamp: float) -> bool:
        if self.last_set_stamp is not None and self.last_set_stamp - stamp > self.jump_threshold:
            return False
        return any(t is not None and abs(t - stamp) <= self.jump_threshold
                   for name, t in self.newest.items() if name != stream)

    def pop_latest(self) -> dict | None:
        """{stream: (stamp, item)} for the newest valid set, or None when there is none."""
        if any(not q for q in self.queues.values()):
            return None
        stamps = {n: [s for s, _ in q] for n, q in self.queues.items()}  # each sorted (add enforces it)
        pivots = sorted({s for ss in stamps.values() for s in ss}, reverse=True)
        for pivot in pivots:
            picks = {n: _closest(ss, pivot) for n, ss in stamps.items()}
            chosen = [stamps[n][i] for n, i in picks.items()]
            hi, lo = max(chosen), min(chosen)
            if self.last_set_stamp is not None and hi <= self.last_set_stamp:
                return None  # a lower pivot never picks newer messages: nothing newer exists
            if hi - lo <= self.slop:
                found = {n: self.queues[n][i] for n, i in picks.items()}
                for n, q in self.queues.items():
                    cut = found[n][0]
                    while q and q[0][0] <= cut:
                        q.popleft()
                self.last_set_stamp = hi
                return found
        return None
