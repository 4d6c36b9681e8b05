"""Unified action space: exact RoboTwin and LIBERO converters, normalisation with clamping."""
import json

import numpy as np
import pytest

from kairos_ros.core.action_space import (LIBERO_STATE_SLOTS, ROBOTWIN_SLOTS, Normalizer, from_layout,
                                          libero_gripper_command, load_stats, to_layout)
from kairos_ros.core.embodiment import load_embodiment


def test_dual_arm_is_robotwin_order():
    spec = load_embodiment("dual_arm")
    values = np.arange(28, dtype=np.float32).reshape(2, 14)
    rt = to_layout(values, spec.slot_names, ROBOTWIN_SLOTS)
    assert np.array_equal(rt, values)  # the dual-arm example already uses RoboTwin's order
    assert ROBOTWIN_SLOTS[6] == "left_arm.gripper" and ROBOTWIN_SLOTS[13] == "right_arm.gripper"
    shuffled = list(reversed(spec.slot_names))
    back = from_layout(to_layout(values[:, ::-1], shuffled, ROBOTWIN_SLOTS), ROBOTWIN_SLOTS, shuffled)
    assert np.array_equal(back, values[:, ::-1])


def test_missing_slots_are_named():
    with pytest.raises(ValueError, match="arm.eef_x"):
        to_layout(np.zeros(8), load_embodiment("single_arm").slot_names, LIBERO_STATE_SLOTS)
    out = from_layout(np.ones(2), ["a.x", "a.y"], ["a.x", "a.y", "a.z"])
    assert out[:2].tolist() == [1.0, 1.0] and np.isnan(out[2])


def test_libero_gripper_is_sign_binarised():
    assert libero_gripper_command(np.array([-0.3, 0.0, 0.7])).tolist() == [-1.0, -1.0, 1.0]


@pytest.mark.parametrize("kind,a,b", [("zscore", [1.0, -2.0], [0.5, 2.0]), ("minmax", [-1.0, 0.0], [3.0, 10.0])])
def test_normalizer_round_trip_and_clamp(kind, a, b):
    n = Normalizer(kind, a, b)
    x = np.array([[0.3, 4.0], [2.0, -1.0]])
    assert np.allclose(n.denormalize(n.normalize(x)), x, atol=1e-6)
    assert np.all(np.abs(n.normalize(np.array([1e6, -1e6]))) == 5.0)
    if kind == "minmax":
        assert np.allclose(n.normalize(np.array([-1.0, 10.0])), [-1.0, 1.0], atol=1e-6)
    with pytest.raises(ValueError, match="'robust'"):
        Normalizer("robust", a, b)


def test_load_stats(tmp_path):
    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"action/default/global_mean": [0.0, 1.0], "action/default/global_std": [1.0, 2.0]}))
    n = load_stats(str(path), "zscore")
    assert np.allclose(n.normalize([1.0, 5.0]), [1.0, 2.0], atol=1e-6)
    with pytest.raises(ValueError, match="action/default/global_min"):
        load_stats(str(path), "minmax")
