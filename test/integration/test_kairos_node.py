"""The world-model node on the `kairos` backend (kairos-nano, random weights explicitly allowed:
no trained weights exist on these machines), over DDS: chunks and predicted frames flow, the status
says loudly that the weights are random, Imagine answers honestly, bad input is refused or dropped
(counted, world state reset, no chunk), and ResetWorldState empties the streaming world state."""
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionClient
from sensor_msgs.msg import Image, JointState

from integration.rosutil import Listener, NodeProcess, wait_for
from kairos_msgs.action import Imagine
from kairos_msgs.msg import ActionChunk, Observation, PredictedFuture, WorldModelStatus
from kairos_msgs.srv import ResetWorldState
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib.rostime import to_duration, to_time

SPEC = load_embodiment("dual_arm")
CAM = "/kn/cam/image_raw"
MID = (SPEC.lower + SPEC.upper) / 2


@pytest.fixture(scope="module")
def graph():
    listener = Listener("kairos_node_listener")
    for typ, topic in ((ActionChunk, "/kairos/action_chunk"), (WorldModelStatus, "/kairos/status"),
                       (PredictedFuture, "/kairos/predicted_future"), (DiagnosticArray, "/diagnostics")):
        listener.record(typ, topic)
    nodes = [
        NodeProcess("kairos_ros.nodes.perception_node", "perception",
                    {"embodiment": "dual_arm", "camera_topics": [CAM], "layout": "single", "tile_width": 32,
                     "tile_height": 32, "rate_hz": 10.0}),
        NodeProcess("kairos_ros.nodes.world_model_node", "world_model",
                    {"embodiment": "dual_arm", "backend": "kairos", "allow_random_weights": True, "flow_steps": 2,
                     "horizon": 8, "status_period": 0.2, "num_predicted_frames": 2, "image_width": 32,
                     "image_height": 32, "chunk_first": True,  # the staged path (chunk before frames)
                     "latency_budget": 0.0005}),  # below any real chunk time: every chunk is slow
    ]
    assert listener.wait_nodes(["perception", "world_model"], 90), "\n".join(n.output() for n in nodes)
    listener.img = listener.publisher(Image, CAM)
    listener.js = listener.publisher(JointState, "/joint_states")
    listener.obs = listener.publisher(Observation, "/kairos/observation")
    assert listener.wait_subscriptions({CAM: 1, "/joint_states": 1, "/kairos/observation": 1})
    yield listener, nodes
    for n in nodes:
        assert n.stop() == 0, n.output()[-3000:]
    listener.close()


def now(listener) -> float:
    return listener.node.get_clock().now().nanoseconds * 1e-9


def feed(listener, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        stamp = to_time(now(listener))
        js = JointState(name=list(SPEC.joint_names), position=[float(x) for x in MID])
        js.header.stamp = stamp
        img = Image(height=32, width=32, encoding="rgb8", step=96, data=bytes(np.full(32 * 96, 90, np.uint8)))
        img.header.stamp = stamp
        listener.js.publish(js)
        listener.img.publish(img)
        time.sleep(0.1)


def feed_until(listener, condition, timeout: float = 60.0) -> bool:
    """Frames and joint states at 10 Hz until condition() holds or `timeout` (a chunk of the
    kairos backend takes over a second on a loaded 2-core machine)."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        feed(listener, 0.1)
    return bool(condition())


def world_state_frames(listener, since: int = 0) -> int:
    """world_state_frames of the newest status from index `since` on (-1: none yet)."""
    statuses = listener.got("/kairos/status")[since:]
    return statuses[-1].world_state_frames if statuses else -1


def observation(listener, positions=None, h=32, w=32):
    stamp = to_time(now(listener))
    msg = Observation(camera_names=["cam"], layout="single", instruction="pick up the cube")
    msg.header.stamp = stamp
    msg.images = [Image(height=h, width=w, encoding="rgb8", step=3 * w, data=bytes(np.full(h * w * 3, 50, np.uint8)))]
    msg.images[0].header.stamp = stamp
    msg.joint_state = JointState(name=list(SPEC.joint_names),
                                 position=[float(x) for x in (MID if positions is None else positions)])
    msg.joint_state.header.stamp = stamp
    return msg


def count(listener, key) -> int:
    return int(listener.diagnostics_values("world_model").get(f"count.{key}", 0))


def test_chunks_and_frames_flow_with_random_weights_labelled(graph):
    listener, nodes = graph
    assert feed_until(listener, lambda: len(listener.got("/kairos/action_chunk")) >= 3 and
                      listener.got("/kairos/predicted_future") and world_state_frames(listener) >= 2), \
        nodes[1].output()[-2000:]
    chunk = listener.got("/kairos/action_chunk")[-1]
    assert chunk.backend == "kairos" and "RANDOM WEIGHTS" in chunk.model and chunk.horizon == 8
    assert chunk.dim == len(SPEC.slot_names) and list(chunk.slot_names) == list(SPEC.slot_names)
    future = listener.got("/kairos/predicted_future")[-1]
    assert len(future.frames) == 2 and len(future.frame_times) == 2
    assert all((f.width, f.height, f.encoding) == (32, 32, "rgb8") for f in future.frames)
    assert wait_for(lambda: "RANDOM WEIGHTS" in listener.got("/kairos/status")[-1].message, 5)
    status = listener.got("/kairos/status")[-1]
    assert status.health >= WorldModelStatus.WARN and status.world_state_frames >= 2


def test_latency_budget_overruns_are_counted(graph):
    listener, nodes = graph
    before = count(listener, "slow_inference")
    assert feed_until(listener, lambda: count(listener, "slow_inference") > before), nodes[1].output()[-2000:]
    last = listener.diagnostics_values("world_model").get("last.slow_inference", "")  # (shown while recent)
    assert "ms (> latency_budget 0.5 ms)" in last, last


def test_imagine_says_what_it_can(graph):
    listener, _ = graph
    since = len(listener.got("/kairos/status"))
    assert feed_until(listener, lambda: world_state_frames(listener, since) > 0)
    goal = Imagine.Goal()
    c = goal.candidate
    c.embodiment, c.horizon, c.dim = SPEC.name, 4, len(SPEC.slot_names)
    c.slot_names = list(SPEC.slot_names)
    c.values = [float(x) for x in np.tile(MID, 4)]
    c.step_period = to_duration(0.1)
    client = ActionClient(listener.node, Imagine, "/world_model/imagine")
    assert client.wait_for_server(timeout_sec=20)
    send = client.send_goal_async(goal)
    assert wait_for(send.done, 10) and send.result().accepted
    result = send.result().get_result_async()
    assert wait_for(result.done, 30)
    res = result.result().result
    assert res.success, res.message
    assert len(res.future.frames) == 2 and res.future.chunk.horizon == 4
    assert "do not depend on the candidate" in res.message and "candidate_error=" in res.message
    assert list(res.score_names) == ["candidate_error", "model_chunk_error", "distance_to_model_chunk"]
    assert len(res.scores) == 3 and all(np.isfinite(res.scores)) and res.scores[2] >= 0
    shown = f"candidate_error={res.scores[0]:.4f}"  # the fields and the message say the same
    assert shown in res.message


def test_bad_input_is_refused_or_dropped(graph):
    listener, nodes = graph
    for key, h, w, sizes in (("bad_observation", 24, 32, ("32x24",)),  # not a multiple of 16 (composition)
                             ("bad_image_size", 32, 48, ("48x32", "32x32"))):  # not image_width x image_height
        before = count(listener, key)
        listener.obs.publish(observation(listener, h=h, w=w))
        assert wait_for(lambda: count(listener, key) > before, 10), listener.diagnostics_values("world_model")
        assert all(x in listener.diagnostics_values("world_model")[f"last.{key}"] for x in sizes)
    for positions, key in ((np.where(np.arange(len(MID)) == 0, np.nan, MID), "non_finite_input"),
                           (np.where(np.arange(len(MID)) == 0, 3e38, MID), "backend_error")):  # overflows the model
        since = len(listener.got("/kairos/status"))
        assert feed_until(listener, lambda: world_state_frames(listener, since) > 0)
        before, dropped = count(listener, key), listener.got("/kairos/status")[-1].dropped
        listener.clear()
        msg = observation(listener, positions)
        listener.obs.publish(msg)
        assert wait_for(lambda: count(listener, key) > before, 20), (key, nodes[1].output()[-2000:])
        assert wait_for(lambda: any(s.dropped > dropped for s in listener.got("/kairos/status")), 5)
        assert wait_for(lambda: any(s.world_state_frames == 0 for s in listener.got("/kairos/status")), 5)  # reset
        assert not [c for c in listener.got("/kairos/action_chunk") if c.header.stamp == msg.header.stamp]
    assert nodes[1].alive()


def test_reset_world_state_empties_it(graph):
    listener, _ = graph
    since = len(listener.got("/kairos/status"))
    assert feed_until(listener, lambda: world_state_frames(listener, since) > 0)  # something to empty
    client = listener.node.create_client(ResetWorldState, "/world_model/reset_world_state")
    assert client.wait_for_service(timeout_sec=20)
    future = client.call_async(ResetWorldState.Request())
    assert wait_for(future.done, 10) and future.result().success
    listener.clear()
    assert wait_for(lambda: any(s.world_state_frames == 0 for s in listener.got("/kairos/status")), 10)
