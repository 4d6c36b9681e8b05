"""The scheduler's frame slot (issue 13): predicted frames wait for their own worker, never for
control; a newer job replaces a waiting one (stale, counted), a reset empties it, stop ends the
worker."""
import threading

from kairos_ros.core.scheduler import CONTROL, STOPPED, InferenceScheduler


def test_newest_job_wins_and_stale_ones_are_counted():
    s = InferenceScheduler(lambda: 0.0)
    assert s.next_frames(timeout=0.0) is None
    assert not s.submit_frames("a")
    assert s.submit_frames("b")  # "a" never started: stale
    assert s.counts["frames_stale"] == 1
    assert s.next_frames(timeout=0.0) == "b" and s.next_frames(timeout=0.0) is None


def test_frames_never_hold_up_control():
    s = InferenceScheduler(lambda: 0.0)
    s.submit_frames("frames")
    s.observe()
    assert s.next(timeout=0.0, imagine=False) == (CONTROL, None)  # control is not behind the frame job
    assert s.next_frames(timeout=0.0) == "frames"


def test_reset_drops_the_waiting_job_and_stop_ends_the_worker():
    s = InferenceScheduler(lambda: 0.0)
    s.submit_frames("old")
    s.request_reset()
    assert s.counts["frames_stale"] == 1 and s.next_frames(timeout=0.0) is None
    got = []
    worker = threading.Thread(target=lambda: got.append(s.next_frames(timeout=30.0)))
    worker.start()
    s.stop()
    worker.join(10)
    assert got == [STOPPED]


def test_a_waiting_worker_wakes_for_a_job():
    s = InferenceScheduler(lambda: 0.0)
    got = []
    worker = threading.Thread(target=lambda: got.append(s.next_frames(timeout=30.0)))
    worker.start()
    s.submit_frames("job")
    worker.join(10)
    assert got == ["job"]
