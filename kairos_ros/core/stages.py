"""Where a chunk's time went: the world model's control path in stages, and the stage to blame
when a chunk misses the latency budget (issue 13).

A chunk's time runs from its observation's arrival to the chunk's publication:
- `intake`: the Observation message checked, its images converted and composed (model input);
- `wait`: -> the inference thread starts on it (busy with an earlier chunk, a reset, an Imagine
  goal on the shared worker, or predicted frames when chunk_first is off);
- the backend's stages (kairos: `encode` (codec), `history` (context and history / world-state
  update), `sample` (action sampling), `output` (denormalising), and with chunk_first off also
  `frames` and `decode`); a backend that reports none is one stage, `backend`;
- `message`: building and publishing the ActionChunk.
Pure logic: the node measures, this keeps percentiles per stage and words the warning.
"""
from __future__ import annotations

from kairos_ros.core.diagnostics import LatencyStats


def slowest(stages: dict) -> tuple[str, float]:
    """(name, seconds) of the longest stage."""
    name = max(stages, key=lambda k: stages[k])
    return name, stages[name]


def chunk_stages(arrived: float, queued: float, start: float, ready: float, done: float,
                 backend_stages: dict | None = None) -> dict:
    """Observation arrival -> chunk published, in stages (seconds from the instants measured):
    intake, wait, the backend's own stages (one `backend` stage when it reports none), message."""
    return {"intake": queued - arrived, "wait": start - queued, **(backend_stages or {"backend": ready - start}),
            "message": done - ready}


class Arrivals:
    """When the newest observation taken in was received and when it entered the history: a chunk's
    intake and wait stages start there. Not locked: the node guards it with its own lock."""

    def __init__(self):
        self.stamp, self.received, self.queued = None, 0.0, 0.0

    def record(self, stamp: float, received: float, queued: float) -> None:
        self.stamp, self.received, self.queued = stamp, received, queued

    def of(self, stamp: float, start: float) -> tuple[float, float]:
        """(received, queued) of the observation stamped `stamp`; (start, start) when the newest
        observation taken in is another one (no intake or wait is known for it)."""
        return (self.received, self.queued) if stamp == self.stamp else (start, start)


def health(level: int, message: str, startup_warning: str = "", last_late: str = "") -> tuple[int, str]:
    """A status (level, message) with the start-up warning first (at least WARN) and, while
    slow_inference is among the recent problems, the warning about the last late chunk after it."""
    if startup_warning:
        level, message = max(int(level), 1), f"{startup_warning}; {message}"
    if "slow_inference" in message and last_late:  # which stage made the last chunk late
        message = f"{message}; last late {last_late}"
    return int(level), message


def describe(stages: dict) -> str:
    """'wait 1.0 ms, encode 0.7 ms, ...' in the order measured."""
    return ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in stages.items())


class StageTimes:
    """Percentiles per stage, and per stage how often it was the slowest of a late chunk."""

    def __init__(self, maxlen: int = 1000):
        self.maxlen = maxlen
        self.stats: dict[str, LatencyStats] = {}
        self.total = LatencyStats(maxlen)
        self.late: dict[str, int] = {}  # stage -> late chunks it was the slowest stage of
        self.last_late = ""  # the newest warning, for the status message

    def add(self, stages: dict, total: float, budget: float = 0.0) -> str | None:
        """Record one chunk; returns the warning when budget > 0 and total > budget."""
        for name, seconds in stages.items():
            self.stats.setdefault(name, LatencyStats(self.maxlen)).add(seconds)
        self.total.add(total)
        if not (budget > 0 and total > budget) or not stages:
            return None
        name, seconds = slowest(stages)
        self.late[name] = self.late.get(name, 0) + 1
        self.last_late = (f"chunk took {total * 1000:.1f} ms (> latency_budget {budget * 1000:.1f} ms), slowest "
                          f"stage {name} {seconds * 1000:.1f} ms ({describe(stages)})")
        return self.last_late

    def add_chunk(self, arrived: float, queued: float, start: float, ready: float, done: float,
                  backend_stages: dict | None = None, budget: float = 0.0) -> str | None:
        """Record one chunk from its instants (chunk_stages); the warning when it was late."""
        return self.add(chunk_stages(arrived, queued, start, ready, done, backend_stages), done - arrived, budget)

    def values(self) -> dict:
        """Diagnostics key/values: p50/p99 per stage (ms), late chunks per slowest stage."""
        out = {}
        for name, stats in [("total", self.total), *self.stats.items()]:
            pct = stats.percentiles()
            if pct.get("count"):
                out[f"stage.{name}.p50_ms"] = f"{pct['p50'] * 1000:.2f}"
                out[f"stage.{name}.p99_ms"] = f"{pct['p99'] * 1000:.2f}"
        out.update({f"late_by.{k}": v for k, v in self.late.items()})
        return out
