"""Unit tests for kairos_ros.core.observation: history window and tile composition."""
import numpy as np
import pytest

from kairos_ros.core.image import ImageError
from kairos_ros.core.observation import ObservationHistory, compose, infer_tile
from kairos_ros.core.types import JointStateData, ObservationData


def obs(stamp, tag=0):
    js = JointStateData(stamp, ["j"], np.array([stamp]))
    return ObservationData(stamp, ["cam"], [np.zeros((16, 16, 3), np.uint8)], js, instruction=str(tag))


def tags(history):
    return [o.instruction for o in history.snapshot()]


def test_window_keeps_the_newest_oldest_first():
    h = ObservationHistory(3)
    assert len(h) == 0 and h.latest is None and h.snapshot() == []
    for k in range(5):
        assert h.add(obs(float(k), k)) is False
    assert tags(h) == ["2", "3", "4"] and len(h) == 3 and h.latest.stamp == 4.0


def test_backwards_stamp_resets_first():
    h = ObservationHistory(4)
    for k in range(3):
        h.add(obs(10.0 + k, k))
    assert h.add(obs(5.0, "loop")) is True
    assert tags(h) == ["loop"]
    assert h.add(obs(5.1, "next")) is False
    assert tags(h) == ["loop", "next"]


def test_duplicate_stamp_replaces_newest():
    h = ObservationHistory(4)
    h.add(obs(1.0, "a"))
    h.add(obs(2.0, "b"))
    assert h.add(obs(2.0, "b2")) is False
    assert tags(h) == ["a", "b2"] and len(h) == 2


def test_snapshot_is_a_copy_and_clear():
    h = ObservationHistory(2)
    h.add(obs(1.0))
    snap = h.snapshot()
    snap.clear()
    assert len(h) == 1
    h.clear()
    assert len(h) == 0 and h.latest is None
    assert h.add(obs(0.5)) is False  # nothing to go backwards from after clear()


def test_invalid_length():
    with pytest.raises(ValueError, match="history length must be >= 1, got 0"):
        ObservationHistory(0)


def test_infer_tile_and_compose():
    head = np.full((64, 96, 3), 1, np.uint8)
    left = np.full((32, 48, 3), 2, np.uint8)
    right = np.full((32, 48, 3), 3, np.uint8)
    assert infer_tile("robotwin", [head, left, right]) == (48, 32)  # from the wrist tile
    assert infer_tile("side_by_side", [left, right]) == (48, 32)
    out = compose("robotwin", ["head", "left", "right"], [head, left, right])
    assert out.shape == (96, 96, 3)
    assert np.all(out[:64] == 1) and np.all(out[64:, :48] == 2) and np.all(out[64:, 48:] == 3)
    out = compose("side_by_side", ["a", "b"], (left, right))
    assert out.shape == (32, 96, 3) and np.all(out[:, 48:] == 3)
    with pytest.raises(ImageError, match="camera 'b' tile is 16x32, layout wants 48x32"):
        compose("side_by_side", ["a", "b"], [left, left[:, :16]])
