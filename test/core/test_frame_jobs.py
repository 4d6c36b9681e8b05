"""core.frame_jobs: the world model's frame worker bookkeeping (chunk_first). Stale jobs (too old,
or their world state reset before or while they ran) are counted and never published; a job waits
while control runs; a cancelled job stops the worker."""
import threading

import numpy as np

from kairos_ros.core.frame_jobs import FrameJobs
from kairos_ros.core.prediction import BadPrediction
from kairos_ros.core.scheduler import STOPPED, InferenceScheduler


class Job:
    def __init__(self, stamp=10.0, frames=None, error=None, during=None):
        self.stamp, self.chunk = stamp, "chunk"
        self.cancel = threading.Event()
        self.frames = [np.zeros((2, 2, 3), np.uint8)] if frames is None else frames
        self.error, self.during, self.pauses = error, during, 0

    def run(self, pause):
        pause()
        self.pauses += 1
        if self.during:
            self.during()
        if self.error:
            raise self.error
        return self.frames, [0.1] * len(self.frames)


def jobs(max_age=1.0):
    ticks = iter(range(100))
    return FrameJobs(InferenceScheduler(lambda: 0.0), max_age, 0.1, poll=0.0), lambda: float(next(ticks))


def test_a_fresh_job_runs_and_its_time_is_recorded():
    f, clock = jobs()
    job = Job()
    assert not f.submit(job, 0.02)
    job2, frames, times, latency = f.run_next(lambda: 10.5, clock)
    assert job2 is job and len(frames) == 1 and times == [0.1] and latency == 0.02 + 1.0
    assert f.current is job and job.pauses == 1
    assert f.values() == {"frames.p50_ms": "1000.0", "frames.count": 1}
    assert f.scheduler.counts["frames_stale"] == 0


def test_no_job_no_values():
    f, clock = jobs()
    assert f.run_next(lambda: 0.0, clock) is None and f.values() == {}


def test_an_old_job_is_stale():
    f, clock = jobs(max_age=1.0)
    f.submit(Job(stamp=10.0), 0.0)
    assert f.run_next(lambda: 12.0, clock) is None
    assert f.scheduler.counts["frames_stale"] == 1 and f.current is None


def test_a_reset_before_or_while_it_runs_makes_it_stale():
    f, clock = jobs()
    f.submit(Job(), 0.0)
    f.scheduler.request_reset()  # empties the slot: stale
    assert f.run_next(lambda: 10.0, clock) is None and f.scheduler.counts["frames_stale"] == 1
    f.submit(Job(during=f.scheduler.request_reset), 0.0)
    assert f.run_next(lambda: 10.0, clock) is None
    assert f.scheduler.counts["frames_stale"] == 2 and f.values() == {}


def test_errors_and_non_finite_frames_are_returned():
    f, clock = jobs()
    f.submit(Job(error=RuntimeError("boom")), 0.0)
    assert isinstance(f.run_next(lambda: 10.0, clock), RuntimeError)
    f.submit(Job(frames=[np.full((2, 2, 3), np.nan)]), 0.0)
    assert isinstance(f.run_next(lambda: 10.0, clock), BadPrediction)


def test_a_cancelled_job_and_a_stopped_scheduler_stop_the_worker():
    f, clock = jobs()
    job = Job()
    job.during = f.cancel  # the node closes while the job runs
    f.submit(job, 0.0)
    assert f.run_next(lambda: 10.0, clock) is STOPPED and job.cancel.is_set()
    f.scheduler.stop()
    assert f.run_next(lambda: 10.0, clock) is STOPPED
    f.cancel()  # idempotent


class Idle:
    """control_idle that answers each wait from a script: False while control runs."""

    def __init__(self, answers):
        self.answers, self.waits = list(answers), 0

    def wait(self, _timeout):
        self.waits += 1
        return self.answers.pop(0)


def test_control_clears_idle_while_it_runs_even_when_it_fails():
    f, _ = jobs()
    with f.control():
        assert not f.control_idle.is_set()
    assert f.control_idle.is_set()
    try:
        with f.control():
            raise ValueError("prediction failed")
    except ValueError:
        pass
    assert f.control_idle.is_set()


def test_frames_wait_while_control_runs():
    f, _ = jobs()
    f.current = Job()
    f.control_idle = Idle([False, False, True])  # control runs for two polls, then ends
    f.pause()
    assert f.control_idle.waits == 3


def test_a_cancelled_job_does_not_wait_for_control():
    f, _ = jobs()
    f.current = Job()
    f.current.cancel.set()
    f.control_idle = Idle([False, False, True])
    f.pause()  # returns after one poll: the job gives up
    assert f.control_idle.waits == 1
