"""The visualizer's message construction (pure functions; no DDS needed)."""
import numpy as np
from builtin_interfaces.msg import Time
from visualization_msgs.msg import Marker

from kairos_ros.core.visualization import trail_markers
from kairos_ros.nodes.viz_msgs import delete_all, joint_state, marker_array, trail_marker


def test_trail_marker_is_a_coloured_line_strip():
    path = np.random.default_rng(0).normal(size=(5, 1, 3))
    trail = trail_markers(path, ["tool"], "current", 0.007)[0]
    m = trail_marker(trail, "base_link")
    assert (m.type, m.action, m.ns, m.id) == (Marker.LINE_STRIP, Marker.ADD, "current/tool", 0)
    assert m.header.frame_id == "base_link" and m.header.stamp == Time()
    assert m.scale.x == 0.007 and m.pose.orientation.w == 1.0
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in m.points], path[:, 0])
    assert len(m.colors) == 5
    np.testing.assert_allclose([[c.r, c.g, c.b, c.a] for c in m.colors], trail.colors, rtol=1e-6)
    assert m.color.a == m.colors[0].a


def test_marker_array_deletes_first_and_delete_all():
    path = np.zeros((3, 2, 3))
    trails = trail_markers(path, ["a", "b"], "current", 0.01)
    arr = marker_array(trails, [("previous/a", 0)], "base")
    assert [(m.action, m.ns) for m in arr.markers] == [(Marker.DELETE, "previous/a"), (Marker.ADD, "current/a"),
                                                        (Marker.ADD, "current/b")]
    assert all(m.header.frame_id == "base" for m in arr.markers)
    clear = delete_all("base")
    assert [m.action for m in clear.markers] == [Marker.DELETEALL]


def test_joint_state():
    msg = joint_state(["a", "b"], np.array([0.5, -1.0]), Time(sec=3))
    assert list(msg.name) == ["a", "b"] and list(msg.position) == [0.5, -1.0] and msg.header.stamp.sec == 3
