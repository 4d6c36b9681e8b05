"""Adapter node: unified ActionChunk -> trajectory_msgs/JointTrajectory for one embodiment."""
from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from kairos_msgs.msg import ActionChunk
from kairos_ros.core.adapter import plan_chunk
from kairos_ros.core.chunks import ChunkError
from kairos_ros.core.diagnostics import ProblemCounter, RateMeter
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.joints import JointStateError, order_joint_state
from kairos_ros.core.params import ParameterError, ParamSpec
from kairos_ros.nodes.common import declare_schema, diagnostic_array, run_node, to_duration, to_sec, to_time
from kairos_ros.nodes.convert import chunk_from_msg

SCHEMA = [
    ParamSpec("embodiment", "str", "", "Embodiment to drive: a folder name under urdf_adapters/ or a "
              "path to an adapter.yaml.", read_only=True, required=True),
    ParamSpec("chunk_topic", "str", "/kairos/action_chunk", "ActionChunk input.", read_only=True),
    ParamSpec("joint_states_topic", "str", "/joint_states", "Current robot state.", read_only=True),
    ParamSpec("trajectory_topic", "str", "", "JointTrajectory output (default: the adapter.yaml's "
              "controller_topic).", read_only=True),
    ParamSpec("max_chunk_age", "float", 0.5, "Refuse chunks predicted from observations older than "
              "this (s, node clock; 0 disables).", min=0.0, max=60.0, read_only=True),
    ParamSpec("max_joint_state_age", "float", 0.5, "Refuse to start a trajectory when the newest valid "
              "joint state is older than this (s; 0 disables).", min=0.0, max=60.0, read_only=True),
    ParamSpec("min_lead", "float", 0.0, "Drop chunk points due sooner than this after now (s).",
              min=0.0, max=5.0, read_only=True),
    ParamSpec("diagnostics_period", "float", 1.0, "Seconds between /diagnostics messages.", min=0.05,
              max=60.0, read_only=True),
]


class AdapterNode(Node):
    def __init__(self):
        super().__init__("adapter")
        p = declare_schema(self, SCHEMA)
        try:
            self.spec = load_embodiment(p["embodiment"])
        except (ValueError, KeyError, FileNotFoundError) as exc:
            raise ParameterError(f"parameter 'embodiment' = {p['embodiment']!r}: {exc}") from exc
        self.params = p
        self.problems = ProblemCounter("adapter")
        self.rate = RateMeter()
        self.sent = 0
        self.positions: np.ndarray | None = None
        self.positions_stamp = 0.0
        topic = p["trajectory_topic"] or self.spec.controller_topic
        self.pub = self.create_publisher(JointTrajectory, topic, 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(ActionChunk, p["chunk_topic"], self._on_chunk, 10)
        self.create_subscription(JointState, p["joint_states_topic"], self._on_joints, qos_profile_sensor_data)
        self.create_timer(p["diagnostics_period"], self._diagnostics)
        self.get_logger().info(f"adapter '{self.spec.name}': {len(self.spec.joint_names)} joints -> {topic}")

    def _refuse(self, key: str, message: str) -> None:
        if self.problems.problem(key, message):
            self.get_logger().warning(f"{message} ({self.problems.counts()[key]} so far)")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joints(self, msg: JointState) -> None:
        try:
            positions, _ = order_joint_state(list(msg.name), msg.position, None, list(self.spec.joint_names),
                                             list(self.spec.ignore_joints))
        except JointStateError as exc:
            self._refuse("bad_joint_state", f"joint_states: {exc}")
            return
        stamp = to_sec(msg.header.stamp)
        if stamp < self.positions_stamp:
            self.get_logger().info("joint_states stamps jumped backwards: state reset")
        self.positions, self.positions_stamp = positions, stamp

    def _on_chunk(self, msg: ActionChunk) -> None:
        now = self._now()
        try:
            chunk = chunk_from_msg(msg)
            positions = self.positions
            max_js_age = self.params["max_joint_state_age"]
            if positions is not None and max_js_age > 0 and now - self.positions_stamp > max_js_age:
                raise ChunkError(f"newest valid joint state is {now - self.positions_stamp:.3f} s old "
                                 f"(> max_joint_state_age {max_js_age})")
            plan = plan_chunk(chunk, self.spec, positions, now, self.params["max_chunk_age"],
                              self.params["min_lead"])
        except (ValueError, ChunkError) as exc:
            self._refuse("refused_chunk", f"chunk refused: {exc}")
            return
        traj = JointTrajectory()
        traj.header.stamp = to_time(now)  # time_from_start values are relative to this instant
        traj.joint_names = list(plan.joint_names)
        for t, pos, vel in zip(plan.times, plan.positions, plan.velocities):
            point = JointTrajectoryPoint()
            point.positions = [float(x) for x in pos]
            point.velocities = [float(x) for x in vel]
            point.time_from_start = to_duration(float(t))
            traj.points.append(point)
        self.pub.publish(traj)
        self.sent += 1
        self.rate.tick()
        if plan.clamped:
            self.problems.problem("clamped", f"{plan.clamped} values clamped to joint limits")

    def _diagnostics(self) -> None:
        self.diag_pub.publish(diagnostic_array(self, "trajectories", self.problems, {
            "embodiment": self.spec.name, "trajectories_sent": self.sent, "rate_hz": f"{self.rate.rate():.2f}"}))


def main(args=None) -> int:
    return run_node(AdapterNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
