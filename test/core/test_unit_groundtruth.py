"""Unit tests for kairos_ros.core.groundtruth.interpolate_states."""
import numpy as np

from kairos_ros.core.groundtruth import interpolate_states


def test_linear_interpolation_and_recorded_points():
    stamps = [0.0, 1.0, 3.0]
    pos = [[0.0, 10.0], [1.0, 20.0], [5.0, 0.0]]
    states, valid = interpolate_states(stamps, pos, [0.0, 0.25, 1.0, 2.0, 3.0])
    assert valid.dtype == bool and valid.all()
    np.testing.assert_allclose(states, [[0.0, 10.0], [0.25, 12.5], [1.0, 20.0], [3.0, 10.0], [5.0, 0.0]])


def test_outside_range_is_invalid_nan():
    states, valid = interpolate_states([1.0, 2.0], [[0.0], [1.0]], [0.5, 1.5, 2.0, 2.0001])
    assert valid.tolist() == [False, True, True, False]
    assert np.all(np.isnan(states[~valid]))
    np.testing.assert_allclose(states[valid, 0], [0.5, 1.0])


def test_unsorted_input_and_duplicate_stamps():
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 2.0, 21)
    q = np.stack([np.sin(t), 3 * t], axis=1)
    order = rng.permutation(21)
    dup_t = np.concatenate([t[order], [t[5]]])  # a repeated stamp
    dup_q = np.concatenate([q[order], q[5:6]])
    query = rng.uniform(0.0, 2.0, 50)
    got, valid = interpolate_states(dup_t, dup_q, query)
    assert valid.all()
    ref = np.stack([np.interp(query, t, q[:, d]) for d in range(2)], axis=1)
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_one_dimensional_positions():
    states, valid = interpolate_states([0.0, 2.0], [0.0, 4.0], [1.0])
    assert states.shape == (1, 1) and states[0, 0] == 2.0 and valid.all()


def test_fewer_than_two_samples_are_never_valid():
    states, valid = interpolate_states([1.0], [[3.0, 4.0]], [1.0, 2.0])
    assert states.shape == (2, 2) and not valid.any() and np.all(np.isnan(states))
    states, valid = interpolate_states(np.zeros(0), np.zeros((0, 3)), [0.0])
    assert states.shape == (1, 3) and not valid.any()


def test_input_arrays_not_modified():
    t = np.array([2.0, 0.0, 1.0])
    q = np.array([[2.0], [0.0], [1.0]])
    interpolate_states(t, q, [0.5])
    assert t.tolist() == [2.0, 0.0, 1.0] and q[:, 0].tolist() == [2.0, 0.0, 1.0]
