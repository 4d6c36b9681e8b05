"""Unit tests for kairos_ros.core.embodiment: bundled robots, aliases, adapter.yaml + URDF parsing,
limit overrides, named errors, slot mapping (including the gripper slot_map)."""
import os

import numpy as np
import pytest
import yaml

from kairos_ros.core.embodiment import (EmbodimentSpec, list_aliases, list_embodiments, load_embodiment,
                                        parse_adapter, slots_to_joints, state_to_slots)

BUNDLED = {"franka_panda": ("single_arm", 8, "/arm_controller/joint_trajectory"),
           "aloha": ("dual_arm", 14, "/dual_arm_controller/joint_trajectory"),
           "shadow_hand": ("dexterous_hand", 20, "/hand_controller/joint_trajectory")}


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_embodiments_load_by_name_and_alias(name):
    alias, dim, topic = BUNDLED[name]
    spec = load_embodiment(name)
    assert isinstance(spec, EmbodimentSpec) and spec.name == name and spec.aliases == (alias,)
    assert load_embodiment(alias).joint_names == spec.joint_names and load_embodiment(alias).name == name
    assert spec.dim == dim == len(spec.joint_names) == spec.lower.shape[0] == spec.max_velocity.shape[0]
    assert spec.max_acceleration.shape == (dim,) and np.all(spec.max_acceleration > 0)
    assert spec.controller_topic == topic
    assert np.all(spec.lower < spec.upper) and np.all(spec.max_velocity > 0)
    assert len(set(spec.joint_names)) == dim and len(set(spec.slot_names)) == dim
    assert spec.control_period > 0 and spec.default_step_period > 0
    assert os.path.isabs(spec.path) and spec.path.endswith(os.path.join(name, "adapter.yaml"))
    assert os.path.isabs(spec.urdf_path) and spec.urdf_path.endswith(os.path.join(name, "robot.urdf"))
    assert not set(spec.ignore_joints) & set(spec.joint_names)
    assert set(spec.ignore_joints) <= set(spec.mimic)  # the undriven joints are URDF mimics


def test_bundled_details():
    arm = load_embodiment("franka_panda")
    assert arm.joint_names[0] == "robot_panda0_joint1" and arm.slot_names[-1] == "arm.gripper"
    assert arm.ignore_joints == ("robot_panda0_finger_joint2",)
    assert arm.mimic["robot_panda0_finger_joint2"] == ("robot_panda0_finger_joint1", 1.0, 0.0)
    # limits from the generated URDF (the kitchen model's joint 4 stops at -0.4)
    assert arm.lower[3] == -3.0718 and arm.upper[3] == -0.4 and arm.upper[7] == 0.04
    assert arm.max_velocity[0] == 2.175 and arm.max_velocity[6] == 2.61 and arm.max_velocity[7] == 0.2
    np.testing.assert_array_equal(arm.max_acceleration, [15, 7.5, 10, 12.5, 15, 20, 20, 1.0])  # Franka's
    assert arm.base_link == "panda0_link0" and arm.end_effectors == ("end_effector",)
    dual = load_embodiment("aloha")
    assert dual.slot_names[:7] == tuple(f"left_arm.joint_{i}" for i in range(1, 7)) + ("left_arm.gripper",)
    assert dual.joint_names[6] == "vx300s_left_left_finger" and dual.joint_names[7] == "vx300s_right_waist"
    assert dual.ignore_joints == ("vx300s_left_right_finger", "vx300s_right_right_finger")
    assert dual.mimic["vx300s_right_right_finger"] == ("vx300s_right_left_finger", -1.0, 0.0)
    assert dual.end_effectors == ("vx300s_left_gripper_link", "vx300s_right_gripper_link")
    assert dual.base_link == "world" and dual.max_velocity[0] == pytest.approx(np.pi, abs=1e-5)
    hand = load_embodiment("shadow_hand")
    assert hand.ignore_joints == ("robot0_FFJ0", "robot0_MFJ0", "robot0_RFJ0", "robot0_LFJ0")
    assert hand.slot_names[:3] == ("hand.wrj1", "hand.wrj0", "hand.ffj3") and hand.control_period == 0.01
    assert hand.mimic["robot0_FFJ0"][0] == "robot0_FFJ1" and hand.mimic["robot0_FFJ0"][1] == pytest.approx(0.00805 / 0.00705)
    assert hand.end_effectors == tuple(f"robot0_S_{f}tip" for f in ("ff", "mf", "rf", "lf", "th"))


def test_gripper_slot_maps_onto_finger_travel():
    dual = load_embodiment("dual_arm")
    k = dual.slot_names.index("left_arm.gripper")
    values = np.zeros((1, 14))
    values[0, k] = 1.0
    assert slots_to_joints(dual, values)[0, k] == pytest.approx(0.057)  # 1 = open = the finger's upper limit (m)
    assert slots_to_joints(dual, np.zeros((1, 14)))[0, k] == pytest.approx(0.021)  # 0 = closed
    assert state_to_slots(dual, np.where(np.arange(14) == k, 0.039, 0.0))[k] == pytest.approx(0.5)


def test_list_embodiments_and_aliases():
    assert set(BUNDLED) <= set(list_embodiments())
    assert {a: n for n, (a, _, _) in BUNDLED.items()}.items() <= list_aliases().items()


def test_unknown_name_lists_known_and_aliases():
    with pytest.raises(ValueError, match="unknown embodiment 'octopus'") as info:
        load_embodiment("octopus")
    for name, (alias, _, _) in BUNDLED.items():
        assert name in str(info.value) and f"{alias} = {name}" in str(info.value)
    with pytest.raises(ValueError, match="embodiment name is empty"):
        load_embodiment("")


# -- custom adapters: a toy two-joint robot ------------------------------------------------------

URDF = """<?xml version="1.0"?>
<robot name="toy">
  <link name="base"/><link name="l1"/><link name="finger"/><link name="finger2"/><link name="tip"/>
  <joint name="a" type="revolute"><parent link="base"/><child link="l1"/>
    <axis xyz="0 0 1"/><limit lower="-1" upper="1" effort="5" velocity="2"/></joint>
  <joint name="b" type="prismatic"><parent link="l1"/><child link="finger"/>
    <axis xyz="0 1 0"/><limit lower="0" upper="0.5" effort="5" velocity="0.5"/></joint>
  <joint name="b_mimic" type="prismatic"><parent link="l1"/><child link="finger2"/>
    <axis xyz="0 -1 0"/><limit lower="0" upper="0.5" effort="5" velocity="0.5"/>
    <mimic joint="b" multiplier="1" offset="0"/></joint>
  <joint name="tip_fixed" type="fixed"><parent link="l1"/><child link="tip"/></joint>
</robot>
"""


def adapter(**overrides):
    data = {
        "name": "toy", "description": "two joints", "urdf": "robot.urdf", "end_effectors": ["tip"],
        "max_acceleration": 5.0,
        "joints": [{"name": "a", "slot": "arm.joint_1"},
                   {"name": "b", "slot": "arm.gripper", "slot_map": [0.0, 0.5]}],
        "ignore_joints": ["b_mimic"], "controller_topic": "/toy/joint_trajectory",
        "control_period": 0.01, "default_step_period": 0.04,
    }
    data.update(overrides)
    return data


def write(tmp_path, data, name="toy", urdf=URDF):
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "robot.urdf").write_text(urdf)
    path = folder / "adapter.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def test_load_by_path_by_folder_and_search_dirs(tmp_path):
    path = write(tmp_path, adapter())
    for ref in (path, os.path.dirname(path)):
        spec = load_embodiment(ref)
        assert spec.joint_names == ("a", "b") and spec.slot_names == ("arm.joint_1", "arm.gripper")
        np.testing.assert_array_equal(spec.lower, [-1.0, 0.0])  # from the URDF
        np.testing.assert_array_equal(spec.upper, [1.0, 0.5])
        np.testing.assert_array_equal(spec.max_velocity, [2.0, 0.5])
        np.testing.assert_array_equal(spec.max_acceleration, [5.0, 5.0])
        assert spec.ignore_joints == ("b_mimic",) and spec.default_step_period == 0.04
        assert spec.base_link == "base" and spec.end_effectors == ("tip",)  # base: the URDF root
        assert spec.urdf_path == str(tmp_path / "toy" / "robot.urdf") and spec.mimic == {"b_mimic": ("b", 1.0, 0.0)}
    assert load_embodiment("toy", search_dirs=[str(tmp_path)]).name == "toy"
    with pytest.raises(ValueError, match="unknown embodiment"):
        load_embodiment(str(tmp_path / "nowhere" / "adapter.yaml"))


def test_aliases_resolve_in_search_dirs(tmp_path):
    write(tmp_path, adapter(aliases=["little_arm"]))
    assert load_embodiment("little_arm", search_dirs=[str(tmp_path)]).name == "toy"
    assert list_aliases([str(tmp_path)]) == {"little_arm": "toy"}
    write(tmp_path, adapter(name="other", aliases=["little_arm"]), name="other")
    with pytest.raises(ValueError, match="alias 'little_arm' of 'toy' is already the name or an alias of 'other'"):
        load_embodiment("toy", search_dirs=[str(tmp_path)])


def test_folder_name_must_match(tmp_path):
    write(tmp_path, adapter(name="toy2"))
    with pytest.raises(ValueError, match="name 'toy2' must equal its folder name 'toy'"):
        load_embodiment("toy", search_dirs=[str(tmp_path)])


def test_overrides_narrow_the_urdf_limits(tmp_path):
    data = adapter()
    data["joints"][0].update(lower=-0.5, upper=0.25, max_velocity=1.5, max_acceleration=3.0)
    spec = parse_adapter(write(tmp_path, data))
    assert spec.lower[0] == -0.5 and spec.upper[0] == 0.25 and spec.max_velocity[0] == 1.5
    np.testing.assert_array_equal(spec.max_acceleration, [3.0, 5.0])


def test_defaults_for_optional_keys(tmp_path):
    data = adapter()
    del data["description"], data["end_effectors"]
    data["joints"] = [dict(j, max_acceleration=1.0) for j in data["joints"]]
    del data["max_acceleration"]  # every joint gives its own
    spec = parse_adapter(write(tmp_path, data))
    assert spec.description == "" and spec.end_effectors == () and spec.aliases == ()


def joint_override(i, **kv):
    data = adapter()
    data["joints"][i].update(kv)
    return data


@pytest.mark.parametrize("data,msg", [
    (joint_override(1, lower=0.5), "joint 'b': lower 0.5 must be < upper 0.5"),
    (joint_override(0, lower=0.5, upper=0.25), "joint 'a': lower 0.5 must be < upper 0.25"),
    (joint_override(0, lower=-2.0), r"joint 'a': limits \[-2.0, 1.0\] exceed the URDF's \[-1.0, 1.0\]"),
    (joint_override(0, max_velocity=0), "joint 'a': max_velocity 0 must be > 0"),
    (joint_override(1, max_velocity=-1.0), "joint 'b': max_velocity -1.0 must be > 0"),
    (joint_override(0, max_velocity=3.0), "joint 'a': max_velocity 3.0 exceeds the URDF's 2.0"),
    (joint_override(0, max_acceleration=0), "joint 'a': max_acceleration 0 must be > 0"),
    (joint_override(0, max_acceleration="fast"), "joint 'a': max_acceleration 'fast' is not a number"),
    (joint_override(1, slot_map=[0.1]), r"joint 'b': slot_map \[0.1\] must be \[position at 0, position at 1\]"),
    (joint_override(1, slot_map=[0.2, 0.2]), "joint 'b': slot_map .* maps every slot value to one position"),
    (joint_override(0, speed=1), r"joint 'a': unknown keys \['speed'\]"),
    (joint_override(0, name="nope"), r"joint 'nope' is not a movable joint of .*robot.urdf \(movable: \['a', 'b', 'b_mimic'\]\)"),
    (joint_override(0, name="tip_fixed"), "joint 'tip_fixed' is not a movable joint"),
    (joint_override(1, name="a"), r"duplicate joint names \['a'\]"),
    (joint_override(1, slot="arm.joint_1"), r"duplicate slot names \['arm.joint_1'\]"),
    (adapter(max_acceleration=None), "joint 'a': no acceleration limit: set max_acceleration"),
    (adapter(max_acceleration=-2.0), "max_acceleration -2.0 must be > 0"),
    (adapter(ignore_joints=[]), r"URDF joints \['b_mimic'\] are neither in 'joints' nor in 'ignore_joints'"),
    (adapter(ignore_joints=["b_mimic", "a"]), r"joints \['a'\] are both driven and in ignore_joints"),
    (adapter(ignore_joints=["b_mimic", "ghost"]), r"ignore_joints \['ghost'\] are not joints of"),
    (adapter(end_effectors=["tip", "hand"]), r"links \['hand'\] \(base_link / end_effectors\) are not in"),
    (adapter(base_link="floor"), r"links \['floor'\]"),
    (adapter(aliases="toy_alias"), "aliases 'toy_alias' must be a list of names"),
    (adapter(urdf="missing.urdf"), "urdf: URDF '.*missing.urdf' does not exist"),
    (adapter(control_period=0), "control_period 0 must be > 0"),
    (adapter(default_step_period=-0.1), "default_step_period -0.1 must be > 0"),
    (adapter(joints=[]), "'joints' must be a non-empty list"),
    (adapter(joints={"a": 1}), "'joints' must be a non-empty list"),
    (adapter(joints=[{"name": "a"}]), r"joints\[0\] lacks 'slot'"),
    (adapter(joints=["a"]), r"joints\[0\] lacks 'name'"),
])
def test_parse_errors(tmp_path, data, msg):
    path = write(tmp_path, data)
    with pytest.raises(ValueError, match=msg) as info:
        parse_adapter(path)
    assert str(info.value).startswith(path + ":")


@pytest.mark.parametrize("urdf,msg", [
    ("<robot><link/></robot>", "needs named <link> elements"),
    ("<robot", "not valid XML"),
    ("<robo name='x'/>", "root element is <robo>, not <robot>"),
    (URDF.replace('lower="-1" upper="1" ', 'lower="low" upper="1" '), "joint 'a' lower = 'low' is not a number"),
    (URDF.replace('<limit lower="-1" upper="1" effort="5" velocity="2"/>', ""), "revolute joint 'a' has no <limit>"),
    (URDF.replace('<mimic joint="b"', '<mimic joint="c"'), "joint 'b_mimic' mimics unknown joint 'c'"),
    (URDF.replace('type="fixed"', 'type="weld"'), "joint 'tip_fixed' has type 'weld'"),
    (URDF.replace('<child link="tip"/>', '<child link="nowhere"/>'), "joint 'tip_fixed' must name an existing"),
])
def test_bad_urdf_is_named(tmp_path, urdf, msg):
    with pytest.raises(ValueError, match=msg):
        parse_adapter(write(tmp_path, adapter(), urdf=urdf))


def test_urdf_without_velocity_needs_one_in_yaml(tmp_path):
    urdf = URDF.replace('effort="5" velocity="2"', 'effort="5"')
    with pytest.raises(ValueError, match="joint 'a': max_velocity 0.0 must be > 0 \\(the URDF gives none"):
        parse_adapter(write(tmp_path, adapter(), urdf=urdf))
    spec = parse_adapter(write(tmp_path, joint_override(0, max_velocity=1.25), urdf=urdf))
    assert spec.max_velocity[0] == 1.25


@pytest.mark.parametrize("missing", ["name", "urdf", "joints", "controller_topic", "control_period",
                                     "default_step_period"])
def test_missing_top_level_keys(tmp_path, missing):
    data = adapter()
    del data[missing]
    with pytest.raises(ValueError, match=rf"missing keys \['{missing}'\]"):
        parse_adapter(write(tmp_path, data))


def test_not_a_mapping(tmp_path):
    with pytest.raises(ValueError, match="not a mapping"):
        parse_adapter(write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(ValueError, match="not a mapping"):
        parse_adapter(write(tmp_path, ""))


# -- slot mapping --------------------------------------------------------------------------------

def test_state_to_slots_shapes_and_dtype():
    spec = load_embodiment("dual_arm")
    q = np.linspace(-1, 1, 14)
    s = state_to_slots(spec, q)
    assert s.shape == (14,) and s.dtype == np.float32
    np.testing.assert_allclose(s, (q - spec.slot_offset) / spec.slot_scale, atol=1e-6)
    arm = [i for i, n in enumerate(spec.slot_names) if not n.endswith("gripper")]
    np.testing.assert_allclose(s[arm], q[arm], atol=1e-7)  # arm joints: slot = joint position
    batch = state_to_slots(spec, np.tile(q, (5, 1)))
    assert batch.shape == (5, 14) and batch.dtype == np.float32
    with pytest.raises(ValueError, match="expected 14 joint positions for 'aloha', got 13"):
        state_to_slots(spec, q[:13])


def test_slots_to_joints_shapes_copy_and_round_trip():
    spec = load_embodiment("single_arm")
    values = np.random.default_rng(0).uniform(-1, 1, (6, 8)).astype(np.float32)
    q = slots_to_joints(spec, values)
    assert q.shape == (6, 8) and q.dtype == np.float64
    np.testing.assert_array_equal(q[:, :7], values[:, :7].astype(np.float64))
    np.testing.assert_allclose(q[:, 7], 0.04 * values[:, 7].astype(np.float64))  # gripper: 0 .. 0.04 m
    f64 = values.astype(np.float64)
    out = slots_to_joints(spec, f64)
    out[0, 0] = 123.0
    assert f64[0, 0] != 123.0  # a new array, not a view of the caller's data
    np.testing.assert_allclose(state_to_slots(spec, q), values, atol=1e-6)
    with pytest.raises(ValueError, match="expected 8 slots for 'franka_panda', got 14"):
        slots_to_joints(spec, np.zeros((2, 14)))
