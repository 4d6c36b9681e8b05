"""The simulated robot driver over DDS (sim_node on aloha_transfer_cube, MuJoCo): cameras and joint
states at their rates, a JointTrajectory executed, reset by seed reproducible, a trajectory outside
the limits rejected and counted, /clock when slower than real time."""
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from integration.rosutil import Listener, NodeProcess, wait_for
from kairos_msgs.srv import ResetSim
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib.rostime import to_duration, to_sec, to_time

pytest.importorskip("mujoco")
pytest.importorskip("gym_aloha")

SPEC = load_embodiment("aloha")
CTRL = "/simtest/controller"
JS = "/simtest/joint_states"
CAMS = ["/simtest/head", "/simtest/left_wrist", "/simtest/right_wrist"]
W, H = 64, 48


@pytest.fixture(scope="module")
def sim():
    listener = Listener("sim_test_listener")
    listener.record(JointState, JS)
    for topic in CAMS:
        listener.record(Image, topic)
    listener.record(DiagnosticArray, "/diagnostics")
    node = NodeProcess("kairos_ros.nodes.sim_node", "sim", {
        "task": "aloha_transfer_cube", "seed": 3, "trajectory_topic": CTRL, "joint_states_topic": JS,
        "camera_topics": CAMS, "image_width": W, "image_height": H, "camera_rate": 10.0,
        "joint_state_rate": 50.0, "diagnostics_period": 0.2, "episode_length": 600.0})
    assert listener.wait_nodes(["sim"], 60), node.output()
    listener.traj = listener.publisher(JointTrajectory, CTRL)
    assert listener.wait_subscribers(listener.traj), node.output()
    assert wait_for(lambda: len(listener.got(JS)) > 5 and all(listener.got(t) for t in CAMS), 30), node.output()
    listener.sim = node
    yield listener
    assert node.stop() == 0, node.output()
    listener.close()


def latest(listener, topic: str = JS) -> dict:
    msg = listener.got(topic)[-1]
    return dict(zip(msg.name, msg.position))


def settled(listener, speed: float = 0.01) -> bool:
    return max(abs(v) for v in listener.got(JS)[-1].velocity) < speed


def send(listener, positions: dict, seconds: float, pub=None) -> None:
    """One point `seconds` from now for every controlled joint, at rest."""
    traj = JointTrajectory(joint_names=list(SPEC.joint_names))
    traj.points = [JointTrajectoryPoint(positions=[float(positions[n]) for n in SPEC.joint_names],
                                        velocities=[0.0] * len(SPEC.joint_names),
                                        time_from_start=to_duration(seconds))]
    (pub or listener.traj).publish(traj)


def reset(listener, seed: int, name: str = "/sim/reset"):
    client = listener.node.create_client(ResetSim, name)
    assert client.wait_for_service(timeout_sec=20)
    fut = client.call_async(ResetSim.Request(seed=seed))
    assert wait_for(fut.done, 20)
    res = fut.result()
    assert res.success, res.message
    return res


def test_publishes_cameras_and_joint_states_at_their_rates(sim):
    sim.clear()
    start = time.monotonic()
    assert wait_for(lambda: time.monotonic() - start > 2.0 and len(sim.got(CAMS[0])) >= 10, 20)
    wall = time.monotonic() - start
    js = sim.got(JS)
    stamps = np.array([to_sec(m.header.stamp) for m in js])
    assert np.all(np.diff(stamps) > 0)
    # sim-clock spacing is exact; delivery keeps up with the wall clock (real_time_factor 1)
    assert np.median(np.diff(stamps)) == pytest.approx(0.02, abs=1e-6)
    assert 0.6 * 50 < len(js) / wall < 1.3 * 50, (len(js), wall)
    assert abs(stamps[-1] - time.time()) < 1.0  # wall-clock stamps
    js0 = js[-1]
    assert set(js0.name) == set(SPEC.joint_names) | set(SPEC.ignore_joints)
    assert len(js0.velocity) == len(js0.name)
    for topic in CAMS:
        frames = sim.got(topic)
        cam_stamps = np.array([to_sec(m.header.stamp) for m in frames])
        assert np.median(np.diff(cam_stamps)) == pytest.approx(0.1, abs=1e-6)
        assert 0.5 * 10 < len(frames) / wall < 1.4 * 10, (topic, len(frames), wall)
        f = frames[-1]
        assert (f.width, f.height, f.encoding, f.step) == (W, H, "rgb8", 3 * W)


def test_executes_a_joint_trajectory(sim):
    here = latest(sim)
    target = dict(here)
    target["vx300s_right_waist"] = here["vx300s_right_waist"] + 0.3
    target["vx300s_left_elbow"] = here["vx300s_left_elbow"] - 0.2
    send(sim, target, 1.0)

    def arrived():
        now = latest(sim)
        return all(abs(now[n] - target[n]) < 0.02 for n in ("vx300s_right_waist", "vx300s_left_elbow"))
    assert wait_for(arrived, 10), (latest(sim), target)
    assert wait_for(lambda: int(sim.diagnostics_values("sim").get("trajectories_accepted", 0)) >= 1, 5)


def test_trajectory_outside_the_limits_is_rejected_and_counted(sim):
    assert wait_for(lambda: settled(sim), 10)  # the previous test's motion is over
    before = latest(sim)
    bad = dict(before)
    bad["vx300s_left_waist"] = 3.5  # limit 3.14158
    send(sim, bad, 1.0)
    assert wait_for(lambda: int(sim.diagnostics_values("sim").get("count.rejected.limits", 0)) >= 1, 10), \
        sim.diagnostics_values("sim")
    values = sim.diagnostics_values("sim")
    assert "vx300s_left_waist" in values.get("last.rejected.limits", ""), values
    assert int(values["trajectories_rejected"]) >= 1
    assert "trajectory rejected" in sim.sim.output() and "outside its limits" in sim.sim.output()
    sim.clear()
    assert wait_for(lambda: len(sim.got(JS)) > 25, 5)  # half a second more: nothing moved
    after = latest(sim)
    moved = {n: after[n] - before[n] for n in SPEC.joint_names if abs(after[n] - before[n]) > 0.005}
    assert not moved, moved


def _first_of_episode(listener, stamp):
    def find(topic):
        return [m for m in listener.got(topic) if to_sec(m.header.stamp) == to_sec(stamp)]
    assert wait_for(lambda: find(JS) and find(CAMS[0]), 10)
    return np.array(find(JS)[0].position), bytes(find(CAMS[0])[0].data)


def test_reset_by_seed_is_reproducible(sim):
    first = reset(sim, 11)
    assert first.seed == 11
    js1, frame1 = _first_of_episode(sim, first.stamp)
    here = latest(sim)
    moved = dict(here, vx300s_right_shoulder=here["vx300s_right_shoulder"] + 0.2)
    send(sim, moved, 0.5)  # the episode changes the scene before the next reset
    assert wait_for(lambda: abs(latest(sim)["vx300s_right_shoulder"] - moved["vx300s_right_shoulder"]) < 0.03, 10)
    second = reset(sim, 11)
    js2, frame2 = _first_of_episode(sim, second.stamp)
    assert to_sec(second.stamp) > to_sec(first.stamp)
    np.testing.assert_array_equal(js1, js2)
    assert frame1 == frame2
    other = reset(sim, -1)  # the next seed: the cube elsewhere
    assert other.seed == 12
    _, frame3 = _first_of_episode(sim, other.stamp)
    assert frame3 != frame1


def test_a_trajectory_planned_before_the_reset_is_rejected(sim):
    """A trajectory stamped before the newest reset was planned from the state before it (it was in
    flight while the scene was reset): rejected and counted, the robot stays in the new episode's pose."""
    res = reset(sim, 4)
    start, _ = _first_of_episode(sim, res.stamp)
    here = latest(sim)
    far = dict(here, vx300s_left_wrist_angle=here["vx300s_left_wrist_angle"] + 0.3)
    traj = JointTrajectory(joint_names=list(SPEC.joint_names))
    traj.header.stamp = to_time(to_sec(res.stamp) - 0.05)
    traj.points = [JointTrajectoryPoint(positions=[float(far[n]) for n in SPEC.joint_names],
                                        velocities=[0.0] * len(SPEC.joint_names), time_from_start=to_duration(0.5))]
    sim.traj.publish(traj)
    assert wait_for(lambda: int(sim.diagnostics_values("sim").get("count.rejected.before_reset", 0)) >= 1, 10), \
        sim.diagnostics_values("sim")
    assert "planned from the state before the reset" in sim.sim.output()
    sim.clear()
    assert wait_for(lambda: len(sim.got(JS)) > 40, 10)  # 0.8 s more: nothing moved
    assert abs(latest(sim)["vx300s_left_wrist_angle"] - here["vx300s_left_wrist_angle"]) < 0.01


def test_clock_published_when_slower_than_real_time_and_episode_end_holds():
    listener = Listener("sim_clock_listener")
    listener.record(Clock, "/clock")
    listener.record(JointState, "/simclock/joint_states")
    listener.record(Bool, "/simclock/done")
    listener.record(DiagnosticArray, "/diagnostics")
    node = NodeProcess("kairos_ros.nodes.sim_node", "sim_slow", {
        "task": "aloha_transfer_cube", "real_time_factor": 0.5, "camera_rate": 0.0, "episode_length": 1.5,
        "joint_states_topic": "/simclock/joint_states", "trajectory_topic": "/simclock/controller",
        "success_topic": "/simclock/success", "reward_topic": "/simclock/reward", "done_topic": "/simclock/done",
        "diagnostics_period": 0.2})
    try:
        assert wait_for(lambda: len(listener.got("/clock")) > 5, 60), node.output()
        listener.clear()
        start = time.monotonic()
        assert wait_for(lambda: time.monotonic() - start > 2.0, 5)
        clocks = [to_sec(m.clock) for m in listener.got("/clock")]
        wall = time.monotonic() - start
        assert np.all(np.diff(clocks) > 0)
        assert 0.3 < (clocks[-1] - clocks[0]) / wall < 0.6, (clocks[0], clocks[-1], wall)
        assert clocks[-1] < 600  # sim time from 0, not the wall clock
        js = listener.got("/simclock/joint_states")
        assert js and abs(to_sec(js[-1].header.stamp) - clocks[-1]) < 0.5
        # after 1.5 simulated seconds the episode is done: trajectories are refused until ~/reset
        assert wait_for(lambda: any(m.data for m in listener.got("/simclock/done")), 10), node.output()
        pub = listener.publisher(JointTrajectory, "/simclock/controller")
        assert listener.wait_subscribers(pub)
        send(listener, latest(listener, "/simclock/joint_states"), 0.5, pub)
        assert wait_for(lambda: int(listener.diagnostics_values("sim_slow").get("count.rejected.episode_over", 0))
                        >= 1, 10), listener.diagnostics_values("sim_slow")
        res = reset(listener, 5, "/sim_slow/reset")
        assert wait_for(lambda: any(not m.data for m in listener.got("/simclock/done")[-3:]), 10)
        assert to_sec(res.stamp) > clocks[-1]
    finally:
        assert node.stop() == 0, node.output()
        listener.close()


def test_unknown_task_refuses_start():
    node = NodeProcess("kairos_ros.nodes.sim_node", "sim_bad", {"task": "aloha_juggling"})
    assert wait_for(lambda: not node.alive(), 60)
    assert node.stop() == 2
    assert "parameter 'task' = 'aloha_juggling' is not a known task" in node.output()
