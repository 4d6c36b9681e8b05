"""Adapter node: unified ActionChunk -> trajectory_msgs/JointTrajectory for one embodiment.

Dry-run by default: trajectories go to the preview topic until the `~/arm` service enables the
controller topic. Every trajectory passes the safety gates (start jump, step, velocity,
acceleration; the limits come from the embodiment's URDF and adapter.yaml); with no
valid chunk for `watchdog_timeout` the robot gets one hold trajectory; an e-stop message latches
until `~/reset_estop`, which is refused while the e-stop is still asserted (the newest message on the
e-stop topic said true). Holds are planned within the joint limits (core.trajectory.plan_hold) and
gated (SafetyState.check_hold). When the node stops while armed (shutdown, a supervisor ending the
graph, a signal) it sends a hold first.
"""
from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from kairos_msgs.msg import ActionChunk
from kairos_ros.core.adapter import planner_from_params
from kairos_ros.core.chunks import ChunkError, check_declared_size
from kairos_ros.core.diagnostics import ProblemCounter, RateMeter
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.joints import JointStateError, order_joint_state
from kairos_ros.core.params import ParameterError
from kairos_ros.core.safety import CONTROLLER, PREVIEW
from kairos_ros.core.stamps import stamp_problem
from kairos_ros.core.trajectory import plan_hold
from kairos_ros.lib.rostime import to_sec
from kairos_ros.nodes.common import declare_schema, diagnostic_array, now_sec, run_node, warn_problem
from kairos_ros.nodes.convert import chunk_from_msg, plan_to_msg
from kairos_ros.params.adapter import SCHEMA


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
        self.velocities: np.ndarray | None = None
        self.positions_stamp = 0.0
        self.estop_asserted = False  # level of the e-stop topic: its newest message
        try:
            self.planner = planner_from_params(self.spec, p, armed=p["armed_on_start"])
        except ValueError as exc:
            raise ParameterError(str(exc)) from exc
        self.safety = self.planner.safety
        self.bounds = self.planner.settings.bounds
        self.started = self._now()
        topic = p["trajectory_topic"] or self.spec.controller_topic
        self.pubs = {CONTROLLER: self.create_publisher(JointTrajectory, topic, 10),
                     PREVIEW: self.create_publisher(JointTrajectory, p["preview_topic"], 10)}
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(ActionChunk, p["chunk_topic"], self._on_chunk, 10)
        self.create_subscription(JointState, p["joint_states_topic"], self._on_joints, qos_profile_sensor_data)
        self.create_subscription(Bool, p["estop_topic"], self._on_estop, 10)
        self.create_service(SetBool, "~/arm", self._arm)
        self.create_service(Trigger, "~/reset_estop", self._reset_estop)
        self.create_timer(p["diagnostics_period"], self._diagnostics)
        self.create_timer(min(0.05, p["watchdog_timeout"] / 4), self._watchdog)
        self.get_logger().info(f"adapter '{self.spec.name}': {len(self.spec.joint_names)} joints -> {topic} "
                               f"({'ARMED' if self.safety.armed else 'dry run: ' + p['preview_topic']})")

    def _refuse(self, key: str, message: str) -> None:
        warn_problem(self, self.problems, key, message)

    def _now(self) -> float:
        return now_sec(self)

    def _on_joints(self, msg: JointState) -> None:
        try:
            positions, velocities = order_joint_state(list(msg.name), msg.position, msg.velocity,
                                                      list(self.spec.joint_names), list(self.spec.ignore_joints))
        except JointStateError as exc:
            self._refuse("bad_joint_state", f"joint_states: {exc}")
            return
        stamp = to_sec(msg.header.stamp)
        problem = stamp_problem(stamp, self._now(), 0.0, self.params["future_stamp_tolerance"], "joint_states")
        if problem:
            self._refuse("future_stamp.joint_states", problem)
            return
        if stamp < self.positions_stamp:
            self.get_logger().info("joint_states stamps jumped backwards: state reset")
            self.planner.reset()
        self.positions, self.velocities, self.positions_stamp = positions, velocities, stamp

    def _on_chunk(self, msg: ActionChunk) -> None:
        now = self._now()
        try:
            check_declared_size(msg.horizon, msg.dim, self.bounds)
            chunk = chunk_from_msg(msg)
            plan = self.planner.plan(chunk, self.positions, self.positions_stamp, now)
        except (ValueError, ChunkError) as exc:
            gate = getattr(exc, "gate", None)
            if gate:  # counted per gate too: diagnostics show count.refused_<gate>
                self.problems.problem(f"refused_{gate}", str(exc))
            self._refuse("refused_chunk", f"chunk refused: {exc}")
            return
        self.planner.accept(chunk, plan, now)  # only what is sent is blended from
        self._send(plan, now)
        if plan.clamped:
            self.problems.problem("clamped", f"{plan.clamped} values clamped to joint limits")

    def _send(self, plan, now: float) -> None:
        route = self.safety.route()
        if route not in self.pubs:
            return
        self.pubs[route].publish(plan_to_msg(plan, now))  # time_from_start relative to now
        self.sent += 1
        self.rate.tick()

    def _hold(self, reason: str, wait_acked: float = 0.0) -> bool:
        """One hold trajectory from the newest valid joint state (to wherever output goes), planned
        within the joint limits and gated. With wait_acked > 0, wait up to that long for the
        subscribers to acknowledge it (used at shutdown). True when a hold was published."""
        self.planner.blender.reset()  # the next chunk starts from the held state, not from an old plan
        if self.positions is None:
            self.get_logger().warning(f"{reason}; no joint state known, nothing to hold")
            return False
        hold = plan_hold(self.spec, self.positions, self.params["hold_duration"], self.velocities)
        try:
            self.safety.check_hold(hold.plan, self.positions, self.velocities)
        except ChunkError as exc:  # a planner bug: say so loudly, send nothing that breaks the limits
            self.problems.problem("refused_hold", str(exc))
            self.get_logger().error(f"{reason}: hold refused: {exc}")
            return False
        if hold.outside:
            shown = ", ".join(f"'{n}' at {x:.4g} -> {lim:.4g}" for n, x, lim in hold.outside)
            self.problems.problem("hold_outside_limits", f"joints measured outside their limits: {shown}")
            self.get_logger().warning(f"{reason}: joints measured outside their limits are brought back to them "
                                      f"within the velocity and acceleration limits over {hold.duration:.3f} s: "
                                      f"{shown}")
        route = self.safety.route()
        if route == "nowhere" and self.safety.armed:
            route = CONTROLLER  # the e-stop's own stop command still reaches the controller
        sent = False
        if route in self.pubs:
            pub = self.pubs[route]
            pub.publish(plan_to_msg(hold.plan, self._now()))  # one point at rest (core.trajectory.plan_hold)
            sent = True
            if wait_acked > 0:
                try:
                    pub.wait_for_all_acked(Duration(seconds=wait_acked))
                except Exception:  # noqa: BLE001 - best effort at shutdown; the hold was published
                    pass
        self.get_logger().warning(f"{reason}: holding position")
        return sent

    def _watchdog(self) -> None:
        if self.safety.estopped:
            return
        if self.safety.watchdog(self._now(), self.started):
            self.problems.problem("watchdog_hold", "no valid chunk within watchdog_timeout")
            self._hold(f"no valid chunk for {self.params['watchdog_timeout']} s")

    def _on_estop(self, msg: Bool) -> None:
        self.estop_asserted = bool(msg.data)
        if msg.data and not self.safety.estopped:
            self.safety.estop()
            self.problems.problem("estop", "e-stop received")
            self._hold("E-STOP latched (reset with the ~/reset_estop service)")

    def _arm(self, request, response):
        if request.data and self.safety.estopped:
            response.success, response.message = False, "e-stop is latched: reset it first"
            return response
        self.safety.armed = bool(request.data)
        response.success = True
        response.message = "armed: trajectories go to the controller" if request.data else "disarmed: dry run"
        self.get_logger().warning(response.message)
        return response

    def _reset_estop(self, _request, response):
        if self.estop_asserted:
            response.success = False
            response.message = (f"e-stop is still asserted (the newest message on {self.params['estop_topic']} "
                                "was true): release it (publish false) before resetting")
            self.problems.problem("estop_reset_refused", response.message)
            self.get_logger().warning(response.message)
            return response
        if not self.safety.estopped:
            response.success, response.message = True, "e-stop was not latched"
            return response
        self.safety.reset_estop()
        response.success, response.message = True, "e-stop reset; execution resumes with the next fresh chunk"
        self.get_logger().warning(response.message)
        return response

    def close(self) -> None:
        """Called by run_node while the middleware still runs: an armed adapter holds the robot
        before it stops (its last trajectory may run for seconds and no watchdog will follow)."""
        if self.safety.armed:
            self._hold("adapter stopping", wait_acked=1.0)

    def _diagnostics(self) -> None:
        self.diag_pub.publish(diagnostic_array(self, "trajectories", self.problems, {
            "embodiment": self.spec.name, "trajectories_sent": self.sent, "rate_hz": f"{self.rate.rate():.2f}",
            "armed": self.safety.armed, "estop": self.safety.estopped, "estop_asserted": self.estop_asserted,
            "holding": self.safety.holding,
            "inference_delay_estimate": self.planner.delay.estimate()}))


def main(args=None) -> int:
    return run_node(AdapterNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
