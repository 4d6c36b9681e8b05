"""Visualizer maths without ROS: strip, trail colours, marker bookkeeping, ghost pose, state."""
import os

import numpy as np
import pytest

from kairos_ros.core.chunks import ChunkError
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.kinematics import Kinematics, KinematicsError, chunk_path
from kairos_ros.core.types import ActionChunkData
from kairos_ros.core.visualization import (END_COLOR, START_COLOR, MarkerBook, VisualizationError, ghost_pose,
                                           image_strip, time_colors, trail_markers)
from kairos_ros.core.visualizer import Visualizer, robot_model

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "planar_arm")
SPEC = load_embodiment(os.path.join(FIXTURE, "adapter.yaml"))


def test_strip_places_frames_side_by_side():
    a = np.full((4, 3, 3), 10, np.uint8)
    b = np.full((2, 5, 3), 20, np.uint8)
    strip = image_strip([a, b], gap=2)
    assert strip.shape == (4, 3 + 2 + 5, 3)
    assert (strip[:, :3] == 10).all() and (strip[:, 3:5] == 0).all()
    assert (strip[:2, 5:] == 20).all() and (strip[2:, 5:] == 0).all()  # shorter frame top-aligned on black
    assert image_strip([a], gap=7).shape == (4, 3, 3)
    with pytest.raises(VisualizationError, match="no frames"):
        image_strip([])
    with pytest.raises(VisualizationError, match=r"frame 1 has shape \(4, 3\)"):
        image_strip([a, np.zeros((4, 3), np.uint8)])


def test_colors_run_from_start_to_end():
    c = time_colors(5)
    np.testing.assert_allclose(c[0, :3], START_COLOR)
    np.testing.assert_allclose(c[-1, :3], END_COLOR)
    assert (c[:, 3] == 1.0).all()
    dim = time_colors(5, alpha=0.3, shade=0.5)
    np.testing.assert_allclose(dim[:, :3], c[:, :3] * 0.5)
    assert (dim[:, 3] == 0.3).all()


def test_trails_and_stale_markers():
    path = np.arange(4 * 2 * 3, dtype=float).reshape(4, 2, 3)
    trails = trail_markers(path, ["a", "b"], "current", 0.01)
    assert [(t.ns, t.id) for t in trails] == [("current/a", 0), ("current/b", 0)]
    np.testing.assert_array_equal(trails[1].points, path[:, 1])
    prev = trail_markers(path, ["a", "b"], "previous", 0.01, previous=True)
    assert prev[0].colors[0, 3] < trails[0].colors[0, 3]
    assert trail_markers(path[:1], ["a", "b"], "current", 0.01) == []  # one point: no line
    with pytest.raises(VisualizationError, match="non-finite"):
        trail_markers(np.full((3, 2, 3), np.nan), ["a", "b"], "current", 0.01)
    book = MarkerBook()
    assert book.update(trails + prev)[1] == []
    assert book.update(trails)[1] == [("previous/a", 0), ("previous/b", 0)]
    assert book.update(trails)[1] == []
    assert book.clear() == [("current/a", 0), ("current/b", 0)]
    with pytest.raises(VisualizationError, match="duplicate"):
        book.update(trails + trails)


def test_ghost_pose_modes():
    rows = np.array([[0.0, 0.0], [1.0, 10.0], [2.0, 20.0]])
    np.testing.assert_allclose(ghost_pose(rows, 0.1, 0.0), [0, 0])
    np.testing.assert_allclose(ghost_pose(rows, 0.1, 0.15), [1.5, 15.0])
    np.testing.assert_allclose(ghost_pose(rows, 0.1, 5.0), [2, 20])  # play: final pose held
    np.testing.assert_allclose(ghost_pose(rows, 0.1, 0.35, "loop"), [0.5, 5.0])  # 0.35 s = 3.5 rows -> 0.5
    np.testing.assert_allclose(ghost_pose(rows, 0.1, 0.0, "final"), [2, 20])
    np.testing.assert_allclose(ghost_pose(rows, 0.1, -1.0), [0, 0])
    with pytest.raises(VisualizationError, match="ghost mode 'jump'"):
        ghost_pose(rows, 0.1, 0.0, "jump")
    with pytest.raises(VisualizationError, match="step_period 0.0"):
        ghost_pose(rows, 0.0, 0.0)


def _chunk(values, **kw):
    args = dict(stamp=1.0, embodiment="planar_arm", slot_names=list(SPEC.slot_names),
                values=np.asarray(values, np.float32), step_period=0.1)
    args.update(kw)
    return ActionChunkData(**args)


@pytest.fixture()
def viz():
    urdf, base, ees = robot_model(SPEC)
    return Visualizer(SPEC, Kinematics(urdf, ees, base), 0.004, "play")


def test_visualizer_current_previous_and_ghost(viz):
    first = np.array([[0.1, 0.2, 0.01], [0.2, 0.3, 0.02], [0.3, 0.4, 0.03]])
    trails, deletes = viz.on_chunk(_chunk(first), now=10.0)
    assert [t.ns for t in trails] == ["current/tool", "current/finger_left_link"] and deletes == []
    expected = chunk_path(viz.kin, SPEC, first.astype(np.float32))
    np.testing.assert_allclose(trails[0].points, expected[:, 0])
    second = first + 0.1
    trails, _ = viz.on_chunk(_chunk(second), now=10.5)
    assert [t.ns for t in trails][2:] == ["previous/tool", "previous/finger_left_link"]
    np.testing.assert_allclose(trails[2].points, expected[:, 0])  # the first chunk, now dimmer
    names, pose = viz.ghost(10.55)  # half a row into the second chunk
    assert names == ["shoulder", "elbow", "finger_left"]
    np.testing.assert_allclose(pose, (second[0] + second[1]) / 2, atol=1e-6)
    assert viz.expire(11.0, 2.0) == []
    assert viz.expire(13.0, 2.0) == [("current/finger_left_link", 0), ("current/tool", 0),
                                     ("previous/finger_left_link", 0), ("previous/tool", 0)]
    assert viz.ghost(13.0) is None


def test_visualizer_refuses_bad_chunks_and_keeps_state(viz):
    good = np.array([[0.1, 0.2, 0.01], [0.2, 0.3, 0.02]])
    viz.on_chunk(_chunk(good), now=1.0)
    for chunk, match in ((_chunk(good, embodiment="dual_arm"), "embodiment 'dual_arm'"),
                         (_chunk(good[:, :2], slot_names=list(SPEC.slot_names[:2])), "dimension 2"),
                         (_chunk(np.where(good > 0.25, np.nan, good)), "non-finite")):
        with pytest.raises(ChunkError, match=match):
            viz.on_chunk(chunk, now=2.0)
    assert viz.previous is None and viz.last_chunk_time == 1.0


def test_joint_state_fills_undriven_joints(viz):
    viz.set_joint_state(["finger_left", "shoulder", "other_robot_joint"], [0.02, 0.5, 7.0])
    np.testing.assert_allclose(viz.defaults(), [0.5, 0.0, 0.02])
    with pytest.raises(ValueError, match=r"non-finite positions for \['shoulder'\]"):
        viz.set_joint_state(["shoulder"], [np.inf])
    with pytest.raises(ValueError, match="2 names and 1 positions"):
        viz.set_joint_state(["shoulder", "elbow"], [0.1])
    # a trajectory naming only some joints takes the others from the joint state
    trails, _ = viz.on_trajectory(["elbow"], np.array([[0.1], [0.2]]))
    np.testing.assert_allclose(trails[0].points, viz.kin.fk(["shoulder", "elbow", "finger_left"],
                                                           [[0.5, 0.1, 0.02], [0.5, 0.2, 0.02]])[:, 0])
    with pytest.raises(KinematicsError, match="unknown joints"):
        viz.on_trajectory(["wrist"], np.array([[0.1], [0.2]]))


def test_robot_model_errors_name_what_is_missing(tmp_path):
    class Bare:  # an embodiment spec from before URDFs existed
        name, path = "old_arm", "/x/adapter.yaml"
    with pytest.raises(ValueError, match="'old_arm'.*names no URDF.*'urdf_path'"):
        robot_model(Bare())
    assert robot_model(Bare(), urdf_path="/r.urdf") == ("/r.urdf", "", [])  # no end effectors: no trails
    assert robot_model(Bare(), "/r.urdf", "", ["tip"]) == ("/r.urdf", "", ["tip"])
    assert robot_model(SPEC, end_effectors=["link2"])[1:] == ("base_link", ["link2"])
    renamed = tmp_path / "renamed.urdf"
    renamed.write_text(open(os.path.join(FIXTURE, "planar_arm.urdf")).read().replace(
        '<joint name="shoulder" type="revolute">', '<joint name="shoulder_renamed" type="revolute">'))
    with pytest.raises(KinematicsError, match=r"joints \['shoulder'\] of embodiment 'planar_arm'"):
        Visualizer(SPEC, Kinematics(str(renamed), ["tool"]))

