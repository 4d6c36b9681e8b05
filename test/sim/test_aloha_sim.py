"""ALOHA scenes (gym-aloha's MJCF stepped with MuJoCo) and their scripted experts."""

import numpy as np
import pytest

from kairos_ros.lib.sim.render import ensure_gl

ensure_gl()  # before mujoco is imported

import mujoco  # noqa: E402

from kairos_ros.lib.sim.aloha import JOINT_NAMES, MJCF_JOINTS, AlohaInsertion, AlohaTransferCube  # noqa: E402
from kairos_ros.lib.sim.aloha_expert import run_episode  # noqa: E402
from kairos_ros.lib.sim.registry import make_expert, make_task  # noqa: E402


@pytest.fixture(scope="module")
def cube():
    task = AlohaTransferCube()
    yield task
    task.close()


@pytest.fixture(scope="module")
def insertion():
    task = AlohaInsertion()
    yield task
    task.close()


def _state(task):
    return np.concatenate([task.data.qpos, task.data.qvel, task.data.act, task.data.ctrl, [task.data.time]])


def test_adapter_names_and_info(cube):
    from kairos_ros.core.embodiment import load_embodiment

    spec = load_embodiment(cube.info.embodiment)
    assert sorted(cube.joint_names) == sorted(list(spec.joint_names) + list(spec.ignore_joints))
    assert cube.joint_names == list(JOINT_NAMES)
    assert cube.info.cameras == ("head", "left_wrist", "right_wrist")
    assert cube.info.control_period == 0.02 and cube.info.episode_length == 8.0
    assert cube.info.instruction == "transfer the red cube to the other arm"


def test_reset_by_seed_is_reproducible(cube):
    targets = cube.joint_state()[0] + 0.05
    runs = []
    for seed in (7, 7, 8):
        cube.reset(seed)
        start = _state(cube)
        for _ in range(10):
            cube.step(targets)
        runs.append((start, _state(cube), cube.object_poses()))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][2], runs[2][2])
    cube.reset(8)
    x, y, z = cube.object_poses()[0, :3]
    assert 0.0 <= x <= 0.2 and 0.4 <= y <= 0.6 and z == 0.05


def test_insertion_objects_in_range(insertion):
    for seed in range(5):
        insertion.reset(seed)
        peg, socket = insertion.object_poses()[:, :3]
        assert 0.1 <= peg[0] <= 0.2 and -0.2 <= socket[0] <= -0.1
        assert 0.4 <= peg[1] <= 0.6 and 0.4 <= socket[1] <= 0.6
        assert insertion.reward() == 0 and not insertion.success()


def test_step_moves_joints_toward_targets(cube):
    cube.reset(0)
    start, _ = cube.joint_state()
    targets = start.copy()
    targets[0] += 0.3  # left waist
    targets[8] -= 0.3  # right waist
    targets[14] = 0.05  # right gripper opens (m)
    targets[15] = 123.0  # a follower's target is ignored
    for _ in range(50):
        cube.step(targets)
    pos, vel = cube.joint_state()
    assert abs(pos[0] - targets[0]) < 0.02 and abs(pos[8] - targets[8]) < 0.02
    assert abs(pos[14] - 0.05) < 0.003 and abs(pos[15] + 0.05) < 0.003  # follower mirrors its leader
    assert cube.time == pytest.approx(1.0) and cube.steps == 50
    assert vel.shape == (16,) and np.all(np.isfinite(vel))
    with pytest.raises(ValueError):
        cube.step(np.zeros(14))
    with pytest.raises(ValueError):
        cube.step(np.full(16, np.nan))


def test_success_false_at_reset(cube):
    for seed in range(3):
        cube.reset(seed)
        assert cube.time == 0.0 and cube.reward() == 0 and not cube.success()


def test_limits_from_the_model(cube):
    ids = [mujoco.mj_name2id(cube.model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in MJCF_JOINTS]
    assert np.array_equal(cube.lower, cube.model.jnt_range[ids, 0])
    assert np.array_equal(cube.upper, cube.model.jnt_range[ids, 1])
    assert cube.lower[6] == pytest.approx(0.021) and cube.upper[6] == pytest.approx(0.057)  # finger (m)
    assert np.all(cube.lower < cube.upper)
    pos, _ = cube.joint_state()
    assert np.all(pos >= cube.lower - 1e-3) and np.all(pos <= cube.upper + 1e-3)


def test_render_shape_and_content(cube):
    cube.reset(0)
    for cam in cube.info.cameras:
        img = cube.render(cam, 64, 48)
        assert img.shape == (48, 64, 3) and img.dtype == np.uint8
        assert img.std() > 10, f"{cam} looks blank"
    big = cube.render("head", 320, 240)
    assert big.shape == (240, 320, 3)
    # the red cube is visible from the head camera
    red = (big[..., 0] > 150) & (big[..., 1] < 80) & (big[..., 2] < 80)
    assert red.sum() > 20


def test_expert_transfers_the_cube():
    """Slow-ish (about 1 s): one full seeded expert episode."""
    task, expert = make_task("aloha_transfer_cube"), make_expert("aloha_transfer_cube")
    try:
        result = run_episode(task, expert, seed=1)
        assert result["success"] and result["max_reward"] == 4
        assert task.success()  # still held by the left gripper at the end
    finally:
        task.close()


def test_expert_inserts_the_peg():
    """Slow-ish (about 1.5 s): one full seeded expert episode."""
    task, expert = make_task("aloha_insertion"), make_expert("aloha_insertion")
    try:
        result = run_episode(task, expert, seed=2)
        assert result["success"] and result["max_reward"] == 4
    finally:
        task.close()


def test_expert_plan_is_reproducible():
    task, expert = make_task("aloha_transfer_cube"), make_expert("aloha_transfer_cube")
    try:
        task.reset(3)
        expert.reset(task, 3)
        first = expert.plan.copy()
        task.reset(3)
        expert.reset(task, 3)
        assert np.array_equal(first, expert.plan)
        assert first.shape == (task.max_steps, 16)
        assert np.allclose(first[:, 7], -first[:, 6]) and np.allclose(first[:, 15], -first[:, 14])
    finally:
        task.close()
