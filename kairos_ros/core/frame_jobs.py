"""The world model's frame worker bookkeeping (chunk_first): predicted frames off the control path.

A control prediction's chunk is published at once; its frame job goes to the scheduler's frame
slot, tagged with the world state's reset epoch and the time the chunk took. The frame worker takes
jobs from there: one whose observation is older than max_observation_age when it would start, or
whose world state was reset before it started or while it ran, is stale: dropped and counted
(scheduler.frames_stale). While a control prediction runs, a frame job waits at its pause points
(two vCPUs may be one core's two hyperthreads; control then has the core to itself). Pure logic:
the node runs the jobs and publishes.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Callable

from kairos_ros.core.diagnostics import LatencyStats
from kairos_ros.core.prediction import check_frames
from kairos_ros.core.scheduler import STOPPED, InferenceScheduler
from kairos_ros.core.stamps import stamp_problem


class FrameJobs:
    def __init__(self, scheduler: InferenceScheduler, max_age: float, future_tolerance: float,
                 poll: float = 0.5):
        self.scheduler = scheduler
        self.max_age, self.future_tolerance = max_age, future_tolerance
        self.poll = poll  # s: the longest wait for a job, and between checks for cancellation while paused
        self.control_idle = threading.Event()  # clear while a control prediction runs: frames pause
        self.control_idle.set()
        self.current = None  # the job the worker runs (cancel() stops it)
        self.latency = LatencyStats()  # seconds per finished frame job

    @contextlib.contextmanager
    def control(self):
        """Around a control prediction: frame jobs pause at their next pause point until it ends."""
        self.control_idle.clear()
        try:
            yield
        finally:
            self.control_idle.set()

    def submit(self, job, chunk_time: float) -> bool:
        """Hand a frame job to the worker; True when it replaced a waiting (stale) one."""
        return self.scheduler.submit_frames((job, self.scheduler.reset_epoch, chunk_time))

    def take(self, now: Callable[[], float]):
        """The worker's next job as (job, epoch, chunk_time); None when none came or it was stale
        (counted), STOPPED once the scheduler has stopped. `now`: the node's clock (s)."""
        item = self.scheduler.next_frames(self.poll)
        if item is STOPPED or item is None:
            return item
        job, epoch, _ = item
        old = stamp_problem(job.stamp, now(), self.max_age, self.future_tolerance, "observation",
                            "max_observation_age")
        if old or epoch != self.scheduler.reset_epoch:
            self.scheduler.count_stale_frames()
            return None
        self.current = job
        return item

    def run_next(self, now: Callable[[], float], clock: Callable[[], float] = time.perf_counter):
        """Take the next job and run it (pausing while control runs). Returns STOPPED (stopped, or
        the job was cancelled: the node is closing), None (no job came, or it was stale: counted),
        the ValueError or RuntimeError the job raised (BadPrediction: non-finite frames), or
        (job, frames, times, latency): latency is the chunk's time plus the frames'."""
        item = self.take(now)
        if item is STOPPED or item is None:
            return item
        job, epoch, chunk_time = item
        start = clock()
        try:
            frames, times = job.run(self.pause)
            check_frames(frames)
        except (ValueError, RuntimeError) as exc:
            return exc
        if job.cancel.is_set():
            return STOPPED
        took = clock() - start
        if not self.finish(epoch, took):  # reset while they were made
            return None
        return job, frames, times, chunk_time + took

    def pause(self) -> None:
        """The frame job's pause hook (called between layers): wait while a control prediction runs,
        unless the running job is cancelled."""
        while not self.control_idle.wait(self.poll) and self.current is not None and not self.current.cancel.is_set():
            pass

    def finish(self, epoch: int, took: float) -> bool:
        """After a job ran for `took` s: False when the world state was reset meanwhile (stale,
        counted), else True and its time is recorded."""
        if epoch != self.scheduler.reset_epoch:
            self.scheduler.count_stale_frames()
            return False
        self.latency.add(took)
        return True

    def cancel(self) -> None:
        """A running job gives up at its next step (the node is closing)."""
        if self.current is not None:
            self.current.cancel.set()

    def values(self) -> dict:
        """Diagnostics key/values: median frame job time (ms) and how many were timed."""
        pct = self.latency.percentiles()
        return {"frames.p50_ms": f"{pct['p50'] * 1000:.1f}", "frames.count": pct["count"]} if pct.get("count") else {}
