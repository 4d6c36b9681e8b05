"""Visualizer node: what the world model predicts, for RViz.

PredictedFuture -> the future frames as one horizontal Image strip and per-frame Images;
end-effector trails (forward kinematics of each chunk row) of the current and previous chunks
as a MarkerArray in the robot's base link; a ghost-robot JointState stream playing the predicted
chunk, for a second robot_state_publisher with frame_prefix ghost/. The adapter's trajectory
preview gets a trail of its own. Bad input is dropped with a throttled warning and counted in
/diagnostics; it never stops the node.
"""
from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from kairos_msgs.msg import PredictedFuture
from kairos_ros.core.diagnostics import ProblemCounter, RateMeter
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.image import ImageError
from kairos_ros.core.kinematics import Kinematics
from kairos_ros.core.params import ParameterError
from kairos_ros.core.visualization import image_strip
from kairos_ros.core.visualizer import Visualizer, robot_model
from kairos_ros.nodes.common import (declare_schema, diagnostic_array, image_msg_to_rgb, now_sec, rgb_to_image_msg,
                                     run_node, warn_problem)
from kairos_ros.nodes.convert import chunk_from_msg
from kairos_ros.nodes.viz_msgs import delete_all, joint_state, marker_array
from kairos_ros.params.visualizer import SCHEMA


class VisualizerNode(Node):
    def __init__(self):
        super().__init__("visualizer")
        p = declare_schema(self, SCHEMA)
        try:
            self.spec = load_embodiment(p["embodiment"])
            urdf, base, ees = robot_model(self.spec, p["urdf_path"], p["base_link"], p["end_effectors"])
            kin = Kinematics(urdf, ees, base)
            self.viz = Visualizer(self.spec, kin, p["trail_width"], p["ghost_mode"])
        except (ValueError, KeyError, FileNotFoundError) as exc:
            raise ParameterError(f"visualizer for embodiment {p['embodiment']!r}: {exc}") from exc
        self.params = p
        self.frame_id = kin.base_link
        self.problems = ProblemCounter("visualizer")
        self.rate = RateMeter()
        self.drawn = 0
        self.strip_pub = self.create_publisher(Image, p["strip_topic"], 2)
        self.frame_pubs = [self.create_publisher(Image, f"{p['frame_topic_prefix']}{i}", 2)
                           for i in range(p["frame_topics"])]
        self.trails_pub = self.create_publisher(MarkerArray, p["trails_topic"], 10)
        self.preview_pub = self.create_publisher(MarkerArray, p["preview_trails_topic"], 10)
        self.ghost_pub = self.create_publisher(JointState, p["ghost_topic"], 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.trails_pub.publish(delete_all(self.frame_id))
        self.preview_pub.publish(delete_all(self.frame_id))
        self.create_subscription(PredictedFuture, p["future_topic"], self._on_future, 2)
        self.create_subscription(JointState, p["joint_states_topic"], self._on_joints, qos_profile_sensor_data)
        self.create_subscription(JointTrajectory, p["trajectory_topic"], self._on_trajectory, 10)
        self.create_timer(1.0 / p["ghost_rate_hz"], self._tick)
        self.create_timer(p["diagnostics_period"], self._diagnostics)
        if not kin.frames:
            self.get_logger().warning(f"embodiment '{self.spec.name}' names no end effectors and parameter "
                                      "'end_effectors' is empty: no trails are drawn")
        self.get_logger().info(f"visualizer '{self.spec.name}': trails of {list(kin.frames)} in '{self.frame_id}' "
                               f"(URDF {urdf}), ghost '{p['ghost_mode']}' on {p['ghost_topic']}")

    def _warn(self, key: str, message: str) -> None:
        warn_problem(self, self.problems, key, message)

    def _now(self) -> float:
        return now_sec(self)

    def _on_joints(self, msg: JointState) -> None:
        try:
            self.viz.set_joint_state(list(msg.name), msg.position)
        except ValueError as exc:
            self._warn("bad_joint_state", f"joint_states: {exc}")

    def _on_future(self, msg: PredictedFuture) -> None:
        """A prediction whose chunk is refused is not shown at all; bad frames only lose the images."""
        try:
            trails, deletes = self.viz.on_chunk(chunk_from_msg(msg.chunk), self._now())
        except ValueError as exc:  # ChunkError, KinematicsError, VisualizationError
            self._warn("bad_chunk", f"prediction not drawn: {exc}")
            return
        self._publish_frames(msg)
        self.trails_pub.publish(marker_array(trails, deletes, self.frame_id))
        self.drawn += 1
        self.rate.tick()

    def _publish_frames(self, msg: PredictedFuture) -> None:
        if not msg.frames:
            return
        try:
            frames = [image_msg_to_rgb(f) for f in msg.frames]
            strip = image_strip(frames, self.params["strip_gap"])
        except (ImageError, ValueError) as exc:
            self._warn("bad_frames", f"predicted frames not shown: {exc}")
            return
        self.strip_pub.publish(rgb_to_image_msg(strip, msg.header.stamp))
        for pub, frame, src in zip(self.frame_pubs, frames, msg.frames):
            pub.publish(rgb_to_image_msg(np.ascontiguousarray(frame), src.header.stamp, src.header.frame_id))

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            if not msg.points:
                raise ValueError("trajectory has no points")
            if any(len(pt.positions) != len(msg.joint_names) for pt in msg.points):
                raise ValueError(f"points do not all carry {len(msg.joint_names)} positions")
            points = np.array([list(pt.positions) for pt in msg.points], dtype=np.float64)
            trails, deletes = self.viz.on_trajectory(list(msg.joint_names), points)
        except ValueError as exc:
            self._warn("bad_trajectory", f"trajectory preview not drawn: {exc}")
            return
        self.preview_pub.publish(marker_array(trails, deletes, self.frame_id))

    def _tick(self) -> None:
        now = self._now()
        stale = self.viz.expire(now, self.params["stale_after"])
        if stale:
            self.trails_pub.publish(marker_array([], stale, self.frame_id))
            self._warn("stale", f"no valid prediction for {self.params['stale_after']} s: trails removed")
        ghost = self.viz.ghost(now)
        if ghost is not None:
            self.ghost_pub.publish(joint_state(*ghost, self.get_clock().now().to_msg()))

    def _diagnostics(self) -> None:
        self.diag_pub.publish(diagnostic_array(self, "visualization", self.problems, {
            "embodiment": self.spec.name, "predictions_drawn": self.drawn, "rate_hz": f"{self.rate.rate():.2f}",
            "end_effectors": ",".join(self.viz.kin.frames), "frame_id": self.frame_id,
            "ghost_mode": self.params["ghost_mode"]}))


def main(args=None) -> int:
    return run_node(VisualizerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
