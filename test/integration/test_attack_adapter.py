"""Attacks on a running, armed adapter over DDS (issue 10): each defect class that got through, with
variants. The adapter is a real node in its own process; this process plays the world model, the
robot's joint-state driver, the e-stop button and the controller."""
import os
import signal
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from integration.rosutil import Listener, NodeProcess, wait_for
from kairos_msgs.msg import ActionChunk
from kairos_ros.core.embodiment import load_embodiment, state_to_slots
from kairos_ros.core.types import ActionChunkData
from kairos_ros.lib.rostime import to_time
from kairos_ros.nodes.convert import chunk_to_msg

SPEC = load_embodiment("single_arm")
MID = (SPEC.lower + SPEC.upper) / 2
P = "/attack_adapter"
TOPICS = {"chunk_topic": f"{P}/chunk", "trajectory_topic": f"{P}/ctrl", "estop_topic": f"{P}/estop",
          "joint_states_topic": f"{P}/joint_states", "preview_topic": f"{P}/preview"}


def _adapter(name="adapter", **extra):
    params = {"embodiment": "single_arm", "armed_on_start": True, "watchdog_timeout": 0.5,
              "diagnostics_period": 0.2, **TOPICS, **extra}
    return NodeProcess("kairos_ros.nodes.adapter_node", name, params)


@pytest.fixture(scope="module")
def rig():
    listener = Listener("attack_adapter_listener")
    listener.record(JointTrajectory, TOPICS["trajectory_topic"])
    listener.record(DiagnosticArray, "/diagnostics")
    node = _adapter()
    assert listener.wait_nodes(["adapter"], 60), node.output()
    listener.chunk = listener.publisher(ActionChunk, TOPICS["chunk_topic"])
    listener.js = listener.publisher(JointState, TOPICS["joint_states_topic"])
    listener.estop = listener.publisher(Bool, TOPICS["estop_topic"])
    assert listener.wait_subscriptions({t: 1 for t in (TOPICS["chunk_topic"], TOPICS["joint_states_topic"],
                                                       TOPICS["estop_topic"])})
    listener.proc = node
    yield listener
    assert node.stop() == 0, node.output()[-3000:]
    listener.close()


def now(listener) -> float:
    return listener.node.get_clock().now().nanoseconds * 1e-9


def joint_state(listener, positions=MID, stamp=None, velocities=None):
    js = JointState(name=list(SPEC.joint_names), position=[float(x) for x in positions])
    if velocities is not None:
        js.velocity = [float(x) for x in velocities]
    js.header.stamp = to_time(now(listener) if stamp is None else stamp)
    listener.js.publish(js)


def chunk(listener, rows=8, step=0.05, stamp=None, offset=0.0):
    values = np.tile(state_to_slots(SPEC, MID) + offset, (rows, 1))
    data = ActionChunkData(stamp=now(listener) if stamp is None else stamp, embodiment="single_arm",
                           slot_names=list(SPEC.slot_names), values=values, step_period=step)
    return chunk_to_msg(data)


def trajectories(listener):
    return listener.got(TOPICS["trajectory_topic"])


def is_hold(traj):
    return len(traj.points) == 1 and all(v == 0.0 for v in traj.points[0].velocities)


def counts(listener):
    values = listener.diagnostics_values("adapter")
    return {k[len("count."):]: int(v) for k, v in values.items() if k.startswith("count.")}


def drive(listener, seconds, **chunk_kw):
    """Joint states and fresh chunks at 20 Hz for `seconds`."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        joint_state(listener)
        listener.chunk.publish(chunk(listener, **chunk_kw))
        time.sleep(0.05)


def settle(listener):
    """Back to a known state: e-stop released and reset, fresh chunks executed."""
    listener.estop.publish(Bool(data=False))
    client = listener.node.create_client(Trigger, "/adapter/reset_estop")
    assert client.wait_for_service(timeout_sec=20)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listener.estop.publish(Bool(data=False))
        fut = client.call_async(Trigger.Request())
        assert wait_for(fut.done, 10)
        if fut.result().success:
            break
    listener.clear()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not [t for t in trajectories(listener) if len(t.points) > 1]:
        drive(listener, 0.2)
    assert [t for t in trajectories(listener) if len(t.points) > 1], "fresh chunks are not executed"


def reset_estop(listener):
    client = listener.node.create_client(Trigger, "/adapter/reset_estop")
    assert client.wait_for_service(timeout_sec=20)
    fut = client.call_async(Trigger.Request())
    assert wait_for(fut.done, 10)
    return fut.result()


# -- 1. the e-stop's level ---------------------------------------------------------------------
def test_reset_is_refused_while_the_estop_is_asserted(rig):
    settle(rig)
    stop = threading.Event()

    def hammer():  # the reported case: true on the e-stop topic at 20 Hz
        while not stop.is_set():
            rig.estop.publish(Bool(data=True))
            time.sleep(0.05)

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: counts(rig).get("estop", 0) >= 1, 10)
        rig.clear()
        answers = []
        for _ in range(5):
            answers.append(reset_estop(rig))
            drive(rig, 0.2)
        assert not any(a.success for a in answers), [a.message for a in answers]
        assert "still asserted" in answers[0].message
        assert not [t for t in trajectories(rig) if len(t.points) > 1], "motion reached the controller"
    finally:
        stop.set()
        thread.join()


def test_a_single_true_keeps_the_level_until_false(rig):
    settle(rig)
    rig.estop.publish(Bool(data=True))  # once, then silence: still asserted
    assert wait_for(lambda: counts(rig).get("estop", 0) >= 2, 10)
    assert not reset_estop(rig).success
    rig.clear()
    refused = counts(rig).get("refused_estop", 0)
    deadline = time.monotonic() + 20  # fresh chunks until five more were refused at the e-stop gate
    while time.monotonic() < deadline and counts(rig).get("refused_estop", 0) < refused + 5:
        drive(rig, 0.1)
    assert counts(rig).get("refused_estop", 0) >= refused + 5, counts(rig)
    assert not [t for t in trajectories(rig) if len(t.points) > 1]
    rig.estop.publish(Bool(data=False))
    assert wait_for(lambda: reset_estop(rig).success, 10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not [t for t in trajectories(rig) if len(t.points) > 1]:
        drive(rig, 0.1)
    assert [t for t in trajectories(rig) if len(t.points) > 1], "released and reset: motion resumes"


# -- 2. holds within the limits -----------------------------------------------------------------
def _outside_state():
    q = MID.copy()
    q[0] = SPEC.upper[0] + 0.86  # the reported 4.0 rad on a +-pi joint
    return q


@pytest.mark.parametrize("trigger", ["watchdog", "estop"])
def test_hold_from_outside_the_limits_respects_velocity_and_acceleration(rig, trigger):
    settle(rig)
    q = _outside_state()
    rig.clear()
    # The adapter has the outside state once a chunk at MID is refused at the start-jump gate (it is
    # executed from MID, and refused chunks do not feed the watchdog); joint states and chunks at
    # 20 Hz (wait_for's period) until then.
    jumps = counts(rig).get("refused_start_jump", 0)

    def adapter_has_q() -> bool:
        joint_state(rig, q)
        rig.chunk.publish(chunk(rig))
        return counts(rig).get("refused_start_jump", 0) > jumps
    assert wait_for(adapter_has_q, 10), counts(rig)
    if trigger == "estop":
        rig.estop.publish(Bool(data=True))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not [t for t in trajectories(rig) if is_hold(t)]:
        joint_state(rig, q)
        time.sleep(0.05)
    holds = [t for t in trajectories(rig) if is_hold(t)]
    assert holds, "no hold"
    point = holds[0].points[0]
    t = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
    d = abs(point.positions[0] - q[0])
    assert point.positions[0] <= SPEC.upper[0] + 1e-9
    assert 1.5 * d / t <= SPEC.max_velocity[0] * (1 + 1e-6), f"{d:.3f} rad in {t:.3f} s"
    assert 6 * d / t ** 2 <= SPEC.max_acceleration[0] * (1 + 1e-6)
    assert wait_for(lambda: counts(rig).get("hold_outside_limits", 0) >= 1, 10)


# -- 4. bounded times and sizes -----------------------------------------------------------------
@pytest.mark.parametrize("kw, field", [({"step": 1.5e9}, "max_step_period"), ({"rows": 100_000}, "max_chunk_rows"),
                                       ({"rows": 1000, "step": 0.5}, "max_trajectory_duration")])
def test_unbounded_chunks_are_refused_before_anything_is_sent(rig, kw, field):
    settle(rig)
    before = counts(rig).get("refused_chunk", 0)
    rig.clear()
    for _ in range(3):
        joint_state(rig)
        rig.chunk.publish(chunk(rig, **kw))
        time.sleep(0.05)
    assert wait_for(lambda: counts(rig).get("refused_chunk", 0) >= before + 3, 15)
    assert not [t for t in trajectories(rig) if len(t.points) > 1], "an unbounded chunk was sent"
    assert wait_for(lambda: field in rig.diagnostics_values("adapter").get("last.refused_chunk", ""), 10), \
        rig.diagnostics_values("adapter")


# -- 5. stamps from the future --------------------------------------------------------------------
@pytest.mark.parametrize("ahead", [100.0, 3.0e8])  # +100 s (reported), and ten years ahead
def test_future_chunks_are_refused_and_do_not_feed_the_watchdog(rig, ahead):
    settle(rig)
    rig.clear()
    deadline = time.monotonic() + 10  # future-stamped chunks only, at 20 Hz, until the watchdog holds
    while time.monotonic() < deadline and not [t for t in trajectories(rig) if is_hold(t)]:
        joint_state(rig)
        rig.chunk.publish(chunk(rig, stamp=now(rig) + ahead))
        time.sleep(0.05)
    assert [t for t in trajectories(rig) if is_hold(t)], "future chunks kept the watchdog from holding"

    def marker():  # a fresh, valid chunk of 12 rows (the future ones have 8) through the same publisher
        joint_state(rig)
        rig.chunk.publish(chunk(rig, rows=12, step=0.2))
    early = rig.barrier(TOPICS["trajectory_topic"], 0, marker, lambda t: len(t.points) >= 10)
    assert not [t for t in early if len(t.points) > 1], "a future chunk was executed"


def test_future_joint_states_are_refused(rig):
    settle(rig)
    before = counts(rig).get("future_stamp.joint_states", 0)
    joint_state(rig, stamp=2.1e9)  # 2036
    assert wait_for(lambda: counts(rig).get("future_stamp.joint_states", 0) > before, 10)


# -- 3. a hold when the adapter stops while armed --------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_armed_adapter_holds_when_it_stops(sig):
    listener = Listener(f"attack_stop_listener_{int(sig)}")
    ctrl = f"{P}/stop_ctrl_{int(sig)}"
    listener.record(JointTrajectory, ctrl)
    node = _adapter("adapter_stop", trajectory_topic=ctrl, watchdog_timeout=30.0)
    try:
        assert listener.wait_nodes(["adapter_stop"], 60), node.output()
        listener.chunk = listener.publisher(ActionChunk, TOPICS["chunk_topic"])
        listener.js = listener.publisher(JointState, TOPICS["joint_states_topic"])
        assert listener.wait_subscriptions({TOPICS["chunk_topic"]: 1, TOPICS["joint_states_topic"]: 1})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not listener.got(ctrl):
            drive(listener, 0.2, rows=32, offset=0.01)  # a long motion is under way
        assert listener.got(ctrl), node.output()
        listener.clear()
        os.killpg(node.proc.pid, sig)
        node.proc.wait(20)
        assert node.proc.returncode == 0, node.output()[-3000:]
        assert wait_for(lambda: [t for t in listener.got(ctrl) if is_hold(t)], 10), \
            f"no hold when the armed adapter stopped:\n{node.output()[-3000:]}"
        assert "Traceback" not in node.output()
    finally:
        node.stop()
        listener.close()
