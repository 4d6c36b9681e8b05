"""What the world model's inference thread does next: pure logic with an injected clock.

Priorities, highest first:
1. a requested reset of the world state (the service answers at once; the thread applies it
   before its next prediction, so a reset never waits for inference and never races it);
2. control: a prediction from the newest observation (newer observations replace an older one
   that is still waiting: newest wins);
3. Imagine goals, first come first served, only when no control prediction is waiting.

Imagine goals are bounded: at most `imagine_limit` are accepted at once (queued or running); more
are refused at once. A queued goal can be cancelled, and one still queued after `imagine_timeout`
seconds (control kept the model busy) is expired, so every accepted goal ends.

Two consumers may share one scheduler: the control thread asks for resets and control only, an
Imagine thread (with its own model instance) for Imagine jobs only, so a long Imagine never holds
up a chunk. `reset_epoch` tells the Imagine thread that the world state was reset meanwhile.

Predicted frames never hold up control either: a prediction's frame job (its chunk is already
out) goes to the frame slot, which a frame worker empties. The slot holds one job: a newer job
replaces one still waiting, which is stale (its observation is no longer the newest) and counted
as `frames_stale`; a reset empties it the same way. A job that has started runs to its end.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

RESET, CONTROL, IMAGINE = "reset", "control", "imagine"
STOPPED = "stopped"  # next_frames once the scheduler has stopped


@dataclass(eq=False)  # identity: payloads hold arrays
class ImagineJob:
    payload: Any
    deadline: float  # clock time after which a job still queued expires
    done: Callable[[Any], None]  # called exactly once with the outcome (result, exception or sentinel)
    finished: bool = field(default=False)

    def finish(self, outcome) -> bool:
        if self.finished:
            return False
        self.finished = True
        self.done(outcome)
        return True


class Cancelled(Exception):
    """Outcome of an Imagine job cancelled before it ran."""


class Expired(Exception):
    """Outcome of an Imagine job that waited longer than imagine_timeout behind control."""


class InferenceScheduler:
    def __init__(self, clock: Callable[[], float], imagine_limit: int = 2, imagine_timeout: float = 30.0):
        if imagine_limit < 0:
            raise ValueError(f"imagine_limit {imagine_limit} must be >= 0")
        if not imagine_timeout > 0:
            raise ValueError(f"imagine_timeout {imagine_timeout} must be > 0")
        self.clock = clock
        self.imagine_limit = imagine_limit
        self.imagine_timeout = imagine_timeout
        self.cond = threading.Condition()
        self.control_pending = False
        self.reset_pending = False
        self.queue: deque[ImagineJob] = deque()
        self.active = 0  # accepted and not yet ended (queued, running, or reserved before submission)
        self.running = True
        self.reset_epoch = 0
        self.frame_job: Any = None  # waiting for the frame worker (at most one)
        self.counts = {"imagine_refused": 0, "imagine_cancelled": 0, "imagine_expired": 0, "resets": 0,
                       "frames_stale": 0}

    # -- producers (executor thread) ----------------------------------------------------------
    def observe(self) -> None:
        with self.cond:
            self.control_pending = True
            self.cond.notify_all()

    def request_reset(self) -> None:
        with self.cond:
            self.reset_pending = True
            self.reset_epoch += 1
            self.counts["resets"] += 1
            if self.frame_job is not None:  # frames of a world state that is being reset
                self.frame_job = None
                self.counts["frames_stale"] += 1
            self.cond.notify_all()

    def submit_frames(self, job) -> bool:
        """Queue a frame job for the frame worker; True when it replaced a waiting (stale) one."""
        with self.cond:
            stale = self.frame_job is not None
            self.counts["frames_stale"] += stale
            self.frame_job = job
            self.cond.notify_all()
            return stale

    def count_stale_frames(self) -> None:
        """A frame job the worker took turned out stale (too old, or its world state was reset)."""
        with self.cond:
            self.counts["frames_stale"] += 1

    def next_frames(self, timeout: float = 0.5):
        """The frame worker's next job, (None) after `timeout` with none, or STOPPED once stopped."""
        with self.cond:
            if self.running and self.frame_job is None:
                self.cond.wait(timeout)
            if not self.running:
                return STOPPED
            job, self.frame_job = self.frame_job, None
            return job

    def reserve_imagine(self) -> bool:
        """Accept one more goal if the limit allows (answer at once, never wait)."""
        with self.cond:
            if self.active >= self.imagine_limit:
                self.counts["imagine_refused"] += 1
                return False
            self.active += 1
            return True

    def release_imagine(self) -> None:
        """A reserved goal ended (ran, failed, cancelled, expired or never submitted)."""
        with self.cond:
            self.active = max(0, self.active - 1)

    def submit_imagine(self, payload, done: Callable[[Any], None]) -> ImagineJob:
        with self.cond:
            job = ImagineJob(payload, self.clock() + self.imagine_timeout, done)
            self.queue.append(job)
            self.cond.notify_all()
            return job

    def cancel_imagine(self, job: ImagineJob) -> bool:
        """Remove a job that has not started; True when it was still queued (it ends as Cancelled)."""
        with self.cond:
            if job not in self.queue:
                return False
            self.queue.remove(job)
            self.counts["imagine_cancelled"] += 1
        job.finish(Cancelled("cancelled before it ran"))
        return True

    def expire(self) -> int:
        """End every queued job past its deadline (Expired); returns how many."""
        now = self.clock()
        with self.cond:
            late = [j for j in self.queue if now > j.deadline]
            for job in late:
                self.queue.remove(job)
            self.counts["imagine_expired"] += len(late)
        for job in late:
            job.finish(Expired(f"waited more than imagine_timeout {self.imagine_timeout} s behind control "
                               "predictions"))
        return len(late)

    def stop(self) -> None:
        with self.cond:
            self.running = False
            pending = list(self.queue)
            self.queue.clear()
            self.frame_job = None
            self.cond.notify_all()
        for job in pending:
            job.finish(Cancelled("the world model is stopping"))

    # -- consumer (inference thread) ----------------------------------------------------------
    def next(self, timeout: float = 0.5, control: bool = True, imagine: bool = True):
        """(RESET, None), (CONTROL, None), (IMAGINE, job), (None, None) after `timeout` with nothing
        to do, or None once stopped. A consumer with control=False never gets resets or control; one
        with imagine=False never gets Imagine jobs."""
        self.expire()
        with self.cond:
            def ready():
                return (control and (self.reset_pending or self.control_pending)) or (imagine and bool(self.queue))
            if self.running and not ready():
                self.cond.wait(timeout)
            if not self.running:
                return None
            if control and self.reset_pending:
                self.reset_pending = False
                return RESET, None
            if control and self.control_pending:
                self.control_pending = False
                return CONTROL, None
            if imagine and self.queue:
                return IMAGINE, self.queue.popleft()
        return None, None
