"""Forward kinematics on every bundled robot's URDF (urdf_adapters/<robot>/robot.urdf)."""
import numpy as np
import pytest

from kairos_ros.core.embodiment import list_embodiments, load_embodiment, state_to_slots
from kairos_ros.core.kinematics import Kinematics, chunk_path

# end effectors per robot kind: two grippers, one gripper, five fingertips
EXPECTED_END_EFFECTORS = {"aloha": 2, "franka_panda": 1, "shadow_hand": 5}


def test_every_bundled_robot_is_covered():
    assert set(list_embodiments()) == set(EXPECTED_END_EFFECTORS)


@pytest.mark.parametrize("robot", sorted(EXPECTED_END_EFFECTORS))
def test_zero_configuration(robot):
    spec = load_embodiment(robot)
    assert len(spec.end_effectors) == EXPECTED_END_EFFECTORS[robot]
    kin = Kinematics(spec.urdf_path, spec.end_effectors, spec.base_link)
    assert kin.frames == tuple(spec.end_effectors) and kin.base_link == spec.base_link
    assert set(spec.joint_names) <= set(kin.joint_names)  # every driven joint is an independent URDF joint
    assert set(kin.mimic_names) == set(spec.mimic)  # the same mimic joints as the embodiment's URDF reader
    zero = kin.positions(np.zeros((1, len(kin.joint_names))))  # (1, E, 3)
    assert zero.shape == (1, len(spec.end_effectors), 3) and np.all(np.isfinite(zero))
    if zero.shape[1] > 1:  # distinct end effectors are at distinct places
        gaps = np.linalg.norm(zero[0, :, None] - zero[0, None, :], axis=-1)
        assert gaps[~np.eye(len(gaps), dtype=bool)].min() > 0.005, gaps
    # a chunk holding the zero state (through the slot mapping, grippers included) stays there
    values = np.tile(state_to_slots(spec, np.zeros(len(spec.joint_names))), (4, 1))
    path = chunk_path(kin, spec, values, np.zeros(len(kin.joint_names)))
    np.testing.assert_allclose(path, np.repeat(zero, 4, axis=0), atol=1e-6)
