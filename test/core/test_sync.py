"""core.sync.ApproximateSync: newest set within slop, fresh messages only, late drops, resets on time
jumps, bounded queues."""
import math
import random

import pytest

from kairos_ros.core.sync import ApproximateSync, OutOfOrderError

STREAMS = ["head", "wrist", "joint_states"]


def stamps(found):
    return {name: stamp for name, (stamp, _) in found.items()}


def test_pivot_picks_per_stream_closest_and_returns_newest_set():
    s = ApproximateSync(STREAMS, slop=0.02)
    for t in (1.00, 1.10, 1.20):
        s.add("head", t, f"h{t}")
    for t in (1.01, 1.09, 1.19):
        s.add("wrist", t, f"w{t}")
    for k in range(25):
        s.add("joint_states", 1.0 + 0.01 * k, k)  # queue keeps the newest 10: 1.15 .. 1.24
    found = s.pop_latest()
    assert found["head"] == (1.20, "h1.2") and found["wrist"] == (1.19, "w1.19")
    assert found["joint_states"][0] == pytest.approx(1.20)
    assert s.last_set_stamp == pytest.approx(1.20)


def test_tie_goes_to_the_newer_message():
    s = ApproximateSync(["a", "b"], slop=0.5)
    s.add("b", 0.75, "old")
    s.add("b", 1.25, "new")
    s.add("a", 1.0, "a")
    assert s.pop_latest()["b"] == (1.25, "new")


def test_only_a_newer_set_is_returned_and_older_ones_are_skipped():
    s = ApproximateSync(["a", "b"], slop=0.01)
    for t in (1.0, 2.0, 3.0):
        s.add("a", t, t)
        s.add("b", t + 0.005, t)
    assert stamps(s.pop_latest()) == {"a": 3.0, "b": 3.005}  # sets at 1 s and 2 s are skipped
    assert all(not q for q in s.queues.values())
    s.add("a", 3.5, None)
    assert s.pop_latest() is None


def test_set_needs_every_stream_within_slop_inclusive():
    s = ApproximateSync(["a", "b", "c"], slop=0.25)
    s.add("a", 1.0, None)
    s.add("b", 1.25, None)
    assert s.pop_latest() is None  # c missing
    s.add("c", 1.5, None)
    assert s.pop_latest() is None  # a..c spans 0.5
    s.add("a", 1.25, None)
    assert stamps(s.pop_latest()) == {"a": 1.25, "b": 1.25, "c": 1.5}


def test_late_message_is_dropped_counted_and_raises():
    s = ApproximateSync(["a", "b"], slop=0.05)
    s.add("a", 2.0, None)
    with pytest.raises(OutOfOrderError, match=r"stream 'a': stamp 1\.900000 is older than the newest 2\.000000"):
        s.add("a", 1.9, None)
    assert s.dropped_late == 1 and [m[0] for m in s.queues["a"]] == [2.0]
    assert s.add("a", 2.0, None) is None  # equal stamps are not late
    assert s.dropped_late == 1


def test_message_older_than_the_returned_set_is_late():
    s = ApproximateSync(["a", "b"], slop=0.05)
    s.add("a", 1.0, None)
    s.add("b", 1.0, None)
    s.pop_latest()
    with pytest.raises(OutOfOrderError):
        s.add("b", 0.99, None)
    assert s.dropped_late == 1 and s.pop_latest() is None


def test_reset_clears_everything_and_does_not_queue_the_message():
    s = ApproximateSync(["a", "b"], slop=0.05, jump_threshold=1.0)
    s.add("a", 50.0, None)
    s.add("b", 50.0, None)
    s.pop_latest()
    s.add("a", 50.1, None)
    assert s.add("a", 0.1, "x") == "reset"
    assert s.resets == 1 and s.last_set_stamp is None
    assert all(not q for q in s.queues.values()) and set(s.newest.values()) == {None}
    assert s.add("a", 0.1, "x") is None and s.add("b", 0.11, "y") is None
    assert s.pop_latest() == {"a": (0.1, "x"), "b": (0.11, "y")}


def test_looping_bag_with_leftovers_in_flight_resets_once():
    s = ApproximateSync(STREAMS, slop=0.02)
    for name in STREAMS:
        s.add(name, 60.0, "old")
    assert s.pop_latest() is not None
    assert s.add("joint_states", 0.0, "new") == "reset"
    s.add("joint_states", 0.0, "new")  # the caller re-adds the message that started the epoch
    s.add("head", 0.005, "new")
    s.add("wrist", 60.03, "leftover")  # published before the loop, delivered after it
    assert s.add("wrist", 0.01, "new") is None  # joins the other streams: no second reset
    assert s.resets == 1 and s.stale_cleared == 1
    found = s.pop_latest()
    assert {v for _, v in found.values()} == {"new"} and stamps(found)["wrist"] == 0.01


def test_single_stream_glitch_resets_then_recovers():
    s = ApproximateSync(["a", "b"], slop=0.05)
    s.add("a", 100.0, None)
    s.add("b", 100.0, None)
    assert s.add("a", 0.0, "glitch") == "reset"  # no other stream is near 0 s
    s.add("a", 0.0, "glitch")
    s.add("b", 100.03, "b")
    s.add("a", 100.04, "a")
    assert s.pop_latest() == {"a": (100.04, "a"), "b": (100.03, "b")}


def test_jump_near_another_stream_but_behind_the_last_set_resets():
    s = ApproximateSync(["a", "b"], slop=0.05, jump_threshold=1.0)
    s.add("a", 9.96, None)
    s.add("b", 10.0, None)
    assert s.pop_latest() is not None  # last set: 10.0
    # 1.035 s back on b and within 1 s of a's 9.96, but older than the last set by more than
    # the threshold: without a reset no set could be returned until b passed 10 s again
    assert s.add("b", 8.965, None) == "reset"


def test_bad_stamps_names_and_constructor():
    s = ApproximateSync(["a"], slop=0.05)
    with pytest.raises(KeyError, match="unknown stream 'cam' \\(known: \\['a'\\]\\)"):
        s.add("cam", 1.0, None)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match="stream 'a': non-finite stamp"):
            s.add("a", bad, None)
    with pytest.raises(ValueError, match="slop nan must be > 0"):
        ApproximateSync(["a"], math.nan)


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


def test_messages_newer_than_the_set_stay_queued():
    s = ApproximateSync(["a", "b"], 0.05)
    s.add("a", 1.0, "old")
    s.add("a", 2.0, "new")
    s.add("b", 1.01, "b")
    assert stamps(s.pop_latest()) == {"a": 1.0, "b": 1.01}
    assert [m[1] for m in s.queues["a"]] == ["new"]
    s.add("b", 2.02, "b2")
    assert stamps(s.pop_latest()) == {"a": 2.0, "b": 2.02}


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


def _reference(queues, slop, last):
    """The documented rule, naively: try every message as pivot, newest first."""
    best = None
    for pivot in sorted({t for q in queues.values() for t, _ in q}, reverse=True):
        chosen = {}
        for name, q in queues.items():  # closest to the pivot; ties: newer stamp, then later arrival
            k = min(range(len(q)), key=lambda i: (abs(q[i][0] - pivot), -q[i][0], -i))
            chosen[name] = q[k]
        ts = [m[0] for m in chosen.values()]
        if max(ts) - min(ts) <= slop and (last is None or max(ts) > last):
            best = chosen
            break
    return best


@pytest.mark.parametrize("seed", range(5))
def test_random_streams_agree_with_the_naive_rule(seed):
    rng = random.Random(seed)
    names = ["a", "b", "c"]
    s = ApproximateSync(names, slop=0.02, queue_size=6)
    last = {n: 0.0 for n in names}
    previous = None
    returned = 0
    for step in range(400):
        name = rng.choice(names)  # streams share one clock; stamps lag it by up to 30 ms
        last[name] = max(last[name], round(step * 0.004 - rng.uniform(0.0, 0.03), 3))
        s.add(name, last[name], (name, step))
        if any(not q for q in s.queues.values()):
            continue
        expected = _reference({n: list(q) for n, q in s.queues.items()}, s.slop, s.last_set_stamp)
        found = s.pop_latest()
        assert found == expected
        if found:
            returned += 1
            ts = stamps(found)
            assert max(ts.values()) - min(ts.values()) <= 0.02 + 1e-12
            if previous:  # every message is fresher than the one used before on its stream
                assert all(ts[n] >= previous[n] for n in names)
            previous = ts
    assert returned > 20
