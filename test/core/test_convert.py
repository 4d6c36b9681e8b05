"""nodes.convert: Observation built by observation_to_msg reads back unchanged by observation_from_msg
(the two directions perception and the world model use)."""
import numpy as np
import pytest

from kairos_ros.core.types import JointStateData, ObservationData
from kairos_ros.nodes.convert import observation_from_msg, observation_to_msg


def _obs(velocities=True):
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 255, shape, dtype=np.uint8) for shape in ((96, 128, 3), (48, 64, 3), (48, 64, 3))]
    js = JointStateData(12.25, ["a", "b"], np.array([0.5, -1.25]), np.array([0.1, 0.2]) if velocities else None)
    return ObservationData(12.5, ["head", "left_wrist", "right_wrist"], images, js, "pick it up",
                           image_stamps=[12.4, 12.45, 12.5])


@pytest.mark.parametrize("velocities", [True, False])
def test_round_trip(velocities):
    obs = _obs(velocities)
    msg = observation_to_msg(obs, "robotwin", "base_link")
    assert msg.header.frame_id == "base_link" and msg.layout == "robotwin"
    assert [m.header.frame_id for m in msg.images] == obs.camera_names
    back = observation_from_msg(msg)
    assert back.stamp == pytest.approx(obs.stamp) and back.instruction == obs.instruction
    assert back.image_stamps == pytest.approx(obs.image_stamps)
    for a, b in zip(back.images, obs.images):
        np.testing.assert_array_equal(a, b)
    assert back.joint_state.names == ["a", "b"] and back.joint_state.stamp == pytest.approx(12.25)
    np.testing.assert_allclose(back.joint_state.positions, obs.joint_state.positions)
    if velocities:
        np.testing.assert_allclose(back.joint_state.velocities, obs.joint_state.velocities)
    else:
        assert back.joint_state.velocities is None
    assert back.composed.shape == (96 + 48, 128, 3)  # robotwin: the head on top, the two wrists below


def test_images_without_their_own_stamps_take_the_set_stamp():
    obs = _obs()
    obs.image_stamps = []
    back = observation_from_msg(observation_to_msg(obs, "robotwin"))
    assert back.image_stamps == pytest.approx([12.5] * 3)


def test_plan_to_msg_keeps_every_point_in_order():
    from kairos_ros.core.trajectory import TrajectoryPlan
    from kairos_ros.nodes.convert import plan_to_msg

    plan = TrajectoryPlan(["j1", "j2"], np.array([0.05, 0.1, 0.15]), np.array([[0.0, 1.0], [0.1, 1.1], [0.2, 1.2]]),
                          np.array([[2.0, 2.0], [2.0, 2.0], [0.0, 0.0]]), 0)
    msg = plan_to_msg(plan, 100.25)
    assert msg.header.stamp.sec == 100 and msg.header.stamp.nanosec == 250_000_000
    assert list(msg.joint_names) == ["j1", "j2"]
    times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points]
    assert times == pytest.approx([0.05, 0.1, 0.15])
    np.testing.assert_allclose([list(p.positions) for p in msg.points], plan.positions)
    assert list(msg.points[-1].velocities) == [0.0, 0.0]
