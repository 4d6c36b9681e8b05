"""Unit tests for kairos_ros.core.adapter.plan_chunk."""
import numpy as np
import pytest

from kairos_ros.core.adapter import plan_chunk
from kairos_ros.core.chunks import ChunkError
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.types import ActionChunkData

SPEC = load_embodiment("single_arm")
MID = (SPEC.lower + SPEC.upper) / 2
DT = 0.125  # binary-exact, so the time arithmetic below is exact


def joints(horizon=8):
    return MID + 0.001 * np.arange(1, horizon + 1)[:, None]


def chunk(stamp=10.0, horizon=8, **kw):
    values = (joints(horizon) - SPEC.slot_offset) / SPEC.slot_scale  # slot values (the gripper's maps 0..1)
    args = dict(stamp=stamp, embodiment=SPEC.name, slot_names=list(SPEC.slot_names), values=values, step_period=DT)
    args.update(kw)
    return ActionChunkData(**args)


def test_fresh_chunk_keeps_every_point_relative_to_now():
    plan = plan_chunk(chunk(stamp=10.0), SPEC, MID, now=10.0, max_age=0.5)
    np.testing.assert_array_equal(plan.times, DT * np.arange(1, 9))
    assert plan.positions.shape == (8, 8) and np.all(plan.velocities[-1] == 0.0)
    late = plan_chunk(chunk(stamp=10.0), SPEC, MID, now=10.0625, max_age=0.5)
    np.testing.assert_array_equal(late.times, DT * np.arange(1, 9) - 0.0625)  # stamp - now shifts the times


def test_past_points_are_dropped():
    c = chunk(stamp=10.0)
    plan = plan_chunk(c, SPEC, MID, now=10.25, max_age=0.5)  # rows 0 and 1 land at -0.125 s and 0.0 s
    np.testing.assert_array_equal(plan.times, DT * np.arange(1, 7))
    np.testing.assert_allclose(plan.positions, joints()[2:])
    full = plan_chunk(c, SPEC, MID, now=10.0, max_age=0.5)
    np.testing.assert_array_equal(plan.velocities, full.velocities[2:])  # kept rows keep their velocities
    assert np.all(plan.velocities[-1] == 0.0)
    assert np.all(np.diff(plan.times) > 0) and plan.times[0] > 0


def test_min_lead_drops_points_too_close():
    plan = plan_chunk(chunk(stamp=10.0), SPEC, MID, now=10.0, max_age=0.5, min_lead=0.25)
    np.testing.assert_array_equal(plan.times, DT * np.arange(3, 9))  # 0.25 itself is not > min_lead


def test_all_points_in_the_past():
    with pytest.raises(ChunkError, match=r"every point of the chunk lies in the past \(last at -0.500 s\)"):
        plan_chunk(chunk(stamp=10.0), SPEC, MID, now=11.5, max_age=0)


def test_stale_chunk():
    with pytest.raises(ChunkError, match=r"stale chunk: chunk \(its observation\) is 0.600 s old \(> max_chunk_age 0.5\)"):
        plan_chunk(chunk(stamp=10.0), SPEC, MID, now=10.6, max_age=0.5)
    plan = plan_chunk(chunk(stamp=10.0), SPEC, MID, now=10.5, max_age=0.5)  # exactly max_age: accepted
    assert len(plan.times) == 4


def test_max_age_zero_disables_the_staleness_check():
    plan = plan_chunk(chunk(stamp=10.0, horizon=40), SPEC, MID, now=14.0, max_age=0.0)
    assert len(plan.times) == 8 and plan.times[0] == pytest.approx(0.125)


def test_no_joint_state():
    with pytest.raises(ChunkError, match="no valid joint state received yet"):
        plan_chunk(chunk(), SPEC, None, now=10.0, max_age=0.5)


def test_invalid_chunk_refused_first():
    with pytest.raises(ChunkError, match="chunk embodiment 'dual_arm'"):
        plan_chunk(chunk(embodiment="dual_arm"), SPEC, None, now=10.0, max_age=0.5)
    bad = chunk()
    bad.values[3, 2] = np.nan
    with pytest.raises(ChunkError, match="non-finite"):
        plan_chunk(bad, SPEC, MID, now=10.0, max_age=0.5)


def test_first_velocity_uses_current_positions():
    plan = plan_chunk(chunk(stamp=10.0), SPEC, MID - 0.001, now=10.0, max_age=0.5)
    # rows are MID + 0.001 (k + 1): the state before row 0 is MID - 0.001, row 1 is MID + 0.002
    np.testing.assert_allclose(plan.velocities[0], 0.003 / (2 * DT))
