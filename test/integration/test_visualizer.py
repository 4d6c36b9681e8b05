"""The visualizer node in its own process over DDS, fed PredictedFuture, joint states and a
trajectory preview by a test publisher: trail points are FK of the chunk, the strip has the frames'
size, the ghost plays the chunk, and bad input is counted without stopping the node."""
import os
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from integration.rosutil import REPO, Listener, NodeProcess, wait_for
from kairos_msgs.msg import PredictedFuture
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.kinematics import Kinematics, chunk_path
from kairos_ros.core.types import ActionChunkData, PredictionData
from kairos_ros.lib.rostime import to_duration
from kairos_ros.nodes.convert import future_to_msg

FIXTURE = os.path.join(REPO, "test", "fixtures", "planar_arm")
SPEC = load_embodiment(os.path.join(FIXTURE, "adapter.yaml"))
KIN = Kinematics(SPEC.urdf_path, SPEC.end_effectors, SPEC.base_link)
TRAILS, PREVIEW, STRIP = "/kairos/viz/trails", "/kairos/viz/trajectory_preview", "/kairos/viz/future_strip"
TRAJ_IN = "/kairos/trajectory_preview"  # the adapter's dry-run output
FRAME0, GHOST = "/kairos/viz/future_frame_0", "/kairos/ghost/joint_states"
FRAME_H, FRAME_W, GAP = 16, 24, 2


@pytest.fixture(scope="module")
def viz():
    listener = Listener("viz_listener")
    for msg_type, topic in ((MarkerArray, TRAILS), (MarkerArray, PREVIEW), (Image, STRIP), (Image, FRAME0),
                            (JointState, GHOST), (DiagnosticArray, "/diagnostics")):
        listener.record(msg_type, topic)
    node = NodeProcess("kairos_ros.nodes.visualizer_node", "visualizer",
                       {"embodiment": SPEC.path, "ghost_mode": "final", "strip_gap": GAP, "stale_after": 0.0,
                        "diagnostics_period": 0.2})
    assert listener.wait_nodes(["visualizer"], 60), node.output()
    listener.future = listener.publisher(PredictedFuture, "/kairos/predicted_future")
    listener.js = listener.publisher(JointState, "/joint_states")
    listener.traj = listener.publisher(JointTrajectory, TRAJ_IN)
    need = {"/kairos/predicted_future": 1, "/joint_states": 1, TRAJ_IN: 1}
    assert listener.wait_subscriptions(need, 30), node.output()
    assert listener.wait_subscribers(listener.future)
    listener.proc = node
    yield listener
    code = node.stop()
    listener.close()
    assert code == 0, node.output()


def future(values, embodiment="planar_arm", n_frames=3, shade=40) -> PredictedFuture:
    frames = [np.full((FRAME_H, FRAME_W, 3), shade * (i + 1), np.uint8) for i in range(n_frames)]
    chunk = ActionChunkData(stamp=time.time(), embodiment=embodiment, slot_names=list(SPEC.slot_names),
                            values=np.asarray(values, np.float32), step_period=0.05)
    return future_to_msg(PredictionData(chunk.stamp, frames, [0.05 * (i + 1) for i in range(n_frames)], chunk))


def chunk_values(shift=0.0):
    t = np.linspace(0, 1, 6)[:, None]
    return (np.column_stack([0.2 + t, -0.4 + 0.5 * t, 0.01 + 0.02 * t]) + shift).astype(np.float32)


def drawn(listener, topic=TRAILS) -> list[dict]:
    """The MarkerArrays that add markers, as {ns: marker}."""
    return [{m.ns: m for m in arr.markers if m.action == Marker.ADD} for arr in listener.got(topic)
            if any(m.action == Marker.ADD for m in arr.markers)]


def points(marker) -> np.ndarray:
    return np.array([[p.x, p.y, p.z] for p in marker.points])


def publish(listener, msg, topic=TRAILS, count=1, timeout=10.0):
    n = len(drawn(listener, topic))
    (listener.traj if isinstance(msg, JointTrajectory) else listener.future).publish(msg)
    assert wait_for(lambda: len(drawn(listener, topic)) >= n + count, timeout), listener.proc.output()
    return drawn(listener, topic)[-1]


def test_trails_strip_frames_and_ghost(viz):
    first = chunk_values()
    markers = publish(viz, future(first))
    expected = chunk_path(KIN, SPEC, first)  # (H, E, 3)
    assert set(markers) == {"current/tool", "current/finger_left_link"}
    for e, link in enumerate(SPEC.end_effectors):
        m = markers[f"current/{link}"]
        assert m.type == Marker.LINE_STRIP and m.header.frame_id == "base_link"
        np.testing.assert_allclose(points(m), expected[:, e], atol=1e-9)
        assert len(m.colors) == len(m.points)
    assert wait_for(lambda: viz.got(STRIP) and viz.got(FRAME0), 5)
    strip = viz.got(STRIP)[-1]
    assert (strip.height, strip.width, strip.encoding) == (FRAME_H, 3 * FRAME_W + 2 * GAP, "rgb8")
    pixels = np.frombuffer(bytes(strip.data), np.uint8).reshape(FRAME_H, -1, 3)
    assert (pixels[:, :FRAME_W] == 40).all() and (pixels[:, FRAME_W:FRAME_W + GAP] == 0).all()
    assert (pixels[:, -FRAME_W:] == 120).all()
    frame0 = viz.got(FRAME0)[-1]
    assert (frame0.height, frame0.width) == (FRAME_H, FRAME_W) and set(bytes(frame0.data)) == {40}
    assert wait_for(lambda: viz.got(GHOST), 5)
    ghost = viz.got(GHOST)[-1]
    assert list(ghost.name) == ["shoulder", "elbow", "finger_left"]
    np.testing.assert_allclose(ghost.position, first[-1], atol=1e-6)  # ghost_mode final

    second = chunk_values(0.1)
    markers = publish(viz, future(second))
    assert set(markers) == {"current/tool", "current/finger_left_link", "previous/tool",
                            "previous/finger_left_link"}
    np.testing.assert_allclose(points(markers["previous/tool"]), expected[:, 0], atol=1e-9)
    np.testing.assert_allclose(points(markers["current/tool"]), chunk_path(KIN, SPEC, second)[:, 0], atol=1e-9)
    assert markers["previous/tool"].colors[0].a < markers["current/tool"].colors[0].a


def test_trajectory_preview_trail(viz):
    traj = JointTrajectory(joint_names=["elbow", "shoulder"])  # finger_left from the joint state
    q = [[0.1, 0.5], [0.2, 0.6], [0.3, 0.7]]
    for k, row in enumerate(q):
        traj.points.append(JointTrajectoryPoint(positions=row, time_from_start=to_duration(0.1 * (k + 1))))
    expected = KIN.fk(["elbow", "shoulder", "finger_left"], [r + [0.03] for r in q])
    drawn_at = []

    def drawn_with_the_joint_state() -> bool:  # the joint state (best effort) and the trajectory again
        viz.js.publish(JointState(name=["finger_left", "elbow"], position=[0.03, 0.0]))
        drawn_at.append(publish(viz, traj, PREVIEW))
        return np.allclose(points(drawn_at[-1]["preview/finger_left_link"]), expected[:, 1], atol=1e-9)
    assert wait_for(drawn_with_the_joint_state, 20, 0.1), "the preview never used the joint state's finger_left"
    markers = drawn_at[-1]
    np.testing.assert_allclose(points(markers["preview/tool"]), expected[:, 0], atol=1e-9)
    np.testing.assert_allclose(points(markers["preview/finger_left_link"]), expected[:, 1], atol=1e-9)


def test_bad_input_is_counted_and_the_node_keeps_working(viz):
    arrays, strips = len(viz.got(TRAILS)), len(viz.got(STRIP))
    nan = chunk_values()
    nan[2, 1] = np.nan
    short = future(chunk_values(), n_frames=2)
    short.frames[1].data = bytes(10)  # does not decode: the strip is skipped, the trails are drawn
    def counts():
        values = viz.diagnostics_values("visualizer")
        return {k: int(values.get(f"count.{k}", 0)) for k in ("bad_chunk", "bad_frames", "bad_joint_state",
                                                               "bad_trajectory")}
    # One at a time, each counted before the next (the node keeps only the newest 2 predictions queued).
    for msg, key, total in ((future(chunk_values(), embodiment="dual_arm"), "bad_chunk", 1),
                            (future(nan, n_frames=0), "bad_chunk", 2), (short, "bad_frames", 1)):
        viz.future.publish(msg)
        assert wait_for(lambda: counts()[key] >= total, 10), (counts(), viz.proc.output())
    viz.js.publish(JointState(name=["shoulder", "elbow"], position=[0.1]))
    viz.traj.publish(JointTrajectory(joint_names=["wrist"], points=[JointTrajectoryPoint(positions=[0.0])]))
    assert wait_for(lambda: counts() == {"bad_chunk": 2, "bad_frames": 1, "bad_joint_state": 1,
                                         "bad_trajectory": 1}, 10), (counts(), viz.proc.output())
    assert viz.proc.alive()
    out = viz.proc.output()
    assert "chunk embodiment 'dual_arm'" in out and "unknown joints ['wrist']" in out  # (the NaN one: throttled)
    assert "predicted frames not shown: data length 10" in out
    # Barrier: a valid prediction (frames of a shade of its own) through the same publisher is still
    # drawn, trails and strip; before them come only the short one's trails: refused chunks show
    # nothing, bad frames lose only the images.
    valid = chunk_values(0.2)
    path = chunk_path(KIN, SPEC, valid)[:, 0]

    def is_valid_trail(arr) -> bool:
        tool = [m for m in arr.markers if m.action == Marker.ADD and m.ns == "current/tool"]
        return bool(tool) and np.allclose(points(tool[0]), path, atol=1e-9)
    early = viz.barrier(TRAILS, arrays, lambda: viz.future.publish(future(valid, shade=50)), is_valid_trail, resend=30)
    assert len([a for a in early if any(m.action == Marker.ADD for m in a.markers)]) == 1, early
    assert wait_for(lambda: any(bytes(s.data)[:1] == bytes([50]) for s in viz.got(STRIP)[strips:]), 10)
    assert bytes(viz.got(STRIP)[strips].data)[:1] == bytes([50]), "a strip from a refused chunk or bad frames"
