"""Faults around a running adapter, over DDS: the world model dies (watchdog holds, then only
fresh chunks resume), an e-stop latches until reset, and nothing reaches the controller unarmed."""
import os
import signal
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from integration.rosutil import Listener, NodeProcess, wait_for
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib.rostime import to_time

SPEC = load_embodiment("single_arm")
CAM = "/safety/cam/image_raw"
CTRL, PREVIEW = "/safety/controller", "/kairos/trajectory_preview"


def _world_model():
    return NodeProcess("kairos_ros.nodes.world_model_node", "world_model",
                       {"embodiment": "single_arm", "backend": "hold", "horizon": 10})


@pytest.fixture(scope="module")
def graph():
    listener = Listener("safety_listener")
    listener.record(JointTrajectory, CTRL)
    listener.record(JointTrajectory, PREVIEW)
    listener.record(DiagnosticArray, "/diagnostics")
    nodes = {
        "perception": NodeProcess("kairos_ros.nodes.perception_node", "perception",
                                  {"embodiment": "single_arm", "camera_topics": [CAM], "layout": "single",
                                   "tile_width": 32, "tile_height": 32, "rate_hz": 20.0}),
        "world_model": _world_model(),
        "adapter": NodeProcess("kairos_ros.nodes.adapter_node", "adapter",
                               {"embodiment": "single_arm", "trajectory_topic": CTRL, "watchdog_timeout": 0.5,
                                "diagnostics_period": 0.2}),
    }
    assert listener.wait_nodes(list(nodes), 60), "\n".join(n.output() for n in nodes.values())
    listener.img = listener.publisher(Image, CAM)
    listener.js = listener.publisher(JointState, "/joint_states")
    listener.estop = listener.publisher(Bool, "/kairos/estop")
    need = {CAM: 1, "/joint_states": 2, "/kairos/observation": 1, "/kairos/action_chunk": 1, "/kairos/estop": 1}
    assert listener.wait_subscriptions(need), {t: listener.node.count_subscribers(t) for t in need}
    listener.nodes = nodes
    yield listener
    for n in listener.nodes.values():
        n.stop()
    listener.close()


def stream(listener, seconds: float, rate: float = 20.0):
    mid = (SPEC.lower + SPEC.upper) / 2
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        stamp = to_time(listener.node.get_clock().now().nanoseconds * 1e-9)
        js = JointState(name=list(SPEC.joint_names), position=[float(x) for x in mid])
        js.header.stamp = stamp
        img = Image(height=24, width=32, encoding="rgb8", step=96, data=bytes(np.zeros(24 * 96, np.uint8)))
        img.header.stamp = stamp
        listener.js.publish(js)
        listener.img.publish(img)
        time.sleep(1.0 / rate)


def stream_until(listener, condition, timeout: float = 20.0) -> bool:
    """The robot's inputs at 20 Hz until condition() holds (checked every 0.25 s) or `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        stream(listener, 0.25)
    return bool(condition())


def adapter(listener) -> dict:
    return listener.diagnostics_values("adapter")


def is_hold(traj) -> bool:
    return len(traj.points) == 1 and all(v == 0.0 for v in traj.points[0].velocities)


def call(listener, srv, name, req):
    client = listener.node.create_client(srv, name)
    assert client.wait_for_service(timeout_sec=20)
    fut = client.call_async(req)
    assert wait_for(fut.done, 10)
    return fut.result()


def test_dry_run_then_armed(graph):
    assert stream_until(graph, lambda: len(graph.got(PREVIEW)) >= 3), "no preview trajectory in dry run"
    assert not graph.got(CTRL), "an unarmed adapter sent to the controller"
    assert call(graph, SetBool, "/adapter/arm", SetBool.Request(data=True)).success
    n = len(graph.got(CTRL))
    assert stream_until(graph, lambda: len(graph.got(CTRL)) > n), "an armed adapter sent nothing"


def test_world_model_killed_then_restarted(graph):
    stream(graph, 0.5)
    os.killpg(graph.nodes["world_model"].proc.pid, signal.SIGKILL)
    graph.nodes["world_model"].proc.wait()
    graph.clear()
    stream(graph, 1.5)  # observations keep coming, chunks do not
    trajs = graph.got(CTRL)
    holds = [t for t in trajs if is_hold(t)]
    assert len(holds) == 1 and len(trajs) == 1, f"expected exactly one hold, got {len(trajs)} trajectories"
    graph.nodes["world_model"] = _world_model()
    assert graph.wait_nodes(["world_model"], 60)
    graph.clear()
    # The new process is in the graph before DDS has matched it with perception and the adapter
    # (the killed one's endpoints still count until its lease ends, so counts cannot tell): keep
    # the robot's inputs coming until fresh chunks are executed, for up to 20 s.
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline and not [t for t in graph.got(CTRL) if len(t.points) > 1]:
        stream(graph, 0.5)
    assert [t for t in graph.got(CTRL) if len(t.points) > 1], "execution did not resume with fresh chunks"


def test_estop_latches_until_reset(graph):
    assert stream_until(graph, lambda: graph.got(CTRL) or graph.got(PREVIEW)), "nothing is executed"
    n = len(graph.got(CTRL))
    graph.estop.publish(Bool(data=True))
    assert wait_for(lambda: adapter(graph).get("estop") == "True", 10), adapter(graph)
    if adapter(graph).get("armed") == "True":  # the e-stop's own hold reaches the controller first
        assert wait_for(lambda: [t for t in graph.got(CTRL)[n:] if is_hold(t)], 10), "no hold at the e-stop"
    n = len(graph.got(CTRL))

    def refused() -> int:
        return int(adapter(graph).get("count.refused_estop", 0))
    # Chunks keep coming and are refused at the e-stop gate: five more of them, and none is sent.
    before = refused()
    assert stream_until(graph, lambda: refused() >= before + 5), adapter(graph)
    assert not graph.got(CTRL)[n:], "trajectories flowed during a latched e-stop"
    graph.estop.publish(Bool(data=False))  # only the service resets it
    before = refused()
    assert stream_until(graph, lambda: adapter(graph).get("estop_asserted") == "False" and refused() >= before + 3), \
        adapter(graph)
    assert adapter(graph).get("estop") == "True", "releasing the e-stop topic reset the latch"
    assert not graph.got(CTRL)[n:]
    assert not call(graph, SetBool, "/adapter/arm", SetBool.Request(data=True)).success
    assert call(graph, Trigger, "/adapter/reset_estop", Trigger.Request()).success
    assert stream_until(graph, lambda: graph.got(CTRL)[n:]), "execution did not resume after the reset"
