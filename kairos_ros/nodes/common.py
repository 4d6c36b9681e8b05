"""rclpy glue shared by every node: parameters from a schema, the main() shape, conversions."""
from __future__ import annotations

import os
import sys
from typing import Callable

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from kairos_ros.core.image import ImageError, image_to_rgb, rgb_to_image_fields
from kairos_ros.core.realtime import freeze_startup_objects, thaw_objects, tune_allocator
from kairos_ros.core.params import ParameterError, ParamSpec, ros_type_name, validate_params

try:  # Jazzy and later; Humble raises plain exceptions at shutdown instead.
    from rclpy.executors import ExternalShutdownException
except ImportError:  # pragma: no cover - Humble
    ExternalShutdownException = RuntimeError  # type: ignore[assignment,misc]

_ROS_TYPES = {
    "bool": Parameter.Type.BOOL,
    "integer": Parameter.Type.INTEGER,
    "double": Parameter.Type.DOUBLE,
    "string": Parameter.Type.STRING,
    "string_array": Parameter.Type.STRING_ARRAY,
    "double_array": Parameter.Type.DOUBLE_ARRAY,
    "integer_array": Parameter.Type.INTEGER_ARRAY,
}
# Parameters every node has that the schemas do not own.
_FOREIGN = ("use_sim_time", "qos_overrides.", "start_type_description_service")


def declare_schema(node: Node, schema: list[ParamSpec]) -> dict:
    """Declare every parameter of the schema, read them, validate them; raise ParameterError."""
    raw = {}
    for spec in schema:
        rtype = _ROS_TYPES[ros_type_name(spec)]
        text = spec.description
        if spec.choices:
            text += f" One of {list(spec.choices)}."
        if spec.min is not None or spec.max is not None:
            text += f" Range [{spec.min}, {spec.max}]."
        desc = ParameterDescriptor(description=text, read_only=spec.read_only)
        default = spec.default
        empty = default is None or (isinstance(default, (list, tuple)) and len(default) == 0)
        try:
            if empty:
                node.declare_parameter(spec.name, rtype, desc)
            else:
                if rtype == Parameter.Type.DOUBLE and isinstance(default, int):
                    default = float(default)
                node.declare_parameter(spec.name, default, desc)
        except Exception as exc:  # wrong type in a params file or on the command line
            raise ParameterError(f"parameter '{spec.name}': {exc}") from exc
        try:
            value = node.get_parameter(spec.name).value
        except Exception:  # declared by type with no value given (ParameterUninitializedException)
            value = None
        if value is not None:
            raw[spec.name] = list(value) if isinstance(value, (list, tuple, np.ndarray)) else value
    overrides = getattr(node, "_parameter_overrides", {}) or {}
    known = {spec.name for spec in schema}
    for name in overrides:
        if name not in known and not name.startswith(_FOREIGN):
            raise ParameterError(f"unknown parameter '{name}' for node '{node.get_name()}' "
                                 f"(known: {sorted(known)})")
    return validate_params(schema, raw)


def run_node(factory: Callable[[], Node], args=None, executor_factory=None) -> int:
    """The main() shape every node shares: build, spin, and always clean up.

    Before the middleware starts, glibc is told to keep large blocks in the heap (core.realtime):
    frame-sized messages otherwise page-fault their buffers in on every message. Setting
    KAIROS_ALLOCATOR_TUNING=0 in the environment keeps the C library's defaults. Once the node is
    built, what start-up allocated is frozen out of the garbage collector's scans.
    """
    if os.environ.get("KAIROS_ALLOCATOR_TUNING", "1") != "0":
        tune_allocator()
    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = factory()
        freeze_startup_objects()  # the model and modules are never garbage: keep GC pauses short
        executor = executor_factory() if executor_factory else rclpy.executors.SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except ParameterError as exc:
        print(f"[ERROR] refusing to start: {exc}", file=sys.stderr, flush=True)
        code = 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            close = getattr(node, "close", None)
            if close:
                close()
            node.destroy_node()
        rclpy.try_shutdown()
        thaw_objects()  # what holds the DDS participant may sit in a cycle: let it be freed now
    return code


def warn_problem(node: Node, problems, key: str, message: str, note: str = "") -> None:
    """Count a problem under `key` in a core.diagnostics.ProblemCounter and log a warning when the
    counter says it is time (throttled), with the running count."""
    if problems.problem(key, message):
        node.get_logger().warning(f"{message} ({note}{problems.counts()[key]} so far)")


def now_sec(node: Node) -> float:
    """The node's clock (sim time when use_sim_time) in seconds."""
    return node.get_clock().now().nanoseconds * 1e-9


def to_sec(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def to_time(seconds: float) -> Time:
    sec = int(np.floor(seconds))
    nsec = int(round((seconds - sec) * 1e9))
    if nsec >= 1_000_000_000:
        sec, nsec = sec + 1, nsec - 1_000_000_000
    return Time(sec=max(sec, 0), nanosec=nsec if sec >= 0 else 0)


def to_duration(seconds: float) -> Duration:
    sec = int(np.floor(seconds))
    nsec = int(round((seconds - sec) * 1e9))
    if nsec >= 1_000_000_000:
        sec, nsec = sec + 1, nsec - 1_000_000_000
    return Duration(sec=sec, nanosec=nsec)


def _load_cv_bridge():
    try:
        from cv_bridge import CvBridge, CvBridgeError
    except ImportError:  # not on PyPI: only a ROS install provides it
        return None
    return CvBridge(), CvBridgeError


_CV_BRIDGE = None


def cv_bridge_available() -> bool:
    global _CV_BRIDGE
    if _CV_BRIDGE is None:
        _CV_BRIDGE = _load_cv_bridge() or False
    return bool(_CV_BRIDGE)


def image_msg_to_rgb(msg: Image, use_cv_bridge: bool = False) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB; raises core.image.ImageError on bad data.

    With use_cv_bridge and cv_bridge importable, cv_bridge converts a frame that the project's
    converter has already validated (encoding, size, step): both follow the same semantics.
    """
    rgb = image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
    if use_cv_bridge and cv_bridge_available():
        bridge, bridge_error = _CV_BRIDGE
        try:
            return np.ascontiguousarray(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
        except bridge_error as exc:
            raise ImageError(f"cv_bridge: {exc}") from exc
    return rgb


def rgb_to_image_msg(rgb: np.ndarray, stamp: Time, frame_id: str = "") -> Image:
    fields = rgb_to_image_fields(rgb)
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = fields["height"], fields["width"]
    msg.encoding, msg.is_bigendian, msg.step = fields["encoding"], fields["is_bigendian"], fields["step"]
    msg.data = fields["data"]
    return msg


def diagnostic_array(node: Node, name: str, counter, extra: dict | None = None) -> DiagnosticArray:
    """One DiagnosticStatus from a core.diagnostics.ProblemCounter (plus extra key/values)."""
    level, message, values = counter.status()
    status = DiagnosticStatus()
    status.level = bytes([int(level)])
    status.name = f"{node.get_name()}: {name}"
    status.message = message
    status.hardware_id = node.get_fully_qualified_name()
    items = dict(values)
    items.update({f"count.{k}": str(v) for k, v in counter.counts().items()})
    items.update({k: str(v) for k, v in (extra or {}).items()})
    status.values = [KeyValue(key=str(k), value=str(v)) for k, v in items.items()]
    out = DiagnosticArray()
    out.header.stamp = node.get_clock().now().to_msg()
    out.status = [status]
    return out
