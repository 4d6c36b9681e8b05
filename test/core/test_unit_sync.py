"""Unit tests for kairos_ros.core.sync.ApproximateSync."""
import pytest

from kairos_ros.core.sync import ApproximateSync, OutOfOrderError


def stamps(found):
    return {name: stamp for name, (stamp, _) in found.items()}


def test_constructor_validation():
    with pytest.raises(ValueError, match="slop 0 must be > 0"):
        ApproximateSync(["a"], 0)
    with pytest.raises(ValueError, match="queue_size 0 must be >= 1"):
        ApproximateSync(["a"], 0.1, queue_size=0)
    with pytest.raises(ValueError, match="unique and non-empty"):
        ApproximateSync(["a", "a"], 0.1)
    with pytest.raises(ValueError, match="unique and non-empty"):
        ApproximateSync([], 0.1)


def test_incomplete_until_every_stream_has_a_message():
    s = ApproximateSync(["cam", "joints"], 0.05)
    assert s.pop_latest() is None
    s.add("cam", 1.0, "c")
    assert s.pop_latest() is None
    s.add("joints", 1.01, "j")
    found = s.pop_latest()
    assert found == {"cam": (1.0, "c"), "joints": (1.01, "j")}


def test_slop_bounds_the_set_spread():
    s = ApproximateSync(["a", "b"], 0.05)
    s.add("a", 1.0, 1)
    s.add("b", 1.06, 2)
    assert s.pop_latest() is None  # 60 ms apart > 50 ms slop
    s.add("a", 1.02, 3)
    assert stamps(s.pop_latest()) == {"a": 1.02, "b": 1.06}  # 40 ms apart


def test_slop_boundary_is_inclusive():
    s = ApproximateSync(["a", "b"], 0.25)
    s.add("a", 1.0, None)
    s.add("b", 1.25, None)  # exactly the slop (binary-exact values)
    assert stamps(s.pop_latest()) == {"a": 1.0, "b": 1.25}


def test_newest_complete_set_is_chosen():
    s = ApproximateSync(["cam", "joints"], 0.01, queue_size=20)
    for k in range(10):
        s.add("joints", 1.0 + 0.01 * k, k)  # 100 Hz
    for t in (1.0, 1.033, 1.066):
        s.add("cam", t, t)  # 30 Hz
    found = s.pop_latest()
    assert found["cam"] == (1.066, 1.066)
    assert found["joints"] == (pytest.approx(1.07), 7)  # the joint state closest to the frame


def test_each_set_uses_fresh_messages():
    s = ApproximateSync(["a", "b"], 0.05)
    s.add("a", 1.0, "a1")
    s.add("b", 1.0, "b1")
    assert s.pop_latest() is not None
    assert s.pop_latest() is None  # nothing new: the same pair is not returned twice
    s.add("a", 1.1, "a2")
    assert s.pop_latest() is None  # b1 was used: a2 alone does not make a set
    s.add("b", 1.1, "b2")
    assert s.pop_latest() == {"a": (1.1, "a2"), "b": (1.1, "b2")}


def test_older_queued_messages_are_discarded_after_a_set():
    s = ApproximateSync(["a", "b"], 0.05)
    for t in (1.0, 1.1, 1.2):
        s.add("a", t, t)
    s.add("b", 1.2, "b")
    assert stamps(s.pop_latest()) == {"a": 1.2, "b": 1.2}
    assert all(len(q) == 0 for q in s.queues.values())
    s.add("b", 1.21, "b2")
    assert s.pop_latest() is None  # a@1.0 and a@1.1 are gone


def test_messages_newer_than_the_set_stay_queued():
    s = ApproximateSync(["a", "b"], 0.05)
    s.add("a", 1.0, "old")
    s.add("a", 2.0, "new")
    s.add("b", 1.01, "b")
    assert stamps(s.pop_latest()) == {"a": 1.0, "b": 1.01}
    assert [m[1] for m in s.queues["a"]] == ["new"]
    s.add("b", 2.02, "b2")
    assert stamps(s.pop_latest()) == {"a": 2.0, "b": 2.02}


def test_small_step_back_raises_and_is_counted():
    s = ApproximateSync(["a", "b"], 0.05, jump_threshold=1.0)
    s.add("a", 5.0, None)
    with pytest.raises(OutOfOrderError, match="stream 'a': stamp 4.500000 is older than the newest 5.000000"):
        s.add("a", 4.5, None)
    assert s.dropped_late == 1
    assert [m[0] for m in s.queues["a"]] == [5.0]  # the late message was not queued
    s.add("a", 5.0, None)  # an equal stamp is not "older"
    assert s.dropped_late == 1


def test_jump_back_beyond_threshold_resets_everything():
    s = ApproximateSync(["a", "b"], 0.05, jump_threshold=1.0)
    s.add("a", 10.0, None)
    s.add("b", 10.0, None)
    s.pop_latest()
    s.add("a", 10.1, None)
    assert s.add("b", 8.9, None) == "reset"  # 1.1 s back on b
    assert all(len(q) == 0 for q in s.queues.values())
    assert s.newest == {"a": None, "b": None} and s.last_set_stamp is None
    # after the reset, an early stamp on any stream starts the new epoch
    assert s.add("a", 0.5, "x") is None
    assert s.add("b", 0.5, "y") is None
    assert s.pop_latest() == {"a": (0.5, "x"), "b": (0.5, "y")}


def test_jump_threshold_is_at_least_slop():
    s = ApproximateSync(["a"], slop=2.0, jump_threshold=0.5)
    assert s.jump_threshold == 2.0
    s.add("a", 10.0, None)
    with pytest.raises(OutOfOrderError):
        s.add("a", 9.0, None)  # 1 s back: above 0.5 but within the effective 2.0 threshold


def test_unknown_stream():
    s = ApproximateSync(["a"], 0.05)
    with pytest.raises(KeyError, match="unknown stream 'z'"):
        s.add("z", 1.0, None)


def test_queue_is_bounded_and_keeps_the_newest():
    s = ApproximateSync(["a", "b"], 0.05, queue_size=3)
    for k in range(10):
        s.add("a", float(k), k)
    assert [m[1] for m in s.queues["a"]] == [7, 8, 9]
    s.add("b", 0.0, "b")  # matches only a@0.0, which was pushed out
    assert s.pop_latest() is None


def test_single_stream():
    s = ApproximateSync(["only"], 0.01)
    s.add("only", 1.0, 1)
    s.add("only", 2.0, 2)
    assert s.pop_latest() == {"only": (2.0, 2)}
    assert s.pop_latest() is None


def test_clear():
    s = ApproximateSync(["a", "b"], 0.05)
    s.add("a", 3.0, None)
    s.clear()
    s.add("a", 1.0, None)  # no OutOfOrderError: the newest stamp was forgotten
    assert [m[0] for m in s.queues["a"]] == [1.0]
