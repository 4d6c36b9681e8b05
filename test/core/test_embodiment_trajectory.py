"""Embodiment files, chunk validation and the joint_trajectory_controller contract."""
import numpy as np
import pytest
import yaml

from kairos_ros.core.adapter import plan_chunk
from kairos_ros.core.chunks import ChunkError, validate_chunk
from kairos_ros.core.embodiment import list_aliases, list_embodiments, load_embodiment, slots_to_joints, state_to_slots
from kairos_ros.core.trajectory import chunk_to_trajectory, hold_trajectory
from kairos_ros.core.types import ActionChunkData

SPEC = load_embodiment("dual_arm")


def chunk(values=None, **kw):
    values = np.tile((SPEC.lower + SPEC.upper) / 2, (6, 1)).astype(np.float32) if values is None else values
    args = dict(stamp=10.0, embodiment="dual_arm", slot_names=list(SPEC.slot_names), values=values, step_period=0.05)
    args.update(kw)
    return ActionChunkData(**args)


def test_bundled_embodiments():
    assert {"aloha", "franka_panda", "shadow_hand"} <= set(list_embodiments())
    assert list_aliases() == {"dual_arm": "aloha", "single_arm": "franka_panda", "dexterous_hand": "shadow_hand"}
    assert SPEC.name == "aloha" and SPEC.dim == 14 and SPEC.slot_names[6] == "left_arm.gripper"
    hand = load_embodiment("dexterous_hand")
    assert hand.dim == 20 and "robot0_FFJ0" in hand.ignore_joints
    q = np.arange(14, dtype=float)
    # round trip through the float32 slot space (the grippers' slots scale the finger travel)
    np.testing.assert_allclose(slots_to_joints(SPEC, state_to_slots(SPEC, q)[None])[0], q, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown embodiment 'robodog'"):
        load_embodiment("robodog")


@pytest.mark.parametrize("mutate,match", [
    (lambda d: d["joints"][0].update(lower=2.0, upper=1.0), "lower 2.0 must be < upper 1.0"),
    (lambda d: d["joints"][1].update(max_velocity=0), "max_velocity 0 must be > 0"),
    (lambda d: d["joints"][1].update(name=d["joints"][0]["name"]), "duplicate joint names"),
    (lambda d: d["joints"][1].update(slot=d["joints"][0]["slot"]), "duplicate slot names"),
    (lambda d: d.pop("controller_topic"), "missing keys"),
])
def test_adapter_file_errors(tmp_path, mutate, match):
    data = yaml.safe_load(open(SPEC.path))
    data["urdf"] = SPEC.urdf_path  # the copy lives elsewhere
    mutate(data)
    path = tmp_path / "adapter.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match=match):
        load_embodiment(str(path))


@pytest.mark.parametrize("kw,match", [
    (dict(embodiment="single_arm"), "chunk embodiment 'single_arm' != adapter embodiment 'aloha'"),
    (dict(values=np.zeros((4, 13), np.float32), slot_names=list(SPEC.slot_names)[:13]), "dimension 13"),
    (dict(values=np.zeros((0, 14), np.float32)), "horizon >= 1"),
    (dict(slot_names=list(SPEC.slot_names)[::-1]), "chunk slot 0 is 'right_arm.gripper'"),
    (dict(step_period=0.0), "step_period"),
])
def test_chunk_validation(kw, match):
    with pytest.raises(ChunkError, match=match):
        validate_chunk(chunk(**kw), SPEC)
    bad = chunk()
    bad.values[3, 5] = np.nan
    with pytest.raises(ChunkError, match="row 3, slot 'left_arm.joint_6'"):
        validate_chunk(bad, SPEC)


def test_trajectory_contract_on_random_chunks():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(1, 40))
        values = rng.uniform(-2.0, 2.0, (n, 14)).astype(np.float32) * np.where(SPEC.slot_scale == 1, 2.0, 1.0)
        plan = chunk_to_trajectory(chunk(values), SPEC, current_positions=(SPEC.lower + SPEC.upper) / 2)
        assert plan.joint_names == list(SPEC.joint_names)
        assert plan.times[0] > 0 and np.all(np.diff(plan.times) > 0)
        assert np.all(plan.positions >= SPEC.lower) and np.all(plan.positions <= SPEC.upper)
        assert np.all(np.abs(plan.velocities) <= SPEC.max_velocity + 1e-12)
        assert np.all(plan.velocities[-1] == 0.0)
        q = slots_to_joints(SPEC, values)  # the grippers' slot maps onto the finger travel
        outside = int(np.count_nonzero((q < SPEC.lower) | (q > SPEC.upper)))
        assert plan.clamped == int(np.count_nonzero(np.abs(plan.positions - q) > 1e-12)) >= outside


def test_velocities_are_central_differences():
    values = np.tile((SPEC.lower + SPEC.upper) / 2, (4, 1)) + np.arange(4)[:, None] * 0.01
    plan = chunk_to_trajectory(chunk(values.astype(np.float32)), SPEC)
    assert plan.velocities[1, 0] == pytest.approx(0.2, rel=1e-4)  # 0.01 rad per 0.05 s
    assert hold_trajectory(SPEC, values[0], 0.1).velocities.sum() == 0.0


def test_plan_chunk_drops_past_points_and_refuses_stale():
    current = (SPEC.lower + SPEC.upper) / 2
    plan = plan_chunk(chunk(), SPEC, current, now=10.12, max_age=0.5)
    assert len(plan.times) == 4 and plan.times[0] == pytest.approx(0.03)  # rows at 10.05, 10.10 are past
    with pytest.raises(ChunkError, match="stale chunk"):
        plan_chunk(chunk(), SPEC, current, now=11.0, max_age=0.5)
    with pytest.raises(ChunkError, match="in the past"):
        plan_chunk(chunk(), SPEC, current, now=10.4, max_age=0.0)
    with pytest.raises(ChunkError, match="no valid joint state"):
        plan_chunk(chunk(), SPEC, None, now=10.0, max_age=0.5)
