"""Forward kinematics (pinocchio) against hand-computed FK of the planar-arm fixture URDF."""
import os

import numpy as np
import pytest

from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.kinematics import Kinematics, KinematicsError, chunk_path, parse_mimics

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "planar_arm")
URDF = os.path.join(FIXTURE, "planar_arm.urdf")
LINKS = ["tool", "finger_left_link", "finger_right_link"]
L1, L2, SHOULDER_Z = 0.5, 0.3, 0.1


def hand_fk(q1, q2, d):
    """The fixture by hand, in base_link: tool, left finger (d along the tool's y), right finger
    (mimic: -1.5 d + 0.005)."""
    a = q1 + q2
    tool = np.array([L1 * np.cos(q1) + L2 * np.cos(a), L1 * np.sin(q1) + L2 * np.sin(a), SHOULDER_Z])
    y_axis = np.array([-np.sin(a), np.cos(a), 0.0])
    return np.stack([tool, tool + d * y_axis, tool + (-1.5 * d + 0.005) * y_axis])


@pytest.fixture(scope="module")
def kin():
    return Kinematics(URDF, LINKS, "base_link")


def test_joint_tables(kin):
    assert kin.joint_names == ("shoulder", "elbow", "finger_left")
    assert kin.mimic_names == ("finger_right",)
    assert kin.root_link == "world" and kin.base_link == "base_link"
    assert parse_mimics(open(URDF).read())["finger_right"].multiplier == -1.5


def test_chunk_matches_hand_fk_in_any_joint_order(kin):
    rng = np.random.default_rng(3)
    q = np.column_stack([rng.uniform(-3, 3, 7), rng.uniform(-6, 6, 7), rng.uniform(0, 0.04, 7)])  # (H, 3)
    expected = np.stack([hand_fk(*row) for row in q])  # (H, E, 3)
    got = kin.fk(["finger_left", "shoulder", "elbow"], q[:, [2, 0, 1]])
    assert got.shape == (7, 3, 3)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_continuous_joint_wraps(kin):
    a = kin.fk(["shoulder", "elbow", "finger_left"], [0.3, 5.0, 0.01])
    b = kin.fk(["shoulder", "elbow", "finger_left"], [0.3, 5.0 - 2 * np.pi, 0.01])
    np.testing.assert_allclose(a, b, atol=1e-12)
    np.testing.assert_allclose(a[0], hand_fk(0.3, 5.0, 0.01), atol=1e-12)


def test_value_given_for_mimic_joint_is_ignored(kin):
    names = ["shoulder", "elbow", "finger_left", "finger_right"]
    a = kin.fk(names, [0.1, 0.2, 0.03, 0.0])
    b = kin.fk(names, [0.1, 0.2, 0.03, 0.01])
    np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(a[0, 2], hand_fk(0.1, 0.2, 0.03)[2], atol=1e-12)


def test_root_frame_includes_the_mount():
    kin = Kinematics(URDF, ["tool"])  # base_link defaults to the URDF root ("world")
    got = kin.fk(["shoulder", "elbow", "finger_left"], [0.0, 0.0, 0.0])[0, 0]
    # base_link sits at (1, 0, 0.2) turned 90 deg about z: the tool's (0.8, 0, 0.1) becomes (1, 0.8, 0.3)
    np.testing.assert_allclose(got, [1.0, 0.8, 0.3], atol=1e-12)


def test_defaults_fill_missing_joints(kin):
    got = kin.fk(["shoulder"], [[0.5], [0.6]], defaults={"elbow": 0.2, "finger_left": 0.01})
    np.testing.assert_allclose(got[1], hand_fk(0.6, 0.2, 0.01), atol=1e-12)
    got = kin.fk(["elbow"], [0.4], defaults=np.array([0.1, 9.0, 0.02]))  # given values win over defaults
    np.testing.assert_allclose(got[0], hand_fk(0.1, 0.4, 0.02), atol=1e-12)


def test_errors_name_the_problem(kin):
    with pytest.raises(KinematicsError, match=r"unknown joints \['wrist'\]"):
        kin.fk(["shoulder", "elbow", "finger_left", "wrist"], [0, 0, 0, 0])
    assert kin.fk(["shoulder", "elbow", "finger_left", "wrist"], [0, 0, 0, 0], strict=False).shape == (1, 3, 3)
    with pytest.raises(KinematicsError, match=r"no positions for joints \['finger_left'\]"):
        kin.fk(["shoulder", "elbow"], [0, 0])
    with pytest.raises(KinematicsError, match=r"non-finite positions for joints \['elbow'\]"):
        kin.fk(["shoulder", "elbow", "finger_left"], [0, np.nan, 0])
    with pytest.raises(KinematicsError, match="3 joint names for positions of shape"):
        kin.fk(["shoulder", "elbow", "finger_left"], [[0, 0]])
    with pytest.raises(KinematicsError, match="unknown link 'gripper_tip'.*finger_left_link"):
        Kinematics(URDF, ["gripper_tip"])
    with pytest.raises(KinematicsError, match="unknown link 'base'"):
        Kinematics(URDF, ["tool"], "base")
    with pytest.raises(KinematicsError, match="does not exist"):
        Kinematics("/no/such/robot.urdf", ["tool"])


def test_bad_urdfs(tmp_path):
    bad = tmp_path / "bad.urdf"
    bad.write_text("<robot name='x'><link name='a'>")
    with pytest.raises(KinematicsError, match="bad.urdf: not valid XML"):
        Kinematics(str(bad), ["a"])
    cyc = tmp_path / "cycle.urdf"
    cyc.write_text(open(URDF).read().replace(
        '<joint name="finger_left" type="prismatic">',
        '<joint name="finger_left" type="prismatic">\n    <mimic joint="finger_right"/>'))
    with pytest.raises(KinematicsError, match="form a cycle"):
        Kinematics(str(cyc), ["tool"])


def test_neutral_is_inside_the_limits(tmp_path):
    shifted = tmp_path / "shifted.urdf"
    shifted.write_text(open(URDF).read().replace('lower="0.0" upper="0.04"', 'lower="0.01" upper="0.04"'))
    kin = Kinematics(str(shifted), ["tool"])
    np.testing.assert_allclose(kin.neutral(), [0.0, 0.0, 0.01])


def test_chunk_path_maps_slots_to_joints():
    spec = load_embodiment(os.path.join(FIXTURE, "adapter.yaml"))
    kin = Kinematics(URDF, LINKS, "base_link")
    values = np.array([[0.1, 0.2, 0.01], [0.2, 0.3, 0.02], [0.3, 0.4, 0.03]], dtype=np.float32)
    expected = np.stack([hand_fk(*row) for row in values.astype(np.float64)])
    np.testing.assert_allclose(chunk_path(kin, spec, values), expected, atol=1e-7)
    with pytest.raises(ValueError, match="expected 3 slots"):
        chunk_path(kin, spec, values[:, :2])


def test_no_links_and_root_link():
    from kairos_ros.core.kinematics import urdf_root_link

    kin = Kinematics(URDF, [])
    assert kin.fk(["shoulder", "elbow", "finger_left"], [[0, 0, 0], [1, 1, 0]]).shape == (2, 0, 3)
    assert urdf_root_link(open(URDF).read()) == "world"
    with pytest.raises(KinematicsError, match=r"expected one root link, found \['a', 'b'\]"):
        urdf_root_link("<robot name='x'><link name='a'/><link name='b'/></robot>")
