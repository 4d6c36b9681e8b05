"""Unit tests for kairos_ros.backends: registry, hold and extrapolate baselines, imagine."""
import numpy as np
import pytest

from kairos_ros.backends import BACKENDS, make_backend
from kairos_ros.backends.baselines import ExtrapolateBackend, HoldBackend
from kairos_ros.core.embodiment import load_embodiment, slots_to_joints, state_to_slots
from kairos_ros.core.types import ActionChunkData, JointStateData, ObservationData

SPEC = load_embodiment("single_arm")
DUAL = load_embodiment("dual_arm")
MID = (SPEC.lower + SPEC.upper) / 2


def obs(spec, t, q, frame_value=0, velocities=None, shuffle=False, composed=True):
    names = list(spec.joint_names)
    q = np.asarray(q, dtype=np.float64)
    vel = None if velocities is None else np.asarray(velocities, dtype=np.float64)
    if shuffle:  # joint states as the driver sends them, not in controller order
        order = np.arange(len(names))[::-1]
        names, q = [names[i] for i in order], q[order]
        vel = None if vel is None else vel[order]
    frame = np.full((16, 32, 3), frame_value, np.uint8)
    return ObservationData(t, ["cam"], [frame], JointStateData(t, names, q, vel),
                           composed=frame if composed else None)


# -- registry ------------------------------------------------------------------------------------

def test_registry_known_backends():
    assert set(BACKENDS) == {"hold", "extrapolate"}
    assert isinstance(make_backend("hold", SPEC), HoldBackend)
    b = make_backend("extrapolate", SPEC, num_predicted_frames=2, fit_window=5)
    assert isinstance(b, ExtrapolateBackend) and b.fit_window == 5 and b.num_predicted_frames == 2


def test_unknown_backend_lists_known():
    with pytest.raises(ValueError, match=r"unknown backend 'magic' \(known: \['extrapolate', 'hold', 'kairos', 'remote'\]\)"):
        make_backend("magic", SPEC)


def test_bad_parameters_and_values():
    with pytest.raises(ValueError, match=r"backend 'hold': bad parameters \['colour'\]"):
        make_backend("hold", SPEC, colour="red")
    with pytest.raises(ValueError, match="num_predicted_frames -1 must be >= 0"):
        make_backend("hold", SPEC, num_predicted_frames=-1)
    with pytest.raises(ValueError, match="fit_window 1 must be >= 2"):
        make_backend("extrapolate", SPEC, fit_window=1)


def test_kairos_refused_with_a_clear_message():
    # kairos-nano takes the embodiment's slots: refused for want of weights, naming the parameter
    with pytest.raises(ValueError, match="parameter 'dit_checkpoint' is empty: the kairos backend needs trained"):
        make_backend("kairos", DUAL)
    with pytest.raises(ValueError, match=r"action layout needs slots \['left_arm.joint_1'.* 'franka_panda' does not"):
        make_backend("kairos", SPEC, model_preset="kairos-4b-wam", allow_large_preset_on_cpu=True)
    with pytest.raises(ValueError, match=r"backend 'kairos': bad parameters \['colour'\]"):
        make_backend("kairos", DUAL, colour="red")


# -- hold ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["hold", "extrapolate"])
def test_empty_history(name):
    b = make_backend(name, SPEC)
    with pytest.raises(ValueError, match="empty observation history: nothing to predict from"):
        b.predict([], 8, 0.05)
    cand = ActionChunkData(0.0, SPEC.name, list(SPEC.slot_names), np.zeros((2, 8), np.float32), 0.05)
    with pytest.raises(ValueError, match="empty observation history"):
        b.imagine([], cand)


def test_hold_repeats_the_newest_state_and_frame():
    b = make_backend("hold", SPEC, num_predicted_frames=4)
    q_new = MID + 0.01 * np.arange(8)
    history = [obs(SPEC, 1.0, MID, 5), obs(SPEC, 1.1, q_new, 7, shuffle=True)]
    pred = b.predict(history, 10, 0.05)
    assert pred.stamp == 1.1 and pred.chunk.stamp == 1.1
    assert pred.chunk.values.shape == (10, 8) and pred.chunk.values.dtype == np.float32
    np.testing.assert_allclose(pred.chunk.values, np.tile(state_to_slots(SPEC, q_new), (10, 1)), atol=1e-6)  # by name
    assert pred.chunk.embodiment == "franka_panda" and pred.chunk.slot_names == list(SPEC.slot_names)
    assert pred.chunk.step_period == 0.05 and pred.chunk.backend == "hold" and "baseline" in pred.chunk.model
    assert len(pred.frames) == 4 and all(f is history[-1].composed for f in pred.frames)
    np.testing.assert_allclose(pred.frame_times, [0.125, 0.25, 0.375, 0.5])  # spread over 10 * 0.05 s
    assert b.world_state_frames == 2
    b.reset()
    assert b.world_state_frames == 0


@pytest.mark.parametrize("frames,expected", [(1, [0.4]), (3, [0.4 / 3, 0.8 / 3, 0.4]), (0, [])])
def test_frame_times_spread_over_the_horizon(frames, expected):
    b = make_backend("hold", SPEC, num_predicted_frames=frames)
    pred = b.predict([obs(SPEC, 0.0, MID)], 8, 0.05)
    np.testing.assert_allclose(pred.frame_times, expected)
    assert len(pred.frames) == frames


def test_no_composed_frame_no_predicted_frames():
    pred = make_backend("hold", SPEC, num_predicted_frames=4).predict([obs(SPEC, 0.0, MID, composed=False)], 4, 0.1)
    assert pred.frames == [] and pred.frame_times == []


# -- extrapolate ---------------------------------------------------------------------------------

def test_extrapolate_exact_on_linear_motion():
    rate = np.linspace(-0.2, 0.2, 14) * DUAL.slot_scale  # per s; fingers (m) move in proportion to their travel
    q0 = (DUAL.lower + DUAL.upper) / 2
    stamps = [0.0, 0.04, 0.1, 0.13]  # uneven stamps: the least-squares slope is still exact
    history = [obs(DUAL, t, q0 + rate * t, shuffle=bool(i % 2)) for i, t in enumerate(stamps)]
    b = make_backend("extrapolate", DUAL, fit_window=3, num_predicted_frames=2)
    # states pass through the float32 slot space first: exact up to that rounding (~1e-7 / 0.09 s)
    # (slot units: the grippers' slot is the finger travel divided by its span)
    np.testing.assert_allclose(b.velocity(history) * DUAL.slot_scale, rate, atol=1e-5)
    pred = b.predict(history, 6, 0.05)
    expected = q0 + rate * (0.13 + 0.05 * np.arange(1, 7)[:, None])
    assert pred.chunk.values.dtype == np.float32 and pred.chunk.backend == "extrapolate"
    np.testing.assert_allclose(slots_to_joints(DUAL, pred.chunk.values), expected, atol=5e-6)
    assert pred.stamp == 0.13 and len(pred.frames) == 2


def test_extrapolate_uses_only_the_fit_window():
    q0 = MID.copy()
    # an old outlier outside the window must not bend the slope
    history = [obs(SPEC, 0.0, q0 + 1.0)] + [obs(SPEC, t, q0 + 0.1 * t) for t in (1.0, 2.0, 3.0)]
    b = make_backend("extrapolate", SPEC, fit_window=3)
    np.testing.assert_allclose(b.velocity(history) * SPEC.slot_scale, np.full(8, 0.1), atol=1e-6)


def test_extrapolate_clamps_to_limits():
    rate = np.full(8, 1.0)
    history = [obs(SPEC, t, SPEC.upper - 0.05 + rate * (t - 0.1)) for t in (0.0, 0.05, 0.1)]
    pred = make_backend("extrapolate", SPEC).predict(history, 20, 0.05)
    v = slots_to_joints(SPEC, pred.chunk.values)
    assert np.all(v <= SPEC.upper + 1e-6) and np.all(v >= SPEC.lower - 1e-6)
    np.testing.assert_allclose(v[-1], SPEC.upper, atol=1e-6)  # ran into the upper limit and stays there
    assert np.all(np.diff(v, axis=0) >= -1e-6)


def test_extrapolate_single_observation_uses_reported_velocity():
    vel = np.linspace(-0.05, 0.05, 8)
    b = make_backend("extrapolate", SPEC)
    pred = b.predict([obs(SPEC, 2.0, MID, velocities=vel, shuffle=True)], 4, 0.05)
    # reported joint velocities are converted to slot units: the joints move at exactly `vel`
    np.testing.assert_allclose(slots_to_joints(SPEC, pred.chunk.values), MID + vel * 0.05 * np.arange(1, 5)[:, None],
                               atol=1e-6)


@pytest.mark.parametrize("velocities", [None, np.full(8, np.nan)])
def test_extrapolate_single_observation_without_usable_velocity_holds(velocities):
    pred = make_backend("extrapolate", SPEC).predict([obs(SPEC, 2.0, MID, velocities=velocities)], 3, 0.1)
    np.testing.assert_allclose(pred.chunk.values, np.tile(state_to_slots(SPEC, MID), (3, 1)), atol=1e-6)


def test_extrapolate_identical_stamps_fall_back_to_velocities():
    vel = np.full(8, 0.01)
    history = [obs(SPEC, 1.0, MID, velocities=vel), obs(SPEC, 1.0, MID + 0.5, velocities=vel)]
    b = make_backend("extrapolate", SPEC)
    np.testing.assert_allclose(b.velocity(history), vel / SPEC.slot_scale)


# -- imagine -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["hold", "extrapolate"])
def test_imagine_returns_the_candidate(name):
    b = make_backend(name, SPEC, num_predicted_frames=2)
    values = np.random.default_rng(0).uniform(-0.1, 0.1, (5, 8)).astype(np.float32)
    cand = ActionChunkData(0.5, SPEC.name, list(SPEC.slot_names), values, 0.1, backend="user")
    history = [obs(SPEC, 1.0, MID, 3), obs(SPEC, 2.0, MID, 9)]
    pred = b.imagine(history, cand)
    assert pred.stamp == 2.0 and pred.chunk.stamp == 2.0  # stamped at the newest observation
    np.testing.assert_array_equal(pred.chunk.values, values)
    assert pred.chunk.values is not cand.values  # a copy
    assert pred.chunk.backend == name and pred.chunk.step_period == 0.1
    assert len(pred.frames) == 2 and np.all(pred.frames[0] == 9)
    np.testing.assert_allclose(pred.frame_times, [0.25, 0.5])
