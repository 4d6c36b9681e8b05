"""Unit tests for kairos_ros.core.trajectory: the joint_trajectory_controller contract."""
import numpy as np
import pytest

from kairos_ros.core.embodiment import load_embodiment, slots_to_joints
from kairos_ros.core.safety import SafetyLimits, SafetyState
from kairos_ros.core.trajectory import (BRAKE_SHARE, TrajectoryPlan, chunk_to_trajectory, hold_trajectory,
                                        replan_positions)
from kairos_ros.core.types import ActionChunkData

SPECS = {name: load_embodiment(name) for name in ("single_arm", "dual_arm", "dexterous_hand")}


def to_slots(spec, q):
    """Joint positions -> slot values in float64 (chunks carry slots; the grippers' slot maps 0..1)."""
    return (np.asarray(q, dtype=np.float64) - spec.slot_offset) / spec.slot_scale


def random_chunk(spec, rng, horizon, dt, overshoot=0.2):
    span = spec.upper - spec.lower
    q = rng.uniform(spec.lower - overshoot * span, spec.upper + overshoot * span, (horizon, spec.dim))
    return ActionChunkData(2.0, spec.name, list(spec.slot_names), to_slots(spec, q).astype(np.float32), dt)


def check_braking(spec, plan, clipped):
    """Independent check of the braking rule: between consecutive points no joint heads for a limit
    faster than sqrt(2 a d) (a = BRAKE_SHARE x max_acceleration, d the distance left from the
    earlier point), and a position differs from its clipped target only where that bound binds."""
    a = BRAKE_SHARE * spec.max_acceleration
    q, t = plan.positions, plan.times
    np.testing.assert_array_equal(q[0], clipped[0])  # the first point is never braked
    for k in range(1, len(t)):
        u = (q[k] - q[k - 1]) / (t[k] - t[k - 1])
        to_upper = np.sqrt(2 * a * (spec.upper - q[k - 1]))
        to_lower = np.sqrt(2 * a * (q[k - 1] - spec.lower))
        assert np.all(u <= to_upper + 1e-9) and np.all(-u <= to_lower + 1e-9)
        braked = np.abs(q[k] - clipped[k]) > 1e-12
        ad = a * (t[k] - t[k - 1])
        bound_up = -ad + np.sqrt(ad * ad + 2 * a * (spec.upper - q[k - 1]))
        bound_down = ad - np.sqrt(ad * ad + 2 * a * (q[k - 1] - spec.lower))
        on_bound = np.isclose(u, bound_up, atol=1e-9) | np.isclose(u, bound_down, atol=1e-9)
        assert np.all(on_bound[braked]), f"point {k}: changed without the bound binding"


def reference_velocities(q, dt, prev):
    """Independent reference: central differences, first point from prev (or forward), clamp, end at rest."""
    n = q.shape[0]
    v = np.zeros_like(q)
    for k in range(n):
        if k == n - 1:
            v[k] = 0.0
        elif k == 0:
            v[k] = (q[1] - prev) / (2 * dt) if prev is not None else (q[1] - q[0]) / dt
        else:
            v[k] = (q[k + 1] - q[k - 1]) / (2 * dt)
    return v


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("seed", range(4))
def test_jtc_contract_on_random_chunks(name, seed):
    spec = SPECS[name]
    rng = np.random.default_rng(seed)
    horizon = int(rng.integers(1, 40))
    dt = float(rng.uniform(0.01, 0.2))
    chunk = random_chunk(spec, rng, horizon, dt)
    current = rng.uniform(spec.lower, spec.upper) if seed % 2 else None
    plan = chunk_to_trajectory(chunk, spec, current)
    assert isinstance(plan, TrajectoryPlan)
    # every configured joint, in the controller's order
    assert plan.joint_names == list(spec.joint_names)
    assert plan.positions.shape == plan.velocities.shape == (horizon, spec.dim)
    # strictly increasing times, row k at (k + 1) * dt
    assert np.all(np.diff(plan.times) > 0) and plan.times[0] > 0
    np.testing.assert_allclose(plan.times, dt * np.arange(1, horizon + 1))
    # positions clamped to the limits and braked on the way there, every changed value counted
    v = slots_to_joints(spec, chunk.values)
    outside = int(np.count_nonzero((v < spec.lower) | (v > spec.upper)))
    changed = np.abs(plan.positions - v) > 1e-12
    assert plan.clamped == int(np.count_nonzero(changed)) >= outside
    assert outside > 0  # 20 % overshoot: some values certainly land outside
    assert np.all(plan.positions >= spec.lower) and np.all(plan.positions <= spec.upper)
    check_braking(spec, plan, np.clip(v, spec.lower, spec.upper))
    # velocities given, finite, within +-max_velocity; the last point exactly at rest
    assert np.all(np.isfinite(plan.velocities))
    assert np.all(np.abs(plan.velocities) <= spec.max_velocity)
    assert np.all(plan.velocities[-1] == 0.0)
    ref = reference_velocities(plan.positions, dt, current)
    np.testing.assert_allclose(plan.velocities, np.clip(ref, -spec.max_velocity, spec.max_velocity), atol=1e-12)


def test_velocities_unclamped_on_a_slow_ramp():
    spec = SPECS["single_arm"]
    mid = (spec.lower + spec.upper) / 2
    rate = 0.1 * spec.max_velocity  # well inside the limit
    dt = 0.05
    values = mid + rate * dt * np.arange(1, 7)[:, None]
    chunk = ActionChunkData(0.0, spec.name, list(spec.slot_names), to_slots(spec, values), dt)
    plan = chunk_to_trajectory(chunk, spec, current_positions=mid)
    assert plan.clamped == 0
    np.testing.assert_allclose(plan.velocities[:-1], np.tile(rate, (5, 1)), rtol=1e-9)  # incl. the first point
    assert np.all(plan.velocities[-1] == 0.0)


def test_velocity_clamp_on_a_jump():
    spec = SPECS["dual_arm"]
    values = np.tile((spec.lower + spec.upper) / 2, (3, 1))
    values[1] = spec.upper  # a jump far faster than max_velocity in 0.01 s
    plan = chunk_to_trajectory(ActionChunkData(0.0, spec.name, list(spec.slot_names), to_slots(spec, values), 0.01),
                               spec)
    assert np.all(np.abs(plan.velocities) <= spec.max_velocity)
    arm = spec.slot_scale == 1  # the arm joints: braked towards the limit, still far faster than allowed
    np.testing.assert_array_equal(np.abs(plan.velocities[0, arm]), spec.max_velocity[arm])
    # a finger cannot reach 1 m/s over its 18 mm to the limit with 2 m/s^2: it is braked below that
    assert np.all(np.abs(plan.velocities[0, ~arm]) < spec.max_velocity[~arm])


def test_first_velocity_uses_clamped_current_positions():
    spec = SPECS["single_arm"]
    mid = (spec.lower + spec.upper) / 2
    values = np.tile(mid, (3, 1))
    current = spec.upper + 10.0  # outside the limits: clamped before use
    plan = chunk_to_trajectory(ActionChunkData(0.0, spec.name, list(spec.slot_names), to_slots(spec, values), 1000.0),
                               spec, current)
    np.testing.assert_allclose(plan.velocities[0], (mid - spec.upper) / 2000.0)


def test_single_row_chunk_is_at_rest():
    spec = SPECS["single_arm"]
    plan = chunk_to_trajectory(ActionChunkData(0.0, spec.name, list(spec.slot_names), spec.lower[None] + 0.1, 0.05),
                               spec, current_positions=spec.upper)
    assert plan.times.tolist() == [0.05] and np.all(plan.velocities == 0.0)


@pytest.mark.parametrize("delay", [-0.12, 0.0, 0.3])
def test_start_delay_shifts_times_only(delay):
    spec = SPECS["dexterous_hand"]
    chunk = random_chunk(spec, np.random.default_rng(7), 5, 0.05, overshoot=0.0)
    base = chunk_to_trajectory(chunk, spec)
    shifted = chunk_to_trajectory(chunk, spec, start_delay=delay)
    np.testing.assert_allclose(shifted.times, base.times + delay)
    np.testing.assert_allclose(shifted.positions, base.positions, atol=1e-12)  # braking sees the same steps
    np.testing.assert_allclose(shifted.velocities, base.velocities, atol=1e-9)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_running_into_a_limit_is_braked_within_the_acceleration_limit(name):
    """A constant-velocity plan through the upper limit (as the extrapolate baseline makes) stops at
    the limit without exceeding max_acceleration: the acceleration gate passes it."""
    spec = SPECS[name]
    mid = (spec.lower + spec.upper) / 2
    rate = 0.5 * spec.max_velocity
    dt = 0.05
    n = int(1.5 * np.max((spec.upper - mid) / (rate * dt))) + 10  # long enough to run far past every limit
    q = mid + rate * dt * np.arange(1, n + 1)[:, None]
    plan = chunk_to_trajectory(ActionChunkData(0.0, spec.name, list(spec.slot_names), to_slots(spec, q), dt), spec, mid)
    assert plan.clamped > 0 and np.all(plan.positions <= spec.upper)
    seg = np.diff(plan.positions, axis=0) / dt
    accel = np.abs(np.diff(seg, axis=0)) / dt
    assert np.all(accel <= spec.max_acceleration * 1.05), accel.max(axis=0) / spec.max_acceleration
    SafetyState(spec, SafetyLimits(max_start_jump=10, max_step=10)).check_plan(plan, mid)
    reached = spec.upper - plan.positions[-1]
    assert np.all(reached < 0.02 * (spec.upper - spec.lower))  # it still gets (nearly) there
    bare = np.clip(q, spec.lower, spec.upper)
    assert np.abs(np.diff(np.diff(bare, axis=0), axis=0)).max() / dt ** 2 > 1.05 * spec.max_acceleration.min()


def test_hold_trajectory():
    spec = SPECS["single_arm"]
    q = (spec.lower + spec.upper) / 2
    q[0] = spec.upper[0] + 1.0
    plan = hold_trajectory(spec, q, 0.25)
    assert plan.joint_names == list(spec.joint_names)
    assert plan.positions.shape == (1, 8)
    assert plan.positions[0, 0] == spec.upper[0]  # brought back to the limit ...
    # ... no faster than the cubic the controller interpolates allows: 1.5 d / T <= v, 6 d / T^2 <= a
    need = max(1.5 * 1.0 / (0.9 * spec.max_velocity[0]), np.sqrt(6 * 1.0 / (0.9 * spec.max_acceleration[0])))
    assert need > 0.25 and plan.times[0] == pytest.approx(need, rel=1e-6)
    np.testing.assert_array_equal(plan.positions[0, 1:], q[1:])
    assert np.all(plan.velocities == 0.0) and plan.clamped == 0
    inside = hold_trajectory(spec, (spec.lower + spec.upper) / 2, 0.25)
    assert inside.times.tolist() == [0.25]
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=f"hold duration {bad} must be finite and > 0"):
            hold_trajectory(spec, q, bad)


def test_replan_positions_uneven_times():
    spec = SPECS["single_arm"]
    mid = (spec.lower + spec.upper) / 2
    plan = TrajectoryPlan(list(spec.joint_names), np.array([0.1, 0.2, 0.4, 0.5]), np.zeros((4, 8)), np.zeros((4, 8)), 3)
    q = mid + 0.001 * np.arange(4)[:, None] ** 2  # stays inside every limit, even the 4 cm gripper
    out = replan_positions(plan, q, spec, current_positions=mid)
    np.testing.assert_allclose(out.velocities[1], (q[2] - q[0]) / 0.3)
    np.testing.assert_allclose(out.velocities[2], (q[3] - q[1]) / 0.3)
    np.testing.assert_allclose(out.velocities[0], (q[1] - mid) / 0.2)  # the state stands at t = 0
    assert np.all(out.velocities[-1] == 0.0) and out.clamped == 3
    no_state = replan_positions(plan, q, spec)
    np.testing.assert_allclose(no_state.velocities[0], (q[1] - q[0]) / 0.1)
    out.times[0] = 99.0
    assert plan.times[0] == 0.1  # times are copied
