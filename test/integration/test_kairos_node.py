"""The world-model node on the `kairos` backend (kairos-nano, random weights explicitly allowed:
no trained weights exist on these machines), over DDS: chunks flow, the status says loudly that
the weights are random, and ResetWorldState empties the streaming world state."""
import time

import numpy as np
import pytest
from sensor_msgs.msg import Image, JointState

from integration.rosutil import Listener, NodeProcess, wait_for
from kairos_msgs.msg import ActionChunk, WorldModelStatus
from kairos_msgs.srv import ResetWorldState
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.nodes.common import to_time

SPEC = load_embodiment("dual_arm")
CAM = "/kn/cam/image_raw"


@pytest.fixture(scope="module")
def graph():
    listener = Listener("kairos_node_listener")
    listener.record(ActionChunk, "/kairos/action_chunk")
    listener.record(WorldModelStatus, "/kairos/status")
    nodes = [
        NodeProcess("kairos_ros.nodes.perception_node", "perception",
                    {"embodiment": "dual_arm", "camera_topics": [CAM], "layout": "single", "tile_width": 32,
                     "tile_height": 32, "rate_hz": 10.0}),
        NodeProcess("kairos_ros.nodes.world_model_node", "world_model",
                    {"embodiment": "dual_arm", "backend": "kairos", "allow_random_weights": True, "flow_steps": 2,
                     "horizon": 8, "status_period": 0.2}),
    ]
    assert listener.wait_nodes(["perception", "world_model"], 90), "\n".join(n.output() for n in nodes)
    listener.img = listener.publisher(Image, CAM)
    listener.js = listener.publisher(JointState, "/joint_states")
    assert listener.wait_subscriptions({CAM: 1, "/joint_states": 1, "/kairos/observation": 1})
    yield listener, nodes
    for n in nodes:
        assert n.stop() == 0, n.output()[-3000:]
    listener.close()


def feed(listener, seconds):
    mid = (SPEC.lower + SPEC.upper) / 2
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        stamp = to_time(listener.node.get_clock().now().nanoseconds * 1e-9)
        js = JointState(name=list(SPEC.joint_names), position=[float(x) for x in mid])
        js.header.stamp = stamp
        img = Image(height=32, width=32, encoding="rgb8", step=96, data=bytes(np.full(32 * 96, 90, np.uint8)))
        img.header.stamp = stamp
        listener.js.publish(js)
        listener.img.publish(img)
        time.sleep(0.1)


def test_chunks_flow_with_random_weights_labelled(graph):
    listener, nodes = graph
    feed(listener, 3.0)
    assert wait_for(lambda: len(listener.got("/kairos/action_chunk")) >= 3, 20), nodes[1].output()[-2000:]
    chunk = listener.got("/kairos/action_chunk")[-1]
    assert chunk.backend == "kairos" and "RANDOM WEIGHTS" in chunk.model and chunk.horizon == 8 and chunk.dim == 14
    status = listener.got("/kairos/status")[-1]
    assert "RANDOM WEIGHTS" in status.message and status.health >= WorldModelStatus.WARN
    assert status.world_state_frames >= 2


def test_reset_world_state_empties_it(graph):
    listener, _ = graph
    client = listener.node.create_client(ResetWorldState, "/world_model/reset_world_state")
    assert client.wait_for_service(timeout_sec=20)
    future = client.call_async(ResetWorldState.Request())
    assert wait_for(future.done, 10) and future.result().success
    listener.clear()
    assert wait_for(lambda: any(s.world_state_frames == 0 for s in listener.got("/kairos/status")), 10)
