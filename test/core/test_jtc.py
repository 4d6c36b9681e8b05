"""core.jtc: the joint_trajectory_controller-like executor of the simulated robot driver."""
import math

import numpy as np
import pytest

from kairos_ros.core.jtc import Trajectory, TrajectoryExecutor, TrajectoryPoint as P

NAMES = ["a", "b"]


def make(**kw) -> TrajectoryExecutor:
    ex = TrajectoryExecutor(NAMES, [-1.0, -2.0], [1.0, 2.0], [2.0, 4.0], **kw)
    ex.reset([0.0, 0.0], 10.0)
    return ex


def traj(points, stamp=0.0, names=NAMES) -> Trajectory:
    return Trajectory(list(names), stamp, list(points))


def close(a, b, tol=1e-9):
    return np.allclose(np.asarray(a, float), np.asarray(b, float), atol=tol)


# -- interpolation ---------------------------------------------------------------------------------

def test_linear_between_points_and_from_the_state_at_receipt():
    ex = make()
    v = ex.submit(traj([P(1.0, [1.0, 0.5]), P(2.0, [0.0, 1.5])]), now=10.0)
    assert v.accepted, v.reason
    assert close(ex.sample(10.0), [0, 0])
    assert close(ex.sample(10.25), [0.25, 0.125])  # from the state at receipt to the first point
    assert close(ex.sample(11.0), [1.0, 0.5])
    assert close(ex.sample(11.5), [0.5, 1.0])  # between the points, linear (positions only)
    pos, vel = ex.sample_state(11.5)
    assert close(vel, [-1.0, 1.0])


def test_cubic_hermite_when_velocities_given():
    ex = make()
    assert ex.submit(traj([P(1.0, [0.5, 0.0], [1.0, 0.0]), P(2.0, [1.0, 1.0], [0.0, 0.0])]), now=10.0).accepted
    # segment 1: p0=0.5 v0=1, p1=1 v1=0, h=1, at s=0.5:
    # h00=0.5, h10=0.125, h01=0.5, h11=-0.125 -> 0.25 + 0.125 + 0.5 = 0.875
    pos, vel = ex.sample_state(11.5)
    assert pos[0] == pytest.approx(0.875)
    # joint b: 0 -> 1 with zero end velocities: smoothstep, 0.5 at the middle, speed 1.5
    assert pos[1] == pytest.approx(0.5)
    assert vel[1] == pytest.approx(1.5)
    # velocities match the points at the knots (C1)
    assert close(ex.sample_state(11.0 + 1e-9)[1], [1.0, 0.0], 1e-6)
    assert close(ex.sample_state(11.0 - 1e-9)[1], [1.0, 0.0], 1e-6)
    # the start segment is cubic too: from (0, v=0) at receipt to (0.5, v=1) over 1 s
    s = 0.5
    expect = (-2 * s ** 3 + 3 * s ** 2) * 0.5 + (s ** 3 - s ** 2) * 1.0
    assert ex.sample(10.5)[0] == pytest.approx(expect)


def test_mixed_points_interpolate_per_segment():
    ex = make()
    assert ex.submit(traj([P(1.0, [0.5, 0.0]), P(2.0, [1.0, 0.0], [0.0, 0.0])]), now=10.0).accepted
    assert ex.sample(10.5)[0] == pytest.approx(0.25)  # first point has no velocities: linear
    assert ex.sample(11.5)[0] == pytest.approx(0.75)  # one end without velocities: linear


def test_holds_at_the_last_point():
    ex = make()
    assert ex.submit(traj([P(0.5, [0.3, -0.4], [0.0, 0.0])]), now=10.0).accepted
    for t in (10.5, 11.0, 100.0):
        pos, vel = ex.sample_state(t)
        assert close(pos, [0.3, -0.4]) and close(vel, [0, 0])
    assert ex.end_time() == pytest.approx(10.5)


def test_stamp_in_the_future_interpolates_from_the_state_at_the_start():
    ex = make()
    assert ex.submit(traj([P(1.0, [1.0, 0.0])], stamp=12.0), now=10.0).accepted
    assert close(ex.sample(11.0), [0, 0])  # nothing else commanded: holds until the start
    assert close(ex.sample(12.0), [0, 0])
    assert close(ex.sample(12.5), [0.5, 0])
    assert close(ex.sample(13.0), [1.0, 0])


# -- replacement -----------------------------------------------------------------------------------

def test_new_trajectory_replaces_the_old_from_its_start_time():
    ex = make()
    assert ex.submit(traj([P(2.0, [1.0, 1.0])]), now=10.0).accepted  # 0.5/s on a, b
    new = traj([P(1.0, [0.0, 0.0])], stamp=11.0)
    assert ex.submit(new, now=10.2).accepted
    assert close(ex.sample(10.5), [0.25, 0.25])  # the old one still runs before 11.0
    assert close(ex.sample(11.0), [0.5, 0.5])  # at its start: where the old one was
    assert close(ex.sample(11.5), [0.25, 0.25])  # then from there to the new point
    assert close(ex.sample(12.0), [0.0, 0.0])
    assert close(ex.sample(13.0), [0.0, 0.0])  # the old one's end (1, 1) is gone


def test_replacement_now_starts_from_the_commanded_state_with_its_velocity():
    ex = make()
    assert ex.submit(traj([P(2.0, [1.0, 0.0])]), now=10.0).accepted
    assert ex.submit(traj([P(1.0, [0.5, 0.0], [0.0, 0.0])]), now=11.0).accepted
    pos, vel = ex.sample_state(11.0)
    assert close(pos, [0.5, 0.0])
    assert vel[0] == pytest.approx(0.5)  # carried over: the start segment is cubic from it
    p, _ = ex.sample_state(11.5)
    assert p[0] == pytest.approx(0.5 + 0.125 * 0.5)  # h10 * h * v0
    assert close(ex.sample(12.5), [0.5, 0.0])


def test_stamp_in_the_past_drops_past_points_without_a_jump():
    ex = make()
    t = traj([P(0.5, [0.4, 0.0]), P(1.0, [0.8, 0.0]), P(2.0, [0.8, 0.0])], stamp=9.0)
    v = ex.submit(t, now=10.2)
    assert v.accepted, v.reason
    assert "dropped" in v.reason
    assert close(ex.sample(10.2), [0.0, 0.0])  # no jump to the middle of the 10.0 -> 11.0 segment
    assert close(ex.sample(11.0), [0.8, 0.0])


def test_rejected_trajectory_changes_nothing():
    ex = make()
    assert ex.submit(traj([P(1.0, [0.5, 0.5])]), now=10.0).accepted
    before = [ex.sample(t) for t in (10.5, 11.0, 12.0)]
    assert not ex.submit(traj([P(1.0, [5.0, 0.0])]), now=10.2).accepted
    after = [ex.sample(t) for t in (10.5, 11.0, 12.0)]
    assert all(close(a, b) for a, b in zip(before, after))


def test_empty_trajectory_cancels_and_holds():
    ex = make()
    assert ex.submit(traj([P(2.0, [1.0, 1.0])]), now=10.0).accepted
    v = ex.submit(traj([]), now=11.0)
    assert v.accepted and "holding" in v.reason
    assert close(ex.sample(11.0), [0.5, 0.5])
    pos, vel = ex.sample_state(15.0)
    assert close(pos, [0.5, 0.5]) and close(vel, [0, 0])
    assert ex.submit(Trajectory([], 0.0, []), now=12.0).accepted  # no names either: still a cancel


def test_partial_goal_holds_the_other_joints_when_allowed():
    ex = make(allow_partial_joints_goal=True)
    assert ex.submit(traj([P(2.0, [0.0, 1.0])]), now=10.0).accepted
    v = ex.submit(traj([P(1.0, [0.5])], names=["a"]), now=11.0)
    assert v.accepted, v.reason
    assert close(ex.sample(12.0), [0.5, 0.5])  # b holds where it was commanded at the start
    assert close(ex.sample(13.0), [0.5, 0.5])


def test_point_at_time_zero_on_the_current_state_is_accepted():
    ex = make()
    v = ex.submit(traj([P(0.0, [0.005, 0.0]), P(1.0, [0.5, 0.0])]), now=10.0)
    assert v.accepted, v.reason
    assert close(ex.sample(10.0), [0.005, 0.0])
    assert close(ex.sample(11.0), [0.5, 0.0])


# -- rejections ------------------------------------------------------------------------------------

@pytest.mark.parametrize("names,points,key,words", [
    (["a", "c"], [P(1.0, [0.0, 0.0])], "unknown_joint", "unknown joint 'c'"),
    (["a"], [P(1.0, [0.0])], "missing_joints", "['b']"),
    (["a", "a"], [P(1.0, [0.0, 0.0])], "size", "joint 'a' is named twice"),
    ([], [P(1.0, [])], "size", "no joint names"),
    (NAMES, [P(1.0, [0.0])], "size", "point 0: 1 positions for 2"),
    (NAMES, [P(1.0, [0.0, 0.0], [0.0])], "size", "point 0: 1 velocities"),
    (NAMES, [P(1.0, [0.0, 0.0], [], [0.0, 0.0, 0.0])], "size", "3 accelerations"),
    (NAMES, [P(1.0, [0.0, 0.0], [], [], [1.0, 1.0])], "size", "efforts"),
    (NAMES, [P(1.0, [0.0, float("nan")])], "not_finite", "position of joint 'b' is nan"),
    (NAMES, [P(1.0, [0.0, 0.0], [0.0, math.inf])], "not_finite", "velocity of joint 'b' is inf"),
    (NAMES, [P(1.0, [0.0, 0.0]), P(1.0, [0.1, 0.0])], "times", "point 1: time_from_start 1 s does not increase"),
    (NAMES, [P(1.0, [0.0, 0.0]), P(0.5, [0.1, 0.0])], "times", "does not increase"),
    (NAMES, [P(-0.5, [0.0, 0.0])], "times", "negative"),
    (NAMES, [P(1.0, [1.5, 0.0])], "limits", "position 1.5 of joint 'a' is outside its limits [-1, 1]"),
    (NAMES, [P(1.0, [0.0, 0.0]), P(2.0, [0.0, -2.5])], "limits", "point 1: position -2.5 of joint 'b'"),
    (NAMES, [P(0.1, [0.9, 0.0])], "velocity", "start jump"),  # 9 /s > 2 * 1.2
    (NAMES, [P(0.0, [0.5, 0.0]), P(1.0, [0.5, 0.0])], "velocity", "at once"),
    (NAMES, [P(1.0, [0.5, 0.0]), P(1.1, [-0.5, 0.0])], "velocity", "segment 1: joint 'a'"),
    (NAMES, [P(1.0, [0.5, 0.0], [3.0, 0.0]), P(2.0, [0.5, 0.0], [0.0, 0.0])], "velocity",
     "velocity 3 of joint 'a' exceeds"),
    (NAMES, [P(1.0, [0.5, 0.0], [0.0, 0.1])], "end_velocity", "velocity 0.1 of joint 'b' is not zero"),
])
def test_rejections_name_the_reason(names, points, key, words):
    ex = make()
    v = ex.submit(traj(points, names=names), now=10.0)
    assert not v.accepted
    assert v.key == key, v
    assert words in v.reason, v.reason
    assert close(ex.sample(20.0), [0, 0])  # still holding


def test_trajectory_entirely_in_the_past_is_dropped():
    ex = make()
    v = ex.submit(traj([P(0.5, [0.1, 0.0]), P(1.0, [0.2, 0.0])], stamp=8.0), now=10.0)
    assert not v.accepted and v.key == "past" and "ends in the past" in v.reason
    v = ex.submit(traj([P(1.0, [0.2, 0.0])], stamp=9.0), now=10.0)  # ends exactly now: nothing left
    assert v.key == "past"


def test_start_jump_is_judged_from_the_commanded_state_at_the_start():
    ex = make()
    assert ex.submit(traj([P(1.0, [1.0, 0.0])]), now=10.0).accepted
    # at 11.0 the arm is commanded at 1.0: a point at 0.9 0.1 s later is a small step
    assert ex.submit(traj([P(0.1, [0.9, 0.0])], stamp=11.0), now=10.5).accepted
    # while from the commanded 0.5 at 10.5, a trajectory now to -0.5 in 0.1 s is a jump
    ex2 = make()
    ex2.submit(traj([P(1.0, [1.0, 0.0])]), now=10.0)
    v = ex2.submit(traj([P(0.1, [-0.5, 0.0])]), now=10.5)
    assert v.key == "velocity" and "from its commanded position 0.5" in v.reason


def test_tolerances_can_be_relaxed():
    ex = make(allow_nonzero_velocity_at_trajectory_end=True)
    assert ex.submit(traj([P(1.0, [0.5, 0.0], [0.0, 0.1])]), now=10.0).accepted
    ex = make(velocity_tolerance=10.0)
    assert ex.submit(traj([P(0.1, [0.9, 0.0])]), now=10.0).accepted


@pytest.mark.parametrize("kwargs,words", [
    (dict(joint_names=[], lower=[], upper=[], max_velocity=[]), "at least one joint"),
    (dict(joint_names=["a", "a"], lower=[0, 0], upper=[1, 1], max_velocity=[1, 1]), "repeat"),
    (dict(joint_names=["a"], lower=[0, 0], upper=[1], max_velocity=[1]), "lower has 2 values"),
    (dict(joint_names=["a"], lower=[2], upper=[1], max_velocity=[1]), "lower limit 2.0 > upper 1.0"),
    (dict(joint_names=["a"], lower=[0], upper=[1], max_velocity=[0]), "max_velocity 0.0"),
])
def test_bad_configuration(kwargs, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace(".", r"\.")):
        TrajectoryExecutor(**kwargs)


def test_reset_replaces_everything():
    ex = make()
    ex.submit(traj([P(1.0, [1.0, 0.0])]), now=10.0)
    ex.reset([0.2, -0.2], 10.5)
    assert close(ex.sample(11.0), [0.2, -0.2])
    with pytest.raises(ValueError, match="3 positions"):
        ex.reset([0, 0, 0], 1.0)


def test_unlimited_velocity_joint():
    ex = TrajectoryExecutor(["a"], [-1.0], [1.0], [math.inf])
    ex.reset([0.0], 0.0)
    assert ex.submit(traj([P(0.001, [1.0])], names=["a"]), now=0.0).accepted


def test_replacements_never_jump_and_memory_stays_bounded():
    rng = np.random.default_rng(0)
    ex = make()
    now = 10.0
    for _ in range(300):
        before = ex.sample(now)
        n = int(rng.integers(1, 5))
        times = np.cumsum(rng.uniform(0.3, 0.6, n))
        pts = [P(float(t), list(rng.uniform(-0.3, 0.3, 2)), [0.0, 0.0] if i == n - 1 else list(rng.uniform(-.2, .2, 2)))
               for i, t in enumerate(times)]
        v = ex.submit(traj(pts), now=now)
        assert v.accepted, v.reason
        assert close(ex.sample(now), before)  # the commanded position is continuous at a replacement
        now += float(rng.uniform(0.01, 0.4))
    assert len(ex._plan.t) <= 8
