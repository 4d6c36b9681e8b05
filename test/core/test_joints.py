"""core.joints: order_joint_state (configured order, validation with messages that name joints and
values) and fit_velocity."""
import array
import math

import numpy as np
import pytest

from kairos_ros.core.joints import JointStateError, order_joint_state

CONF = ["shoulder", "elbow", "wrist"]


def test_reorders_ignores_and_copies():
    names = ["wrist", "gripper", "shoulder", "elbow"]
    positions = np.array([3.0, 0.5, 1.0, 2.0])
    velocities = array.array("d", [30.0, 5.0, 10.0, 20.0])  # what rclpy hands over
    pos, vel = order_joint_state(names, positions, velocities, CONF, ignore=(n for n in ["gripper"]))
    assert pos.tolist() == [1.0, 2.0, 3.0] and vel.tolist() == [10.0, 20.0, 30.0]
    assert pos.dtype == vel.dtype == np.float64
    pos[0] = 99.0
    assert positions[2] == 1.0  # the result never aliases the message


def test_integer_positions_become_float64():
    pos, vel = order_joint_state(CONF, [1, 2, 3], None, CONF)
    assert pos.dtype == np.float64 and vel is None


@pytest.mark.parametrize("velocities", [None, [], np.zeros(0)])
def test_missing_velocities_give_none(velocities):
    pos, vel = order_joint_state(CONF, [0.1, 0.2, 0.3], velocities, CONF)
    assert vel is None
    np.testing.assert_array_equal(pos, [0.1, 0.2, 0.3])


def test_empty_configuration_gives_empty_arrays():
    pos, vel = order_joint_state([], [], [], [])
    assert pos.shape == (0,) and vel is None


@pytest.mark.parametrize("names,pos,vel,ignore,match", [
    (CONF, [1.0, 2.0], None, (), r"^3 joint names but 2 positions$"),
    (["shoulder", "elbow", "shoulder", "wrist"], [0.0] * 4, None, (), r"duplicate joint names \['shoulder'\]"),
    (["shoulder", "elbow", "shoulder", "wrist", "elbow"], [0.0] * 5, None, (),
     r"duplicate joint names \['elbow', 'shoulder'\]"),
    (["shoulder", "wrist"], [0.0] * 2, None, (),
     r"missing configured joints \['elbow'\] \(got \['shoulder', 'wrist'\]\)"),
    (CONF + ["finger"], [0.0] * 4, None, (), r"unknown joints \['finger'\] \(not configured, not in ignore_joints\)"),
    (["wrist", "elbow", "shoulder"], [0.0, math.nan, 0.0], None, (), r"non-finite positions for \['elbow'\]: \[nan\]"),
    (CONF, [0.0, 0.0, -math.inf], None, (), r"non-finite positions for \['wrist'\]: \[-inf\]"),
    (["wrist", "elbow", "shoulder"], [0.0, math.inf, 0.0], None, (), r"non-finite positions for \['elbow'\]: \[inf\]"),
    (CONF, [0.0] * 3, [1.0] * 4, (), r"3 joint names but 4 velocities"),
    (CONF, [0.0] * 3, [math.inf, 0.0, math.nan], (),
     r"non-finite velocities for \['shoulder', 'wrist'\]: \[inf, nan\]"),
    (CONF, ["a", 0.0, 0.0], None, (), r"positions are not numbers"),
    (CONF, [[0.0, 1.0, 2.0]], None, (), r"positions must be a flat list, got shape \(1, 3\)"),
    (CONF, [0.0] * 3, ["x", 1, 2], (), r"velocities are not numbers"),
])
def test_errors_name_joints_and_values(names, pos, vel, ignore, match):
    with pytest.raises(JointStateError, match=match):
        order_joint_state(names, pos, vel, CONF, ignore)


def test_ignored_joints_may_be_unknown_and_non_finite():
    pos, vel = order_joint_state(CONF + ["mimic"], [1.0, 2.0, 3.0, math.nan], [0.0, 0.0, 0.0, math.inf],
                                 CONF, ignore=["mimic", "not_published"])
    assert pos.tolist() == [1.0, 2.0, 3.0] and vel.tolist() == [0.0, 0.0, 0.0]


def test_error_is_a_value_error():
    assert issubclass(JointStateError, ValueError)


def test_fit_velocity_is_the_least_squares_slope():
    from kairos_ros.core.joints import fit_velocity
    t = np.array([0.0, 0.1, 0.2, 0.3])
    q = np.stack([1.0 + 2.0 * t, -0.5 * t], axis=1)
    assert np.allclose(fit_velocity(t, q), [2.0, -0.5])
    noisy = q.copy()
    noisy[1, 0] += 0.1  # one noisy sample moves the fit less than a two-point difference over it
    assert abs(fit_velocity(t, noisy)[0] - 2.0) < abs((noisy[1, 0] - noisy[0, 0]) / 0.1 - 2.0)
    assert fit_velocity(t[:1], q[:1]) is None and fit_velocity([1.0, 1.0], q[:2]) is None
