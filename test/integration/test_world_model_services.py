"""The world model's services and Imagine action, called over DDS like a user's client would."""
import time

import numpy as np
import pytest
from rclpy.action import ActionClient
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from integration.rosutil import Listener, NodeProcess, wait_for
from kairos_msgs.action import Imagine
from kairos_msgs.msg import ActionChunk, Observation, WorldModelStatus
from kairos_msgs.srv import ResetWorldState, SetInstruction
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib.rostime import to_duration, to_time

SPEC = load_embodiment("single_arm")
CAM = "/svc/cam/image_raw"


@pytest.fixture(scope="module")
def graph():
    listener = Listener("services_listener")
    for topic, typ in (("/kairos/observation", Observation), ("/kairos/action_chunk", ActionChunk),
                       ("/kairos/status", WorldModelStatus)):
        listener.record(typ, topic)
    listener.record(String, "/kairos/instruction", latched=True)
    nodes = [
        NodeProcess("kairos_ros.nodes.perception_node", "perception",
                    {"embodiment": "single_arm", "camera_topics": [CAM], "layout": "single", "tile_width": 32,
                     "tile_height": 32, "rate_hz": 50.0}),
        NodeProcess("kairos_ros.nodes.world_model_node", "world_model",
                    {"embodiment": "single_arm", "backend": "extrapolate", "horizon": 6, "num_predicted_frames": 3,
                     "status_period": 0.2, "instruction": "pick up the cube"}),
    ]
    assert listener.wait_nodes(["perception", "world_model"], 60), "\n".join(n.output() for n in nodes)
    listener.img = listener.publisher(Image, CAM)
    listener.js = listener.publisher(JointState, "/joint_states")
    assert listener.wait_subscriptions({CAM: 1, "/joint_states": 1, "/kairos/observation": 2})
    yield listener, nodes
    for n in nodes:
        assert n.stop() == 0, n.output()[-3000:]
    listener.close()


def feed(listener, count=5, start=None):
    t0 = listener.node.get_clock().now().nanoseconds * 1e-9 if start is None else start
    mid = (SPEC.lower + SPEC.upper) / 2
    for i in range(count):
        stamp = to_time(t0 + 0.05 * i)
        js = JointState(name=list(SPEC.joint_names), position=[float(x) for x in mid + 0.01 * i])
        js.header.stamp = stamp
        img = Image(height=24, width=32, encoding="rgb8", step=96, data=bytes(np.full(24 * 96, 60 + i, np.uint8)))
        img.header.stamp = stamp
        listener.js.publish(js)
        listener.img.publish(img)
        time.sleep(0.06)


def call(listener, srv_type, name, request):
    client = listener.node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=20), f"service {name} not available"
    future = client.call_async(request)
    assert wait_for(future.done, 10), f"{name} did not answer"
    return future.result()


def test_initial_instruction_is_broadcast_and_reaches_observations(graph):
    listener, _ = graph
    assert wait_for(lambda: any(m.data == "pick up the cube" for m in listener.got("/kairos/instruction")), 10)

    def fed_and_seen():  # inputs keep coming until perception (matched by now) has used the instruction
        feed(listener, count=2)
        return any(o.instruction == "pick up the cube" for o in listener.got("/kairos/observation"))
    assert wait_for(fed_and_seen, 20)


def test_set_instruction(graph):
    listener, _ = graph
    res = call(listener, SetInstruction, "/world_model/set_instruction", SetInstruction.Request(instruction="stack the cups"))
    assert res.success, res.message
    assert wait_for(lambda: any(m.data == "stack the cups" for m in listener.got("/kairos/instruction")), 10)

    def fed_and_seen():  # inputs keep coming until perception has the new instruction too
        feed(listener, count=2)
        return any(o.instruction == "stack the cups" for o in listener.got("/kairos/observation"))
    assert wait_for(fed_and_seen, 20)
    res = call(listener, SetInstruction, "/world_model/set_instruction", SetInstruction.Request(instruction="x" * 5000))
    assert not res.success and "5000" in res.message


def test_reset_world_state(graph):
    listener, _ = graph
    feed(listener, 8)
    assert wait_for(lambda: any(s.world_state_frames >= 3 for s in listener.got("/kairos/status")), 10)
    res = call(listener, ResetWorldState, "/world_model/reset_world_state", ResetWorldState.Request())
    assert res.success
    listener.clear()
    assert wait_for(lambda: any(s.world_state_frames == 0 for s in listener.got("/kairos/status")), 10)


def _candidate(embodiment="single_arm", dim=None, horizon=4):
    dim = len(SPEC.slot_names) if dim is None else dim
    goal = Imagine.Goal()
    c = goal.candidate
    c.embodiment, c.horizon, c.dim = embodiment, horizon, dim
    c.slot_names = list(SPEC.slot_names)[:dim]
    c.values = [float(x) for x in np.tile(((SPEC.lower + SPEC.upper) / 2)[:dim], horizon)]
    c.step_period = to_duration(0.1)
    return goal


def _imagine(listener, goal):
    client = ActionClient(listener.node, Imagine, "/world_model/imagine")
    assert client.wait_for_server(timeout_sec=20)
    feedback = []
    send = client.send_goal_async(goal, feedback_callback=lambda fb: feedback.append(fb.feedback.progress))
    assert wait_for(send.done, 10)
    handle = send.result()
    assert handle.accepted
    result = handle.get_result_async()
    assert wait_for(result.done, 20)
    return result.result().result, feedback


def test_imagine_with_baseline(graph):
    listener, _ = graph
    n = len(listener.got("/kairos/action_chunk"))

    def fed_and_predicted():  # the world model has an observation: it predicts from it
        feed(listener, count=2)
        return len(listener.got("/kairos/action_chunk")) > n
    assert wait_for(fed_and_predicted, 20)
    result, feedback = _imagine(listener, _candidate())
    assert result.success, result.message
    assert len(result.future.frames) == 3 and len(result.future.frame_times) == 3
    assert result.future.chunk.horizon == 4 and list(result.future.chunk.slot_names) == list(SPEC.slot_names)
    assert feedback and feedback[-1] == pytest.approx(1.0)
    assert list(result.score_names) == [] and list(result.scores) == []  # a baseline scores nothing


def test_imagine_refuses_bad_candidate(graph):
    listener, _ = graph
    result, _ = _imagine(listener, _candidate(embodiment="dual_arm"))
    assert not result.success and "dual_arm" in result.message
    result, _ = _imagine(listener, _candidate(dim=3))
    assert not result.success
