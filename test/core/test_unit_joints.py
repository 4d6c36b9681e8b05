"""Unit tests for kairos_ros.core.joints.order_joint_state."""
import math

import numpy as np
import pytest

from kairos_ros.core.joints import JointStateError, order_joint_state

CONF = ["j1", "j2", "j3"]


def test_reorders_into_configured_order_as_float64():
    pos, vel = order_joint_state(["j3", "j1", "j2"], [3, 1, 2], [30.0, 10.0, 20.0], CONF)
    assert pos.dtype == np.float64 and vel.dtype == np.float64
    np.testing.assert_array_equal(pos, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(vel, [10.0, 20.0, 30.0])


@pytest.mark.parametrize("velocities", [None, [], np.zeros(0)])
def test_missing_velocities_give_none(velocities):
    pos, vel = order_joint_state(CONF, [0.1, 0.2, 0.3], velocities, CONF)
    assert vel is None
    np.testing.assert_array_equal(pos, [0.1, 0.2, 0.3])


def test_position_length_mismatch():
    with pytest.raises(JointStateError, match="3 joint names but 2 positions"):
        order_joint_state(CONF, [0.0, 0.0], None, CONF)


def test_velocity_length_mismatch():
    with pytest.raises(JointStateError, match="3 joint names but 1 velocities"):
        order_joint_state(CONF, [0.0] * 3, [1.0], CONF)


def test_duplicates_named():
    with pytest.raises(JointStateError, match=r"duplicate joint names \['j1', 'j2'\]"):
        order_joint_state(["j1", "j2", "j1", "j3", "j2"], [0.0] * 5, None, CONF)


def test_missing_named():
    with pytest.raises(JointStateError, match=r"missing configured joints \['j2'\]"):
        order_joint_state(["j1", "j3"], [0.0, 0.0], None, CONF)


def test_unknown_named_unless_ignored():
    names, pos = ["j1", "finger", "j2", "j3"], [1.0, 9.0, 2.0, 3.0]
    with pytest.raises(JointStateError, match=r"unknown joints \['finger'\]"):
        order_joint_state(names, pos, None, CONF)
    out, _ = order_joint_state(names, pos, None, CONF, ignore=["finger"])
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0])


def test_ignored_joint_may_be_non_finite():
    out, _ = order_joint_state(["j1", "mimic", "j2", "j3"], [1.0, math.nan, 2.0, 3.0], None, CONF, ignore=("mimic",))
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_position_names_the_joint(bad):
    with pytest.raises(JointStateError, match=r"non-finite positions for \['j2'\]") as info:
        order_joint_state(["j3", "j2", "j1"], [0.0, bad, 0.0], None, CONF)
    assert str(bad) in str(info.value)


def test_non_finite_velocities_name_the_joints():
    with pytest.raises(JointStateError, match=r"non-finite velocities for \['j1', 'j3'\]"):
        order_joint_state(["j3", "j2", "j1"], [0.0] * 3, [math.inf, 0.0, math.nan], CONF)


def test_non_finite_velocity_on_ignored_joint_is_fine():
    _, vel = order_joint_state(["j1", "x", "j2", "j3"], [0.0] * 4, [1.0, math.nan, 2.0, 3.0], CONF, ignore=["x"])
    np.testing.assert_array_equal(vel, [1.0, 2.0, 3.0])


def test_fit_velocity_is_the_least_squares_slope():
    from kairos_ros.core.joints import fit_velocity
    t = np.array([0.0, 0.1, 0.2, 0.3])
    q = np.stack([1.0 + 2.0 * t, -0.5 * t], axis=1)
    assert np.allclose(fit_velocity(t, q), [2.0, -0.5])
    noisy = q.copy()
    noisy[1, 0] += 0.1  # one noisy sample moves the fit less than a two-point difference over it
    assert abs(fit_velocity(t, noisy)[0] - 2.0) < abs((noisy[1, 0] - noisy[0, 0]) / 0.1 - 2.0)
    assert fit_velocity(t[:1], q[:1]) is None and fit_velocity([1.0, 1.0], q[:2]) is None
