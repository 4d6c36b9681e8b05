"""Unit tests for kairos_ros.core.embodiment: bundled adapters, parse errors, slot mapping."""
import os

import numpy as np
import pytest
import yaml

from kairos_ros.core.embodiment import (EmbodimentSpec, list_embodiments, load_embodiment, parse_adapter,
                                        slots_to_joints, state_to_slots)

BUNDLED = {"single_arm": (8, "/arm_controller/joint_trajectory"),
           "dual_arm": (14, "/dual_arm_controller/joint_trajectory"),
           "dexterous_hand": (20, "/hand_controller/joint_trajectory")}


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_embodiments_load(name):
    spec = load_embodiment(name)
    dim, topic = BUNDLED[name]
    assert isinstance(spec, EmbodimentSpec) and spec.name == name
    assert spec.dim == dim == len(spec.joint_names) == spec.lower.shape[0] == spec.max_velocity.shape[0]
    assert spec.controller_topic == topic
    assert np.all(spec.lower < spec.upper) and np.all(spec.max_velocity > 0)
    assert len(set(spec.joint_names)) == dim and len(set(spec.slot_names)) == dim
    assert spec.control_period > 0 and spec.default_step_period > 0
    assert os.path.isabs(spec.path) and spec.path.endswith(os.path.join(name, "adapter.yaml"))
    assert not set(spec.ignore_joints) & set(spec.joint_names)


def test_bundled_details():
    arm = load_embodiment("single_arm")
    assert arm.joint_names[0] == "panda_joint1" and arm.slot_names[-1] == "arm.gripper"
    assert arm.ignore_joints == ("panda_finger_joint2",)
    assert arm.lower[3] == -3.0718 and arm.upper[7] == 0.04 and arm.max_velocity[7] == 0.2
    dual = load_embodiment("dual_arm")
    assert dual.slot_names[:7] == tuple(f"left_arm.joint_{i}" for i in range(1, 7)) + ("left_arm.gripper",)
    assert dual.ignore_joints == ()
    hand = load_embodiment("dexterous_hand")
    assert hand.ignore_joints == ("rh_FFJ1", "rh_MFJ1", "rh_RFJ1", "rh_LFJ1") and hand.control_period == 0.01


def test_list_embodiments_includes_bundled():
    assert set(BUNDLED) <= set(list_embodiments())


def test_unknown_name_lists_known():
    with pytest.raises(ValueError, match="unknown embodiment 'octopus'") as info:
        load_embodiment("octopus")
    for name in BUNDLED:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="embodiment name is empty"):
        load_embodiment("")


# -- custom adapters -----------------------------------------------------------------------------

def adapter(**overrides):
    data = {
        "name": "toy", "description": "two joints",
        "joints": [{"name": "a", "slot": "arm.joint_1", "lower": -1.0, "upper": 1.0, "max_velocity": 2.0},
                   {"name": "b", "slot": "arm.gripper", "lower": 0.0, "upper": 0.5, "max_velocity": 0.5}],
        "ignore_joints": ["b_mimic"], "controller_topic": "/toy/joint_trajectory",
        "control_period": 0.01, "default_step_period": 0.04,
    }
    data.update(overrides)
    return data


def write(tmp_path, data, name="toy"):
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    path = folder / "adapter.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return str(path)


def test_load_by_path_by_folder_and_search_dirs(tmp_path):
    path = write(tmp_path, adapter())
    for ref in (path, os.path.dirname(path)):
        spec = load_embodiment(ref)
        assert spec.joint_names == ("a", "b") and spec.slot_names == ("arm.joint_1", "arm.gripper")
        np.testing.assert_array_equal(spec.upper, [1.0, 0.5])
        assert spec.ignore_joints == ("b_mimic",) and spec.default_step_period == 0.04
    assert load_embodiment("toy", search_dirs=[str(tmp_path)]).name == "toy"
    with pytest.raises(ValueError, match="unknown embodiment"):
        load_embodiment(str(tmp_path / "nowhere" / "adapter.yaml"))


def test_defaults_for_optional_keys(tmp_path):
    data = adapter()
    del data["description"], data["ignore_joints"]
    spec = parse_adapter(write(tmp_path, data))
    assert spec.description == "" and spec.ignore_joints == ()


def joint_override(i, **kv):
    data = adapter()
    data["joints"][i].update(kv)
    return data


@pytest.mark.parametrize("data,msg", [
    (joint_override(1, lower=0.5), "joint 'b': lower 0.5 must be < upper 0.5"),
    (joint_override(0, lower=2.0), "joint 'a': lower 2.0 must be < upper 1.0"),
    (joint_override(0, max_velocity=0), "joint 'a': max_velocity 0 must be > 0"),
    (joint_override(1, max_velocity=-1.0), "joint 'b': max_velocity -1.0 must be > 0"),
    (joint_override(1, name="a"), r"duplicate joint names \['a'\]"),
    (joint_override(1, slot="arm.joint_1"), r"duplicate slot names \['arm.joint_1'\]"),
    (adapter(control_period=0), "control_period 0 must be > 0"),
    (adapter(default_step_period=-0.1), "default_step_period -0.1 must be > 0"),
    (adapter(joints=[]), "'joints' must be a non-empty list"),
    (adapter(joints={"a": 1}), "'joints' must be a non-empty list"),
    (adapter(joints=[{"name": "a", "slot": "s", "lower": 0, "upper": 1}]), r"joints\[0\] lacks 'max_velocity'"),
    (adapter(joints=["a"]), r"joints\[0\] lacks 'name'"),
])
def test_parse_errors(tmp_path, data, msg):
    path = write(tmp_path, data)
    with pytest.raises(ValueError, match=msg) as info:
        parse_adapter(path)
    assert str(info.value).startswith(path + ":")


@pytest.mark.parametrize("missing", ["name", "joints", "controller_topic", "control_period", "default_step_period"])
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
    np.testing.assert_allclose(s, q, atol=1e-7)
    batch = state_to_slots(spec, np.tile(q, (5, 1)))
    assert batch.shape == (5, 14) and batch.dtype == np.float32
    with pytest.raises(ValueError, match="expected 14 joint positions for 'dual_arm', got 13"):
        state_to_slots(spec, q[:13])


def test_slots_to_joints_shapes_copy_and_round_trip():
    spec = load_embodiment("single_arm")
    values = np.random.default_rng(0).uniform(-1, 1, (6, 8)).astype(np.float32)
    q = slots_to_joints(spec, values)
    assert q.shape == (6, 8) and q.dtype == np.float64
    np.testing.assert_array_equal(q, values.astype(np.float64))
    f64 = values.astype(np.float64)
    out = slots_to_joints(spec, f64)
    out[0, 0] = 123.0
    assert f64[0, 0] != 123.0  # a copy, not a view of the caller's data
    np.testing.assert_allclose(state_to_slots(spec, q), values)
    with pytest.raises(ValueError, match="expected 8 slots for 'single_arm', got 14"):
        slots_to_joints(spec, np.zeros((2, 14)))
