"""shadow_hand_grasp: the scene, its joints against the adapter's URDF, reproducible resets, position
control (J0 followers), rendering and the scripted expert (a few seconds in all)."""
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is first imported
pytest.importorskip("mujoco")
pytest.importorskip("gymnasium_robotics")

from kairos_ros.lib.sim.hand import ShadowHandGrasp  # noqa: E402
from kairos_ros.lib.sim.hand_expert import GraspExpert  # noqa: E402
from kairos_ros.lib.sim.registry import make_expert, make_task  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def task():
    t = make_task("shadow_hand_grasp")
    yield t
    t.close()


def urdf_joints(path):
    """(name, lower, upper, mimic leader or None) of the movable joints, in file order."""
    out = []
    for joint in ET.parse(path).getroot().iter("joint"):
        if joint.get("type") in ("revolute", "prismatic"):
            limit, mimic = joint.find("limit"), joint.find("mimic")
            out.append((joint.get("name"), float(limit.get("lower")), float(limit.get("upper")),
                        None if mimic is None else mimic.get("joint")))
    return out


def index(task, suffix):
    return task.joint_names.index(f"robot0_{suffix}")


def test_registry_and_info(task):
    assert isinstance(task, ShadowHandGrasp)
    assert isinstance(make_expert("shadow_hand_grasp"), GraspExpert)
    info = task.info
    assert info.name == "shadow_hand_grasp" and info.embodiment == "shadow_hand"
    # config/shadow_hand.yaml: camera_topics ["/cameras/head/image_raw"]
    assert info.cameras == ("head",)
    assert info.control_period == pytest.approx(0.02)
    assert info.episode_length > 0 and info.instruction


def test_joints_and_limits_match_the_adapter_urdf(task):
    joints = urdf_joints(os.path.join(ROOT, "urdf_adapters", "shadow_hand", "robot.urdf"))
    assert task.joint_names == [j[0] for j in joints]
    assert len(task.joint_names) == 24
    np.testing.assert_allclose(task.lower, [j[1] for j in joints], atol=1e-7)
    np.testing.assert_allclose(task.upper, [j[2] for j in joints], atol=1e-7)
    followers = sorted(task.joint_names[i] for i in task.followers)
    assert followers == sorted(j[0] for j in joints if j[3] is not None)
    q, v = task.joint_state()
    assert q.shape == v.shape == (24,)


def rollout(task, seed, steps=15):
    task.reset(seed)
    rng = np.random.default_rng(100 + seed)
    for _ in range(steps):
        q, _ = task.joint_state()
        task.step(q + rng.normal(0.0, 0.1, q.shape))
    return task.data.qpos.copy(), task.data.qvel.copy(), task.time


def test_reset_is_reproducible_bit_for_bit(task):
    task.reset(3)
    cube3 = task.object_pose()[0]
    a = rollout(task, 3)
    b = rollout(task, 3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    task.reset(4)
    assert not np.array_equal(task.object_pose()[0], cube3)
    task.reset(3)
    assert np.array_equal(task.object_pose()[0], cube3)
    assert task.time == 0.0 and not task.success()


def test_position_targets_move_the_joints(task):
    task.reset(0)
    target = task.open_targets()
    target[index(task, "WRJ0")] = -0.4
    target[index(task, "FFJ3")] = 0.2
    target[index(task, "THJ4")] = 0.8
    target[index(task, "FFJ0")] = 1.2  # a follower: ignored
    for _ in range(int(1.0 / task.info.control_period)):
        task.step(target)
    q, _ = task.joint_state()
    for name in ("FFJ3", "THJ4"):
        assert q[index(task, name)] == pytest.approx(target[index(task, name)], abs=0.06), name
    assert q[index(task, "WRJ0")] < -0.3  # the weak wrist actuator (kp 5) sags under the hand's weight
    assert abs(q[index(task, "FFJ0")]) < 0.1  # stays with FFJ1 (open)
    assert task.time == pytest.approx(1.0)
    # J1 drives its J0 through the tendon
    target[index(task, "MFJ1")] = 1.2
    for _ in range(50):
        task.step(target)
    q, _ = task.joint_state()
    assert q[index(task, "MFJ0")] > 0.5
    with pytest.raises(ValueError):
        task.step(np.zeros(20))


def test_targets_beyond_the_limits_are_clipped(task):
    task.reset(0)
    target = np.full(24, 10.0)
    for _ in range(50):
        task.step(target)
    q, _ = task.joint_state()
    assert np.all(q >= task.lower - 0.05) and np.all(q <= task.upper + 0.05)
    assert np.array_equal(task.data.ctrl, task.model.actuator_ctrlrange[:, 1])


def test_render(task):
    task.reset(1)
    img = task.render("head", 128, 96)
    assert img.shape == (96, 128, 3) and img.dtype == np.uint8
    assert img.std() > 10  # not blank
    assert np.array_equal(img, task.render("head", 128, 96))
    with pytest.raises(ValueError):
        task.render("wrist", 32, 32)


@pytest.mark.parametrize("seed", [0, 1])
def test_expert_grasps_the_cube(task, seed):
    expert = GraspExpert()
    task.reset(seed)
    expert.reset(task, seed)
    assert not task.success() and task.reward() < 0.6  # the cube rests on the open hand
    while task.time < 3.0:
        task.step(expert.act(task))
    assert task.success(), f"seed {seed}: touching {sorted(task.touching())}, held {task.held_for():.2f} s"
    assert task.reward() >= 0.6 and task.held_for() >= 0.5
