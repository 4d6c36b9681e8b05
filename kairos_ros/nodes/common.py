"""rclpy glue shared by every node: parameters from a schema, the main() shape, image messages and
diagnostics. Seconds <-> Time/Duration conversion is lib/rostime.py (no rclpy)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from typing import Callable

# The parent as this module is imported, early in a node's life: run_node's parent watch compares
# against it (a parent that died before the watch was set up is then noticed too).
_PARENT_PID = os.getppid()

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
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


try:  # Humble and later
    from rclpy.signals import SignalHandlerOptions
    _NO_RCLPY_SIGNAL_HANDLERS = {"signal_handler_options": SignalHandlerOptions.NO}
except ImportError:  # pragma: no cover - an rclpy without the option keeps its handlers
    _NO_RCLPY_SIGNAL_HANDLERS = {}
# Seconds: an idle executor returns to Python this often, where a pending signal's handler runs (the
# middleware's wait is not interrupted by signals once rclpy's own handlers are not installed).
SIGNAL_POLL = 0.1


# This package's folder: a stop signal interrupts a node's construction only where its own Python
# code runs (StopSignals._handle).
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep


def _in_package(frame) -> bool:
    return frame is not None and os.path.realpath(frame.f_code.co_filename).startswith(_PACKAGE_DIR)


class StopSignals:
    """SIGINT and SIGTERM of a node process: the first one stops spinning, later ones are recorded.

    A Ctrl-C in a terminal reaches every process of the group, and `ros2 launch` forwards it once
    more (from a non-interactive shell) or sends SIGTERM after a timeout: a node then gets a second
    signal while it cleans up. Python's default handler raised KeyboardInterrupt in the middle of
    close()/destroy_node()/gc.collect() then; the process printed a traceback and died of the
    signal (exit code -2), read as a crash by the launch. run_node installs it instead of rclpy's
    own handlers, which would shut the middleware down before the node's clean-up could publish.
    """

    def __init__(self):
        self.received: list[int] = []
        self.cleaning = False
        self.installed = False
        # While spinning the first signal is only recorded and the spin loop ends at its next turn: a
        # KeyboardInterrupt raised there lands wherever Python runs next, e.g. inside rclpy's C++
        # conversion of a message being taken, which pybind11 reports as a RuntimeError ("Unable to
        # convert call argument") and the node died with exit code 1 instead of stopping cleanly.
        self.spinning = False
        self.interrupted = False  # construction was interrupted once already

    def install(self) -> bool:
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._handle)
        except ValueError:  # not the main thread (run_node called from a test's thread)
            return False
        self.installed = True
        return True

    def ignore(self) -> None:
        """Once cleaned up, ignore both signals for good: at exit the interpreter puts back the
        default action of every signal that has a Python handler, and a signal landing during
        its (slow, with torch loaded) finalisation would still end the process with -2 or -15."""
        if self.installed:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)

    def _handle(self, signum, frame) -> None:
        """During construction a signal ends it with KeyboardInterrupt (once), but only when it
        lands in this package's own Python code. Raised inside a library, e.g. in the middle of
        torch's import, where C++ calls back into Python, the exception crossed C++ and the
        process aborted (pybind11: std::terminate, exit code -6) or died of the signal (-2). Landing
        elsewhere it is recorded: construction goes on to the next line of this package's code
        that a later signal reaches, or to its end, and the spin loop then stops at once."""
        self.received.append(signum)
        if not self.cleaning and not self.spinning and not self.interrupted and _in_package(frame):
            self.interrupted = True
            raise KeyboardInterrupt  # ends the node's construction, as Ctrl-C always did


def watch_parent(on_death: Callable[[], None] | None = None, parent: int | None = None) -> str:
    """Make this process stop when its parent dies: how no node outlives `ros2 launch` when the
    launch itself gets SIGTERM (launch then exits without stopping its processes, ros2/launch#666)
    or is killed, or kairos-bringup is.

    On Linux the kernel sends SIGTERM (PR_SET_PDEATHSIG), which takes the same clean path as a
    SIGTERM from anywhere else. The kernel sends it when the *thread* that started this process
    exits, not the whole parent: launch and kairos-bringup start their processes from their main
    thread, so that is their exit; a parent that forks from a short-lived worker thread would stop
    its children early. The parent may already have died before the request was made: its pid is
    then no longer os.getppid(), and the process is stopped at once. Elsewhere a daemon thread
    polls os.getppid() and calls `on_death` (default: SIGTERM to this process) when it changes.
    KAIROS_PARENT_WATCH=0 in the environment turns this off. Returns "pdeathsig", "poll" or "off".
    """
    if os.environ.get("KAIROS_PARENT_WATCH", "1") == "0":
        return "off"
    parent = _PARENT_PID if parent is None else parent
    if on_death is None:
        def on_death():
            os.kill(os.getpid(), signal.SIGTERM)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            ok = libc.prctl(1, int(signal.SIGTERM), 0, 0, 0) == 0  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            ok = False
        if ok:
            if os.getppid() != parent:  # died before the request: the kernel will not tell
                on_death()
            return "pdeathsig"

    def poll():
        while os.getppid() == parent:
            threading.Event().wait(0.5)
        on_death()

    threading.Thread(target=poll, name="parent-watch", daemon=True).start()
    return "poll"


def run_node(factory: Callable[[], Node], args=None, executor_factory=None) -> int:
    """The main() shape every node shares: build, spin, and always clean up.

    Before the middleware starts, glibc is told to keep large blocks in the heap (core.realtime):
    frame-sized messages otherwise page-fault their buffers in on every message. Setting
    KAIROS_ALLOCATOR_TUNING=0 in the environment keeps the C library's defaults. Once the node is
    built, what start-up allocated is frozen out of the garbage collector's scans.

    SIGINT and SIGTERM both stop the node cleanly (exit code 0); a second signal during the
    clean-up is recorded and ignored, and both are ignored once it is done (StopSignals). The
    middleware context stays valid until the node's close() has run, so a node can still publish
    as it stops. The node also stops when its parent process dies (watch_parent;
    KAIROS_PARENT_WATCH=0 turns that off).
    """
    if os.environ.get("KAIROS_ALLOCATOR_TUNING", "1") != "0":
        tune_allocator()
    signals = StopSignals()
    installed = signals.install()
    watch_parent()
    # rclpy's own handlers would shut the context down at the first signal, before close() runs, and
    # a node that must still publish as it stops (an armed adapter's hold) could not. This process's
    # handler ends the spin instead; the context lives until the clean-up is done.
    rclpy.init(args=args, **(_NO_RCLPY_SIGNAL_HANDLERS if installed else {}))
    node = None
    code = 0
    try:
        try:
            node = factory()
            freeze_startup_objects()  # the model and modules are never garbage: keep GC pauses short
            executor = executor_factory() if executor_factory else rclpy.executors.SingleThreadedExecutor()
            executor.add_node(node)
            signals.spinning = installed  # from here a signal ends the loop below at its next turn
            while rclpy.ok() and not signals.received:
                executor.spin_once(timeout_sec=SIGNAL_POLL)  # returns to Python at least this often
        except ParameterError as exc:
            print(f"[ERROR] refusing to start: {exc}", file=sys.stderr, flush=True)
            code = 2
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
    except KeyboardInterrupt:  # the first signal landing in one of the handlers above
        pass
    finally:
        signals.cleaning = True  # from here on a signal is only recorded
        signals.spinning = False
        try:
            if node is not None:
                close = getattr(node, "close", None)
                if close:
                    close()
                node.destroy_node()
            rclpy.try_shutdown()
            thaw_objects()  # what holds the DDS participant may sit in a cycle: let it be freed now
        except KeyboardInterrupt:  # only where the handler could not be installed
            pass
        signals.ignore()
    return code


def warn_problem(node: Node, problems, key: str, message: str, note: str = "") -> None:
    """Count a problem under `key` in a core.diagnostics.ProblemCounter and log a warning when the
    counter says it is time (throttled), with the running count."""
    if problems.problem(key, message):
        node.get_logger().warning(f"{message} ({note}{problems.counts()[key]} so far)")


def now_sec(node: Node) -> float:
    """The node's clock (sim time when use_sim_time) in seconds."""
    return node.get_clock().now().nanoseconds * 1e-9


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
