"""Chunk blending (rtc, ensemble, none) and the warm-up-robust delay estimate."""
import numpy as np
import pytest

from kairos_ros.core.blending import AbsolutePlan, ChunkBlender, DelayEstimator


def plan(stamp, t0, value, n=10, dt=0.1, joints=2):
    times = t0 + dt * np.arange(1, n + 1)
    return AbsolutePlan(stamp, times, np.full((n, joints), float(value)))


def test_none_replaces():
    b = ChunkBlender("none")
    b.blend(plan(0.0, 0.0, 0.0))
    assert np.allclose(b.blend(plan(0.5, 0.5, 1.0)), 1.0)


def test_rtc_ramps_from_previous_plan_without_a_jump():
    b = ChunkBlender("rtc", blend_time=0.4)
    b.blend(plan(0.0, 0.0, 0.0, n=20))
    out = b.blend(plan(0.5, 0.5, 1.0))
    assert out[0, 0] == pytest.approx(0.0)  # starts exactly where the previous plan is
    assert np.all(np.diff(out[:, 0]) >= -1e-12)  # monotone ramp, no overshoot
    assert np.allclose(out[4:, 0], 1.0)  # after blend_time only the new plan counts
    assert 0.0 < out[2, 0] < 1.0


def test_rtc_uses_new_plan_where_old_does_not_cover():
    b = ChunkBlender("rtc", blend_time=10.0)
    b.blend(plan(0.0, 0.0, 0.0, n=3))  # covers 0.1 .. 0.3
    out = b.blend(plan(0.2, 0.2, 1.0, n=5))  # 0.3 .. 0.7
    assert out[0, 0] == pytest.approx(0.0) and np.allclose(out[1:, 0], 1.0)


def test_ensemble_weights_older_plans_less():
    b = ChunkBlender("ensemble", decay=np.log(2))  # a plan 1 s older weighs half
    b.blend(plan(0.0, 0.0, 0.0, n=30))
    out = b.blend(plan(1.0, 1.0, 3.0, n=5))
    assert np.allclose(out, (3.0 * 1 + 0.0 * 0.5) / 1.5)


def test_bad_mode_named():
    with pytest.raises(ValueError, match="'smooth'"):
        ChunkBlender("smooth")


def test_delay_estimate_ignores_warmup():
    d = DelayEstimator(window=5, warmup=1)
    d.add(3.0)  # cold start
    assert d.estimate() is None
    for x in (0.10, 0.12, 0.11):
        d.add(x)
    assert d.estimate() == pytest.approx(0.11)
    d.add(5.0)  # one outlier does not move the median far
    assert d.estimate() < 0.2


def test_replan_positions_keeps_contract():
    from kairos_ros.core.embodiment import load_embodiment
    from kairos_ros.core.trajectory import TrajectoryPlan, replan_positions

    spec = load_embodiment("single_arm")
    times = np.array([0.03, 0.08, 0.13, 0.18])
    base = TrajectoryPlan(list(spec.joint_names), times, np.zeros((4, 8)), np.zeros((4, 8)))
    q = np.tile((spec.lower + spec.upper) / 2, (4, 1)) + np.linspace(0, 0.01, 4)[:, None]
    q[2, 0] = 99.0  # far outside the limits: clamped, and braked on the way there
    out = replan_positions(base, q, spec, current_positions=q[0])
    assert np.all(out.positions <= spec.upper) and q[1, 0] < out.positions[2, 0] < spec.upper[0]
    np.testing.assert_array_equal(out.positions[:2], q[:2])  # untouched where no limit is near
    assert np.all(out.velocities[-1] == 0.0) and np.all(np.abs(out.velocities) <= spec.max_velocity)
    assert np.array_equal(out.times, times)
    assert out.velocities[1, 1] == pytest.approx((q[2, 1] - q[0, 1]) / (times[2] - times[0]))


@pytest.mark.parametrize("mode", ["rtc", "ensemble"])
def test_a_plan_not_remembered_is_not_blended_from(mode):
    """The adapter blends a chunk before its gates decide; a refused chunk never reached the robot, so
    the next chunk must blend from the plan that did (remember only what is sent)."""
    b = ChunkBlender(mode)
    b.blend(plan(0.0, 0.0, 0.0, n=30))
    refused = b.blend(plan(0.5, 0.5, 5.0, n=30), remember=False)
    assert refused[-1, 0] > 0  # it was blended from the executing plan...
    with_refusal = b.blend(plan(1.0, 1.0, 1.0, n=30))
    clean = ChunkBlender(mode)
    clean.blend(plan(0.0, 0.0, 0.0, n=30))
    assert np.allclose(with_refusal, clean.blend(plan(1.0, 1.0, 1.0, n=30)))  # ...but left no trace
    b.remember(plan(2.0, 2.0, 7.0, n=5))
    assert len(b.plans) == 3 and np.allclose(b.plans[-1].positions, 7.0)
