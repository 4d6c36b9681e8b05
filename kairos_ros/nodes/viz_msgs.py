"""Message construction for the visualizer (pure functions, no node needed): trails as
visualization_msgs/Marker LINE_STRIPs, DELETEs of stale markers, the ghost's JointState."""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from kairos_ros.core.visualization import Trail


def trail_marker(trail: Trail, frame_id: str) -> Marker:
    """One LINE_STRIP with a colour per point. Stamp 0: RViz draws it with the newest transform,
    which also works when the nodes run on a bag's sim time and RViz does not."""
    m = Marker()
    m.header.frame_id = frame_id
    m.header.stamp = Time()
    m.ns, m.id = trail.ns, int(trail.id)
    m.type, m.action = Marker.LINE_STRIP, Marker.ADD
    m.pose.orientation.w = 1.0
    m.scale.x = float(trail.width)
    r, g, b, a = (float(v) for v in trail.colors.mean(axis=0))
    m.color = ColorRGBA(r=r, g=g, b=b, a=float(trail.colors[0, 3]))
    m.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in np.asarray(trail.points)]
    m.colors = [ColorRGBA(r=float(c[0]), g=float(c[1]), b=float(c[2]), a=float(c[3])) for c in trail.colors]
    return m


def delete_marker(ns: str, marker_id: int, frame_id: str) -> Marker:
    m = Marker()
    m.header.frame_id = frame_id
    m.ns, m.id, m.action = ns, int(marker_id), Marker.DELETE
    return m


def marker_array(trails: list[Trail], deletes: list[tuple[str, int]], frame_id: str) -> MarkerArray:
    """DELETEs first, then the trails (RViz applies an array in order)."""
    out = MarkerArray()
    out.markers = [delete_marker(ns, i, frame_id) for ns, i in deletes] + [trail_marker(t, frame_id) for t in trails]
    return out


def delete_all(frame_id: str) -> MarkerArray:
    """Clears whatever an earlier run of the node left on the topic in RViz."""
    m = Marker()
    m.header.frame_id = frame_id
    m.action = Marker.DELETEALL
    return MarkerArray(markers=[m])


def joint_state(names, positions, stamp: Time) -> JointState:
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(names)
    msg.position = [float(x) for x in positions]
    return msg
