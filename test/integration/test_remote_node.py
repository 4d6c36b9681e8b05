"""backend:=remote over DDS: a world-model node asks a real kairos-serve process for its chunks; when
the server dies the node publishes no chunk, the adapter's watchdog holds the robot, the link's state
shows in /diagnostics, and chunks resume once a server is back on the same port."""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from integration.rosutil import Listener, NodeProcess, wait_for
from kairos_msgs.msg import ActionChunk, Observation
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.types import JointStateData, ObservationData
from kairos_ros.lib.rostime import to_sec, to_time
from kairos_ros.nodes.convert import observation_to_msg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "remote"))
from serve_util import TOKEN, ServeProcess  # noqa: E402

SPEC = load_embodiment("aloha")
CTRL, OBS, CHUNKS = "/remote_test/controller", "/remote_test/observation", "/remote_test/action_chunk"
CAMERAS = ["head", "left_wrist", "right_wrist"]


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    server = ServeProcess()
    token_file = tmp_path_factory.mktemp("remote") / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    listener = Listener("remote_listener")
    for msg_type, topic in ((JointTrajectory, CTRL), (ActionChunk, CHUNKS), (DiagnosticArray, "/diagnostics")):
        listener.record(msg_type, topic)
    nodes = [
        NodeProcess("kairos_ros.nodes.world_model_node", "remote_world_model",
                    {"embodiment": "aloha", "backend": "remote", "horizon": 32, "remote_url": server.url,
                     "remote_token_file": str(token_file), "remote_reply_timeout": 0.5, "remote_backoff_max": 0.3,
                     "observation_topic": OBS, "chunk_topic": CHUNKS, "status_period": 0.2,
                     "num_predicted_frames": 0}),
        NodeProcess("kairos_ros.nodes.adapter_node", "remote_adapter",
                    {"embodiment": "aloha", "chunk_topic": CHUNKS, "trajectory_topic": CTRL,
                     "armed_on_start": True, "watchdog_timeout": 0.5}),
    ]
    assert listener.wait_nodes([n.name for n in nodes], 60), "\n".join(n.output() for n in nodes)
    listener.obs = listener.publisher(Observation, OBS)
    listener.js = listener.publisher(JointState, "/joint_states")
    assert listener.wait_subscriptions({OBS: 1, CHUNKS: 1, "/joint_states": 1})
    listener.server, listener.nodes, listener.sent = server, nodes, []
    yield listener
    for n in nodes:
        n.stop()
    listener.server.stop()
    listener.close()
    for n in nodes:
        assert TOKEN not in n.output()


def stream(rig, seconds: float, rate: float = 20.0) -> None:
    q = (SPEC.lower + SPEC.upper) / 2
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        now = rig.node.get_clock().now().nanoseconds * 1e-9
        js = JointState(name=list(SPEC.joint_names), position=[float(x) for x in q])
        js.header.stamp = to_time(now)
        tiles = [np.full(shape, 90, np.uint8) for shape in ((96, 128, 3), (48, 64, 3), (48, 64, 3))]  # robotwin
        obs = ObservationData(now, CAMERAS, tiles, JointStateData(now, list(SPEC.joint_names), q))
        rig.js.publish(js)
        rig.obs.publish(observation_to_msg(obs, "robotwin"))
        rig.sent.append(now)
        time.sleep(1.0 / rate)


def link(rig) -> dict:
    return rig.diagnostics_values("remote_world_model")


def stream_until(rig, predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stream(rig, 0.25)
        if predicate():
            return True
    return False


def is_hold(t) -> bool:
    return len(t.points) == 1 and all(v == 0.0 for v in t.points[0].velocities)


def test_remote_chunks_reach_the_robot_and_a_lost_link_holds_it(rig):
    assert stream_until(rig, lambda: [t for t in rig.got(CTRL) if len(t.points) > 1], 30.0), \
        "\n".join(n.output()[-3000:] for n in rig.nodes)
    chunks = rig.got(CHUNKS)
    assert chunks and all(c.backend == "remote" for c in chunks)
    assert all(to_sec(c.header.stamp) in rig.sent for c in chunks)  # the observation's own stamp
    assert wait_for(lambda: link(rig).get("remote.state") == "connected" and
                    link(rig).get("remote.rtt_p50_ms", "n/a") != "n/a", 5.0), link(rig)

    rig.server.kill()
    killed = rig.node.get_clock().now().nanoseconds * 1e-9
    rig.clear()
    stream(rig, 2.0)  # observations keep coming; chunks do not
    late = [c for c in rig.got(CHUNKS) if to_sec(c.header.stamp) > killed]
    assert not late, f"{len(late)} chunks for observations sent after the server died"
    trajs = rig.got(CTRL)
    assert trajs and is_hold(trajs[-1]), "the adapter's watchdog did not hold the robot"
    assert sum(is_hold(t) for t in trajs) == 1
    assert wait_for(lambda: link(rig).get("remote.state") in ("down", "connecting"), 5.0), link(rig)
    assert int(link(rig)["remote.failures"]) > 0

    rig.server = ServeProcess(port=rig.server.port)
    rig.clear()
    assert stream_until(rig, lambda: [t for t in rig.got(CTRL) if len(t.points) > 1], 20.0), \
        "execution did not resume once the server was back"
    assert wait_for(lambda: link(rig).get("remote.reconnects") == "1", 5.0), link(rig)
