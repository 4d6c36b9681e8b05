"""panda_pick_block: the scene, its joints against the adapter's URDF, reproducible resets, position
control, rendering and the scripted expert (a few seconds in all)."""
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is first imported
pytest.importorskip("mujoco")
pytest.importorskip("gymnasium_robotics")

from kairos_ros.lib.sim.panda import HOME, PandaPickBlock  # noqa: E402
from kairos_ros.lib.sim.panda_expert import PickBlockExpert  # noqa: E402
from kairos_ros.lib.sim.registry import make_expert, make_task  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def task():
    t = make_task("panda_pick_block")
    yield t
    t.close()


def urdf_joints(path):
    """(name, lower, upper) of the movable joints, in file order."""
    out = []
    for joint in ET.parse(path).getroot().iter("joint"):
        if joint.get("type") in ("revolute", "prismatic"):
            limit = joint.find("limit")
            out.append((joint.get("name"), float(limit.get("lower")), float(limit.get("upper"))))
    return out


def test_registry_and_info(task):
    assert isinstance(task, PandaPickBlock)
    assert isinstance(make_expert("panda_pick_block"), PickBlockExpert)
    info = task.info
    assert info.name == "panda_pick_block" and info.embodiment == "franka_panda"
    # config/franka_panda.yaml: camera_topics ["/cameras/head/image_raw"]
    assert info.cameras == ("head",)
    assert info.control_period == pytest.approx(0.02)
    assert info.episode_length > 0 and info.instruction


def test_joints_and_limits_match_the_adapter_urdf(task):
    joints = urdf_joints(os.path.join(ROOT, "urdf_adapters", "franka_panda", "robot.urdf"))
    assert task.joint_names == [name for name, _, _ in joints]
    np.testing.assert_allclose(task.lower, [lo for _, lo, _ in joints], atol=1e-7)
    np.testing.assert_allclose(task.upper, [hi for _, _, hi in joints], atol=1e-7)
    q, v = task.joint_state()
    assert q.shape == v.shape == (9,)


def rollout(task, seed, steps=15):
    task.reset(seed)
    rng = np.random.default_rng(100 + seed)
    for _ in range(steps):
        q, _ = task.joint_state()
        task.step(q + rng.normal(0.0, 0.05, q.shape))
    return task.data.qpos.copy(), task.data.qvel.copy(), task.time


def test_reset_is_reproducible_bit_for_bit(task):
    task.reset(7)
    block7 = task.block_pose()[0]
    a = rollout(task, 7)
    b = rollout(task, 7)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    task.reset(8)
    assert not np.array_equal(task.block_pose()[0], block7)
    task.reset(7)
    assert np.array_equal(task.block_pose()[0], block7)
    assert task.time == 0.0


def test_position_targets_move_the_joints(task):
    task.reset(0)
    target = np.concatenate([HOME, [0.04, 0.04]])
    target[0] += 0.3
    target[3] -= 0.2
    target[7] = 0.01
    target[8] = 0.04  # the mimic finger's own target is ignored
    for _ in range(int(1.0 / task.info.control_period)):
        task.step(target)
    q, v = task.joint_state()
    np.testing.assert_allclose(q[:7], target[:7], atol=0.02)
    assert q[7] == pytest.approx(0.01, abs=0.003)
    assert q[8] == pytest.approx(q[7], abs=0.003)
    assert task.time == pytest.approx(1.0)
    with pytest.raises(ValueError):
        task.step(np.zeros(3))


def test_targets_beyond_the_limits_are_clipped(task):
    task.reset(0)
    target = np.concatenate([HOME, [0.04, 0.04]])
    target[0] = 10.0
    target[7] = -1.0
    for _ in range(200):
        task.step(target)
    q, _ = task.joint_state()
    assert np.all(q >= task.lower - 0.01) and np.all(q <= task.upper + 0.01)
    assert q[0] == pytest.approx(task.upper[0], abs=0.02)  # at its upper limit, not beyond
    assert q[7] == pytest.approx(0.0, abs=0.002)


@pytest.mark.parametrize("camera", ["head", "wrist"])
def test_render(task, camera):
    task.reset(1)
    img = task.render(camera, 128, 96)
    assert img.shape == (96, 128, 3) and img.dtype == np.uint8
    assert img.std() > 10  # not blank
    head = task.render(camera, 128, 96)
    assert np.array_equal(img, head)  # the same state draws the same frame


def test_render_unknown_camera(task):
    with pytest.raises(ValueError):
        task.render("nope", 32, 32)


@pytest.mark.parametrize("seed", [0, 1])
def test_expert_picks_the_block(task, seed):
    expert = PickBlockExpert()
    task.reset(seed)
    expert.reset(task, seed)
    assert not task.success() and task.reward() == 0.0
    succeeded = False
    while task.time < 4.5 and not succeeded:
        task.step(expert.act(task))
        succeeded = task.success()
    assert succeeded, f"seed {seed}: lift {task.lift():.3f} m, reward {task.reward()}"
    assert task.lift() > 0.1 and task.reward() == 3.0
