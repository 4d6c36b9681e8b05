"""Helpers for multi-process tests: real nodes in child processes, a listener in the test process."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSDurabilityPolicy, QoSProfile
from waiting import wait_for  # noqa: F401 (the tests import it from here too)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def send_until(send, condition, timeout: float = 20.0, resend: float = 1.0) -> bool:
    """Call send() (publish an input), again every `resend` s, until condition() holds or `timeout`
    has passed; the result is condition()'s. For an input whose effect is the condition, when one
    message may be lost or refused while the graph is still settling (a best-effort subscription, a
    joint state gone stale under load)."""
    deadline = time.monotonic() + timeout
    while True:
        send()
        if wait_for(condition, max(0.0, min(resend, deadline - time.monotonic())), 0.02):
            return True
        if time.monotonic() >= deadline:
            return False


class NodeProcess:
    """One node in its own process, its output captured in a log file."""

    def __init__(self, module: str, name: str, params: dict | None = None, param_files=(), remaps=()):
        from kairos_ros.bringup.graph import ProcessSpec
        from kairos_ros.bringup.supervisor import command_for

        spec = ProcessSpec(name, name, module, list(param_files), dict(params or {}), list(remaps))
        self.name = name
        self.log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", delete=False, mode="w")
        self.proc = subprocess.Popen(command_for(spec), stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Listener:
    """A node in the test process that records messages per topic and publishes test input."""

    def __init__(self, name: str = "test_listener"):
        if not rclpy.ok():
            rclpy.init(args=[])
        self.node = rclpy.create_node(name)
        self.msgs = defaultdict(list)
        self.lock = threading.Lock()
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def record(self, msg_type, topic: str, latched: bool = False) -> None:
        qos = QoSProfile(depth=500, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL if latched else
                         QoSDurabilityPolicy.VOLATILE)

        def callback(msg, topic=topic):
            with self.lock:
                self.msgs[topic].append((time.monotonic(), msg))
        self.node.create_subscription(msg_type, topic, callback, qos)

    def got(self, topic: str) -> list:
        with self.lock:
            return [m for _, m in self.msgs[topic]]

    def clear(self) -> None:
        with self.lock:
            self.msgs.clear()

    def publisher(self, msg_type, topic: str):
        return self.node.create_publisher(msg_type, topic, 50)

    def wait_nodes(self, names, timeout: float = 60.0) -> bool:
        return wait_for(lambda: set(names) <= set(self.node.get_node_names()), timeout, 0.1)

    def wait_subscriptions(self, need: dict, timeout: float = 60.0) -> bool:
        """Wait until each topic has at least the given number of subscriptions (any node)."""
        return wait_for(lambda: all(self.node.count_subscribers(t) >= n for t, n in need.items()), timeout, 0.1)

    def wait_subscribers(self, pub, timeout: float = 20.0) -> bool:
        return wait_for(lambda: pub.get_subscription_count() > 0, timeout)

    def wait_matched(self, need: dict, timeout: float = 30.0) -> bool:
        """Wait until each of this node's publishers has matched at least the given number of
        subscriptions: DDS matching as the publisher sees it, which decides whether a message
        published now reaches them (the graph can list a subscription before that)."""
        return wait_for(lambda: all(pub.get_subscription_count() >= n for pub, n in need.items()), timeout)

    def barrier(self, topic: str, since: int, send, is_marker=lambda msg: True, timeout: float = 20.0,
                resend: float = 1.0) -> list:
        """The end of a negative check ("that input must cause nothing on `topic`"), without a fixed
        sleep. After the input that must have no effect, `send()` a valid marker input through the
        same publisher(s), again every `resend` s, until its effect (a message on `topic` for which
        `is_marker` holds) arrives; return the messages on `topic` from index `since` that arrived
        before it. DDS delivers one publisher's messages to a subscriber in order (best effort may drop,
        never reorders), a node handles one subscription's messages in order and its own publisher
        delivers in order too, so whatever the earlier input caused was published before the
        marker's effect: it is in the returned list or nowhere. AssertionError when no marker
        has an effect within `timeout`."""
        found = []

        def arrived() -> bool:
            msgs = self.got(topic)[since:]
            hit = next((i for i, m in enumerate(msgs) if is_marker(m)), None)
            if hit is not None and not found:
                found.append(msgs[:hit])
            return bool(found)
        assert send_until(send, arrived, timeout, resend), \
            f"barrier: no marker's effect arrived on {topic} within {timeout} s"
        return found[0]

    def diagnostics_values(self, node_name: str) -> dict:
        """Key/values of the newest /diagnostics status from the named node."""
        out = {}
        for msg in self.got("/diagnostics"):
            for st in msg.status:
                if st.name.startswith(node_name + ":"):
                    out = {kv.key: kv.value for kv in st.values}
                    out["_message"] = st.message
                    out["_level"] = st.level
        return out

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.thread.join(timeout=2.0)
        self.node.destroy_node()


def python() -> str:
    return sys.executable
