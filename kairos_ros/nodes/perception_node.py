"""Perception node: cameras + /joint_states -> synchronised kairos_msgs/Observation."""
from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String

from kairos_msgs.msg import Observation
from kairos_ros.core.diagnostics import ProblemCounter, RateMeter
from kairos_ros.core import stamps
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.image import ImageError, ImageTooLargeError
from kairos_ros.core.joints import JointStateError
from kairos_ros.core.params import ParameterError
from kairos_ros.core.rate import PublishRateLimiter
from kairos_ros.core.realtime import limit_torch_threads
from kairos_ros.core.perception import PerceptionConfig, PerceptionPipeline
from kairos_ros.core.sync import OutOfOrderError
from kairos_ros.lib.rostime import to_sec
from kairos_ros.nodes.common import (cv_bridge_available, declare_schema, diagnostic_array, image_msg_to_rgb, now_sec,
                                     run_node, warn_problem)
from kairos_ros.nodes.convert import observation_to_msg
from kairos_ros.params.perception import SCHEMA


def camera_name_from_topic(topic: str) -> str:
    parts = [p for p in topic.split("/") if p and p not in ("image_raw", "image", "compressed",
                                                            "image_rect", "image_color", "rgb")]
    return parts[-1] if parts else topic.strip("/").replace("/", "_")


class PerceptionNode(Node):
    def __init__(self):
        super().__init__("perception")
        p = declare_schema(self, SCHEMA)
        if p["resize_threads"] > 0:
            limit_torch_threads(p["resize_threads"])
        topics = list(p["camera_topics"])
        names = list(p["camera_names"]) or [camera_name_from_topic(t) for t in topics]
        if len(names) != len(topics):
            raise ParameterError(f"parameter 'camera_names' has {len(names)} entries but "
                                 f"'camera_topics' has {len(topics)}")
        if len(set(names)) != len(names):
            raise ParameterError(f"parameter 'camera_names' = {names} has duplicates")
        try:
            spec = load_embodiment(p["embodiment"])
            self.pipeline = PerceptionPipeline(PerceptionConfig(
                camera_names=names, joint_names=list(spec.joint_names),
                ignore_joints=list(spec.ignore_joints), layout=p["layout"], tile_width=p["tile_width"],
                tile_height=p["tile_height"], slop=p["slop"], queue_size=p["queue_size"],
                max_image_pixels=p["max_image_pixels"], camera_crops=list(p["camera_crops"])))
        except (ValueError, KeyError, FileNotFoundError) as exc:
            raise ParameterError(str(exc)) from exc
        self.params = p
        self.future_tolerance = p["future_stamp_tolerance"]
        self.use_cv_bridge = p["use_cv_bridge"] and cv_bridge_available()
        self.problems = ProblemCounter("perception")
        self.rate = RateMeter()
        self.published = 0
        for topic, name in zip(topics, names):
            if topic.rstrip("/").endswith("/compressed"):
                self.create_subscription(CompressedImage, topic, self._camera_cb(name, True), qos_profile_sensor_data)
            else:
                self.create_subscription(Image, topic, self._camera_cb(name, False), qos_profile_sensor_data)
        self.create_subscription(JointState, p["joint_states_topic"], self._on_joints, qos_profile_sensor_data)
        latched = QoSProfile(depth=1, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(String, p["instruction_topic"], self._on_instruction, latched)
        self.pub = self.create_publisher(Observation, p["observation_topic"], 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Inputs trigger publishing, at most rate_hz times per second; a set held back by the limit
        # is flushed by a one-shot timer armed for the moment the limit lifts (core/rate.py).
        self.limiter = PublishRateLimiter(p["rate_hz"])
        self.flush_timer = None
        self.create_timer(p["diagnostics_period"], self._diagnostics)
        self.get_logger().info(f"perception: cameras {dict(zip(names, topics))}, layout {p['layout']} "
                               f"{self.pipeline.layout.width}x{self.pipeline.layout.height}, "
                               f"{len(spec.joint_names)} joints of '{spec.name}', "
                               f"{'cv_bridge' if self.use_cv_bridge else 'built-in'} image conversion")

    def _warn(self, key: str, message: str) -> None:
        warn_problem(self, self.problems, key, message, "dropped; ")

    def _stamp_refused(self, stamp: float, key: str, what: str) -> bool:
        """Count and drop an input stamped ahead of the node clock beyond future_stamp_tolerance
        (checked before any decoding). Perception has no age limit (max_age 0): sets are only
        synchronised here; consumers judge their age."""
        problem = stamps.stamp_problem(stamp, now_sec(self), 0.0, self.future_tolerance, what)
        if problem is None:
            return False
        self._warn(f"future_stamp.{key}", problem)
        return True

    def _camera_cb(self, name: str, compressed: bool):
        def add(msg) -> None:
            stamp = to_sec(msg.header.stamp)
            if self._stamp_refused(stamp, name, f"camera '{name}'"):
                return
            if compressed:
                self.pipeline.add_compressed_image(name, stamp, msg.format, msg.data)
            else:
                # The size is checked before either converter (cv_bridge or built-in) touches the data.
                self.pipeline.check_raw_size(msg.encoding, msg.height, msg.width)
                self.pipeline.add_rgb(name, stamp, image_msg_to_rgb(msg, self.use_cv_bridge))

        def callback(msg) -> None:
            try:
                add(msg)
            except ImageTooLargeError as exc:
                self._warn(f"image_too_large.{name}", f"camera '{name}': {exc}")
            except ImageError as exc:
                self._warn(f"bad_image.{name}", f"camera '{name}': {exc}")
            except OutOfOrderError as exc:
                self._warn("out_of_order", str(exc))
            self._after_input()
        return callback

    def _on_joints(self, msg: JointState) -> None:
        stamp = to_sec(msg.header.stamp)
        try:
            if not self._stamp_refused(stamp, "joint_states", "joint_states"):
                self.pipeline.add_joint_state(stamp, msg.name, msg.position,
                                              msg.velocity if len(msg.velocity) else None)
        except JointStateError as exc:
            self._warn("bad_joint_state", f"joint_states: {exc}")
        except OutOfOrderError as exc:
            self._warn("out_of_order", str(exc))
        self._after_input()

    def _after_input(self) -> None:
        if self.pipeline.take_reset():
            self.problems.problem("time_jump", "input stamps jumped backwards")
            self.limiter.reset()
            self.get_logger().warning("input stamps jumped backwards (bag loop or clock reset): "
                                      "synchronisation state cleared")
        now = now_sec(self)
        decision = self.limiter.decide(now)
        if decision.clock_jumped:
            self._cancel_flush()  # armed on the old timeline, it might never come due
        if decision.publish:
            if self._publish():
                self.limiter.published(now)
        elif self.flush_timer is None:
            self.flush_timer = self.create_timer(decision.wait, self._flush)

    def _cancel_flush(self) -> None:
        if self.flush_timer is not None:
            self.destroy_timer(self.flush_timer)
            self.flush_timer = None

    def _flush(self) -> None:
        self._cancel_flush()  # one-shot
        self._after_input()

    def _on_instruction(self, msg: String) -> None:
        self.pipeline.instruction = msg.data

    def _publish(self) -> bool:
        obs = self.pipeline.poll(compose=False)
        if obs is None:
            return False
        msg = observation_to_msg(obs, self.params["layout"], self.params["frame_id"])
        self.pub.publish(msg)
        self.published += 1
        self.rate.tick()
        return True

    def _diagnostics(self) -> None:
        self.diag_pub.publish(diagnostic_array(self, "inputs", self.problems, {
            "observations_published": self.published, "rate_hz": f"{self.rate.rate():.2f}",
            "time_resets": self.pipeline.resets}))


def main(args=None) -> int:
    return run_node(PerceptionNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
