"""Bad input through real nodes over DDS: each node keeps running, counts the problem in
/diagnostics and produces nothing from the bad data."""
import math
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from integration.rosutil import Listener, NodeProcess, send_until, wait_for
from kairos_msgs.msg import ActionChunk, Observation
from kairos_ros.core.embodiment import load_embodiment, state_to_slots
from kairos_ros.lib.rostime import to_duration, to_time

SPEC = load_embodiment("single_arm")
CAM = "/bad/cam/image_raw"


@pytest.fixture(scope="module")
def graph():
    listener = Listener("bad_input_listener")
    for t, typ in (("/kairos/observation", Observation), ("/bad/traj", JointTrajectory),
                   ("/kairos/action_chunk", ActionChunk), ("/diagnostics", DiagnosticArray),
                   ("/bad/adapter_traj", JointTrajectory)):
        listener.record(typ, t)
    common = {"embodiment": "single_arm"}
    nodes = [
        NodeProcess("kairos_ros.nodes.perception_node", "perception",
                    {**common, "camera_topics": [CAM], "layout": "single", "tile_width": 32, "tile_height": 32,
                     "rate_hz": 200.0, "slop": 0.02, "diagnostics_period": 0.2}),
        NodeProcess("kairos_ros.nodes.world_model_node", "world_model",
                    {**common, "backend": "hold", "horizon": 8, "status_period": 0.2}),
        # Armed (no robot exists here), watchdog far away so only chunks produce trajectories.
        NodeProcess("kairos_ros.nodes.adapter_node", "adapter",
                    {**common, "trajectory_topic": "/bad/traj", "diagnostics_period": 0.2, "armed_on_start": True,
                     "watchdog_timeout": 60.0}),
        NodeProcess("kairos_ros.nodes.adapter_node", "adapter_direct",
                    {**common, "trajectory_topic": "/bad/adapter_traj", "chunk_topic": "/bad/chunk",
                     "diagnostics_period": 0.2, "armed_on_start": True, "watchdog_timeout": 60.0}),
    ]
    ok = listener.wait_nodes([n.name for n in nodes], 60)
    assert ok, "nodes did not come up:\n" + "\n".join(n.output() for n in nodes)
    listener.pubs = {
        "img": listener.publisher(Image, CAM),
        "js": listener.publisher(JointState, "/joint_states"),
        "obs": listener.publisher(Observation, "/kairos/observation"),
        "chunk": listener.publisher(ActionChunk, "/bad/chunk"),
    }
    # Every subscription the tests rely on (a node is visible before its subscriptions exist).
    need = {CAM: 1, "/joint_states": 3, "/kairos/observation": 2, "/kairos/action_chunk": 2, "/bad/chunk": 1}
    assert listener.wait_subscriptions(need), {t: listener.node.count_subscribers(t) for t in need}
    # ... and matched by this node's publishers (the observation topic's second subscription is this
    # node's own recorder).
    pubs = listener.pubs
    matched = {pubs["img"]: 1, pubs["js"]: 3, pubs["obs"]: 2, pubs["chunk"]: 1}
    assert listener.wait_matched(matched), {p.topic_name: p.get_subscription_count() for p in matched}
    yield listener, {n.name: n for n in nodes}
    for n in nodes:
        code = n.stop()
        assert code == 0, f"{n.name} exited with {code}:\n{n.output()[-3000:]}"
    listener.close()


def now(listener) -> float:
    return listener.node.get_clock().now().nanoseconds * 1e-9


def image(stamp, encoding="rgb8", h=24, w=32, step=None, data=None):
    msg = Image(height=h, width=w, encoding=encoding, step=step if step is not None else w * 3)
    msg.data = data if data is not None else bytes(np.full(h * w * 3, 100, np.uint8))
    msg.header.stamp = to_time(stamp)
    return msg


def joints(stamp, names=None, positions=None):
    names = list(SPEC.joint_names) if names is None else names
    pos = [float(x) for x in (SPEC.lower + SPEC.upper) / 2] if positions is None else positions
    msg = JointState(name=names, position=[float(x) for x in pos][:len(names)])
    msg.header.stamp = to_time(stamp)
    return msg


def send_pair(listener, stamp, img=None, js=None):
    listener.pubs["js"].publish(joints(stamp) if js is None else js)
    listener.pubs["img"].publish(image(stamp) if img is None else img)


def stamp_of(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def perception_barrier(listener, since: int) -> list:
    """Observations from index `since` that arrived before a valid marker pair's observation (the
    marker goes through the same publishers as any earlier input: see Listener.barrier)."""
    markers = []

    def send():
        markers.append(now(listener))
        send_pair(listener, markers[-1])
    return listener.barrier("/kairos/observation", since, send,
                            lambda o: any(abs(stamp_of(o) - m) < 1e-6 for m in markers))


def count(listener, node, key) -> int:
    return int(listener.diagnostics_values(node).get(f"count.{key}", 0))


def expect_count(listener, node, key, before, timeout=5.0):
    assert wait_for(lambda: count(listener, node, key) > before, timeout), \
        f"{node} did not count '{key}': {listener.diagnostics_values(node)}"


def test_good_data_flows(graph):
    listener, _ = graph

    def fed():  # a pair at 20 Hz (wait_for's period) until the chain perception -> adapter has run twice
        send_pair(listener, now(listener))
        return len(listener.got("/bad/traj")) >= 2
    assert wait_for(fed, 30), "no trajectory from good data"
    traj = listener.got("/bad/traj")[-1]
    assert list(traj.joint_names) == list(SPEC.joint_names)


@pytest.mark.parametrize("case,key", [
    ("encoding", "bad_image.cam"), ("size", "bad_image.cam"), ("empty", "bad_image.cam"),
    ("nan", "bad_joint_state"), ("inf", "bad_joint_state"), ("missing", "bad_joint_state"),
    ("unknown", "bad_joint_state"),
])
def test_perception_rejects(graph, case, key):
    listener, nodes = graph
    before = count(listener, "perception", key)
    n_obs = len(listener.got("/kairos/observation"))
    stamp = now(listener)
    names = list(SPEC.joint_names)
    mid = [float(x) for x in (SPEC.lower + SPEC.upper) / 2]
    bad = {
        "encoding": dict(img=image(stamp, encoding="yuv422")),
        "size": dict(img=image(stamp, data=bytes(10))),
        "empty": dict(img=image(stamp, h=0, w=0, step=0, data=b"")),
        "nan": dict(js=joints(stamp, positions=[math.nan] + mid[1:])),
        "inf": dict(js=joints(stamp, positions=mid[:-1] + [math.inf])),
        "missing": dict(js=joints(stamp, names=names[:-1], positions=mid[:-1])),
        "unknown": dict(js=joints(stamp, names=names + ["mystery_joint"], positions=mid + [0.0])),
    }[case]
    # The bad message comes with a good partner of the same stamp: a node that let the bad one
    # through would complete a set from the two and publish it at once.
    send_pair(listener, stamp, **bad)
    expect_count(listener, "perception", key, before)
    early = perception_barrier(listener, n_obs)
    assert not [o for o in early if abs(stamp_of(o) - stamp) < 1e-6], "an observation from the bad input"
    assert not [o for o in listener.got("/kairos/observation")[n_obs:] if abs(stamp_of(o) - stamp) < 1e-6]
    assert nodes["perception"].alive()


def test_out_of_order_stamp_is_dropped(graph):
    listener, nodes = graph
    before = count(listener, "perception", "out_of_order")
    # The late pair must be newer than every set already published (older sets are skipped by the
    # synchroniser anyway, and the check below would pass for that reason alone).
    newest = max((stamp_of(o) for o in listener.got("/kairos/observation")), default=0.0)
    assert wait_for(lambda: now(listener) - 0.2 > newest + 0.05, 10)
    t = now(listener)
    n_obs = len(listener.got("/kairos/observation"))
    listener.pubs["js"].publish(joints(t))  # (one publisher: delivered and handled before the next)
    listener.pubs["js"].publish(joints(t - 0.2))  # 200 ms older than the newest: reordered, not a loop
    listener.pubs["img"].publish(image(t - 0.2))
    expect_count(listener, "perception", "out_of_order", before)
    early = perception_barrier(listener, n_obs)
    stale = [o for o in early + listener.got("/kairos/observation")[n_obs:] if abs(stamp_of(o) - (t - 0.2)) < 1e-6]
    assert not stale and nodes["perception"].alive()


def test_backwards_stamps_reset_cleanly(graph):
    listener, nodes = graph
    before = count(listener, "perception", "time_jump")
    t = now(listener)
    for i in range(3):
        send_pair(listener, t + 0.05 * i)
        time.sleep(0.05)
    for i in range(3):  # the bag loops: time goes back 10 s
        send_pair(listener, t - 10 + 0.05 * i)
        time.sleep(0.05)
    expect_count(listener, "perception", "time_jump", before)
    assert nodes["perception"].alive() and nodes["world_model"].alive()


def test_world_model_drops_bad_observation(graph):
    listener, nodes = graph
    before = count(listener, "world_model", "bad_observation")
    n_chunks = len(listener.got("/kairos/action_chunk"))
    obs = Observation(camera_names=["cam", "extra"], layout="single")
    obs.header.stamp = to_time(now(listener))
    obs.images = [image(now(listener))]
    obs.joint_state = joints(now(listener))
    listener.pubs["obs"].publish(obs)
    expect_count(listener, "world_model", "bad_observation", before)
    stamp = obs.header.stamp
    assert not [c for c in listener.got("/kairos/action_chunk")[n_chunks:] if c.header.stamp == stamp]
    assert nodes["world_model"].alive()


def chunk_msg(stamp, horizon=5, dim=None, embodiment="single_arm", values=None, period=0.05, slots=None):
    dim = len(SPEC.slot_names) if dim is None else dim
    msg = ActionChunk(embodiment=embodiment, horizon=horizon, dim=dim)
    msg.slot_names = list(slots if slots is not None else SPEC.slot_names)[:dim]
    mid = state_to_slots(SPEC, (SPEC.lower + SPEC.upper) / 2)  # chunks carry slot values
    vals = np.tile(mid[:dim], (horizon, 1)).astype(np.float32) if values is None else values
    msg.values = [float(x) for x in np.asarray(vals).ravel()]
    msg.step_period = to_duration(period)
    msg.header.stamp = to_time(stamp)
    return msg


MARKER_ROWS, MARKER_PERIOD = 12, 0.2  # a marker chunk's trajectory has >= 10 points; the bad ones <= 8


def send_marker_chunk(listener, rows=MARKER_ROWS, period=MARKER_PERIOD):
    """A fresh joint state and a valid chunk for adapter_direct (the joint state goes on another
    topic: when the chunk overtakes it and finds the previous one too old, the next send succeeds)."""
    send_pair(listener, now(listener))
    listener.pubs["chunk"].publish(chunk_msg(now(listener), horizon=rows, period=period))


def is_marker_traj(traj) -> bool:
    return len(traj.points) >= MARKER_ROWS - 2  # rows due within the chunk's latency are dropped


def adapter_executes(listener):
    """Wait until adapter_direct turns a valid chunk into a trajectory: it has a fresh joint state,
    so what it refuses next is refused for its own defect."""
    n = len(listener.got("/bad/adapter_traj"))
    assert send_until(lambda: send_marker_chunk(listener), lambda: len(listener.got("/bad/adapter_traj")) > n, 20), \
        f"adapter_direct executes no valid chunk: {listener.diagnostics_values('adapter_direct')}"


def test_adapter_accepts_valid_chunk(graph):
    listener, _ = graph
    n = len(listener.got("/bad/adapter_traj"))
    assert send_until(lambda: send_marker_chunk(listener, rows=5, period=0.05),
                      lambda: len(listener.got("/bad/adapter_traj")) > n, 20)
    traj = listener.got("/bad/adapter_traj")[n]
    times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in traj.points]
    assert list(traj.joint_names) == list(SPEC.joint_names)
    assert all(b > a for a, b in zip(times, times[1:])) and times[0] > 0
    assert all(len(p.velocities) == len(SPEC.joint_names) for p in traj.points)
    assert all(v == 0.0 for v in traj.points[-1].velocities)


@pytest.mark.parametrize("case", ["dimension", "embodiment", "nan", "stale", "count_mismatch", "slots"])
def test_adapter_refuses_bad_chunk(graph, case):
    listener, nodes = graph
    adapter_executes(listener)
    before = count(listener, "adapter_direct", "refused_chunk")
    n = len(listener.got("/bad/adapter_traj"))
    t = now(listener)
    dim = len(SPEC.slot_names)
    nan_vals = np.zeros((5, dim), np.float32)
    nan_vals[2, 1] = np.nan
    msg = {
        "dimension": lambda: chunk_msg(t, dim=dim - 1),
        "embodiment": lambda: chunk_msg(t, embodiment="dual_arm"),
        "nan": lambda: chunk_msg(t, values=nan_vals),
        "stale": lambda: chunk_msg(t - 30.0),
        "count_mismatch": lambda: _truncated(chunk_msg(t)),
        "slots": lambda: chunk_msg(t, slots=list(reversed(SPEC.slot_names))),
    }[case]()
    listener.pubs["chunk"].publish(msg)
    expect_count(listener, "adapter_direct", "refused_chunk", before)
    early = listener.barrier("/bad/adapter_traj", n, lambda: send_marker_chunk(listener), is_marker_traj)
    assert early == [], "a trajectory was produced from a bad chunk"
    assert nodes["adapter_direct"].alive()


def test_adapter_acceleration_gate_counts_by_name(graph):
    """A chunk within the velocity, step and start-jump limits whose path bends too hard."""
    listener, nodes = graph
    adapter_executes(listener)
    before = count(listener, "adapter_direct", "refused_acceleration")
    n = len(listener.got("/bad/adapter_traj"))
    offsets = np.zeros((8, SPEC.dim))
    offsets[3:, 1] = 0.05 * np.arange(1, 6)  # joint 2 still, then 1 rad/s: ~15 rad/s^2 > 7.5 (Franka's)
    values = state_to_slots(SPEC, (SPEC.lower + SPEC.upper) / 2 + offsets)
    listener.pubs["chunk"].publish(chunk_msg(now(listener), horizon=8, values=values))
    expect_count(listener, "adapter_direct", "refused_acceleration", before)
    assert "acceleration gate: joint 'robot_panda0_joint2'" in \
        listener.diagnostics_values("adapter_direct").get("last.refused_acceleration", "")
    early = listener.barrier("/bad/adapter_traj", n, lambda: send_marker_chunk(listener), is_marker_traj)
    assert early == [], "a trajectory was produced from a refused chunk"
    assert nodes["adapter_direct"].alive()


def _truncated(msg):
    msg.values = list(msg.values)[:-1]
    return msg
