"""Approximate-time synchronisation and joint-state validation."""
import math

import numpy as np
import pytest

from kairos_ros.core.joints import JointStateError, order_joint_state
from kairos_ros.core.sync import ApproximateSync, OutOfOrderError


def test_newest_complete_set_within_slop():
    s = ApproximateSync(["a", "b"], slop=0.01)
    s.add("a", 1.000, "a1")
    assert s.pop_latest() is None  # b missing
    s.add("b", 1.030, "b1")  # too far from a1
    assert s.pop_latest() is None
    s.add("a", 1.032, "a2")
    found = s.pop_latest()
    assert found == {"a": (1.032, "a2"), "b": (1.030, "b1")}
    assert s.pop_latest() is None, "a set is returned once; the next needs fresh messages"


def test_reset_on_jump_back_and_out_of_order():
    s = ApproximateSync(["a"], slop=0.01, jump_threshold=1.0)
    s.add("a", 10.0, 1)
    with pytest.raises(OutOfOrderError, match="older than the newest"):
        s.add("a", 9.8, 2)
    assert s.add("a", 2.0, 3) == "reset"
    assert s.pop_latest() is None  # cleared
    s.add("a", 2.1, 4)
    assert s.pop_latest() == {"a": (2.1, 4)}


def test_unknown_stream_and_bounds():
    s = ApproximateSync(["a"], slop=0.01, queue_size=2)
    with pytest.raises(KeyError, match="'z'"):
        s.add("z", 0.0, None)
    for i in range(5):
        s.add("a", float(i), i)
    assert len(s.queues["a"]) == 2
    with pytest.raises(ValueError):
        ApproximateSync(["a", "a"], 0.1)


NAMES = ["j1", "j2", "j3"]


def test_order_and_ignore():
    pos, vel = order_joint_state(["j3", "extra", "j1", "j2"], [3, 9, 1, 2], [30, 90, 10, 20], NAMES, ["extra"])
    assert pos.tolist() == [1, 2, 3] and vel.tolist() == [10, 20, 30]


@pytest.mark.parametrize("names,pos,vel,match", [
    (["j1", "j2"], [1, 2, 3], None, "3 positions"),
    (["j1", "j1", "j3"], [1, 2, 3], None, "duplicate"),
    (["j1", "j2"], [1, 2], None, r"missing configured joints \['j3'\]"),
    (["j1", "j2", "j3", "j9"], [1, 2, 3, 4], None, r"unknown joints \['j9'\]"),
    (["j1", "j2", "j3"], [1, math.nan, 3], None, r"non-finite positions for \['j2'\]"),
    (["j1", "j2", "j3"], [1, 2, math.inf], None, r"\['j3'\]"),
    (["j1", "j2", "j3"], [1, 2, 3], [1, 2], "velocities"),
    (["j1", "j2", "j3"], [1, 2, 3], [1, np.nan, 2], "non-finite velocities"),
])
def test_joint_errors_name_the_joint(names, pos, vel, match):
    with pytest.raises(JointStateError, match=match):
        order_joint_state(names, pos, vel, NAMES)
