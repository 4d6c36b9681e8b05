"""A fixture bag replayed through the real graph (kairos-bringup: nodes in separate processes,
kairos-play publishing the bag's CDR bytes with /clock): Observations, ActionChunks and
JointTrajectories flow with the right joint names, order, stamps and limits."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from integration.rosutil import REPO, Listener
from kairos_msgs.msg import ActionChunk, Observation, PredictedFuture
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib.rostime import to_sec

BAGS = os.path.join(REPO, "test", "fixtures", "bags")

CASES = {
    # name: (bag, embodiment (a robot's name or an alias), backend, camera topics, layout, tiles)
    "single_arm_mcap": ("single_arm_mcap", "franka_panda", "extrapolate", ["/cameras/head/image_raw"], "single",
                        (224, 224)),
    "dual_arm_sqlite3": ("dual_arm_sqlite3", "dual_arm", "hold",
                         ["/cameras/head/image_raw", "/cameras/left_wrist/image_raw"], "side_by_side", (64, 48)),
    "hand_compressed_mcap": ("hand_compressed_mcap", "dexterous_hand", "extrapolate",
                             ["/cameras/head/image_raw/compressed"], "single", (96, 96)),
}


def _config(tmp_path, embodiment, topics, layout, tiles) -> str:
    # Gate limits are relaxed: this test checks flow and the trajectory contract, and on a loaded
    # machine late chunks of a moving robot rightly fail the default start-jump gate
    # (test_adapter_safety.py covers the gates).
    path = tmp_path / f"{embodiment}.yaml"
    path.write_text(
        "perception:\n  ros__parameters:\n"
        f"    camera_topics: {json.dumps(topics)}\n    layout: {layout}\n"
        f"    tile_width: {tiles[0]}\n    tile_height: {tiles[1]}\n    rate_hz: 10.0\n"
        "world_model:\n  ros__parameters:\n    horizon: 16\n    num_predicted_frames: 2\n"
        "adapter:\n  ros__parameters:\n    max_chunk_age: 2.0\n    max_start_jump: 3.0\n    max_step: 3.0\n"
        "    velocity_tolerance: 10.0\n    acceleration_tolerance: 10.0\n")
    return str(path)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bag_flows_through_graph(tmp_path, case):
    bag, embodiment, backend, topics, layout, tiles = CASES[case]
    spec = load_embodiment(embodiment)
    listener = Listener(f"replay_listener_{case}")
    for topic, typ in (("/kairos/observation", Observation), ("/kairos/action_chunk", ActionChunk),
                       ("/kairos/predicted_future", PredictedFuture), (spec.controller_topic, JointTrajectory),
                       ("/kairos/trajectory_preview", JointTrajectory), ("/joint_states", JointState)):
        listener.record(typ, topic)
    cmd = [sys.executable, "-m", "kairos_ros.bringup.cli", "--embodiment", embodiment, "--backend", backend,
           "--bag", os.path.join(BAGS, bag), "--report-dir", str(tmp_path / "report"), "--log-dir",
           str(tmp_path / "logs")]
    cmd += ["--config", _config(tmp_path, embodiment, topics, layout, tiles)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=REPO)
        logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log"))
        assert result.returncode == 0, result.stdout + result.stderr + logs
        obs = listener.got("/kairos/observation")
        chunks = listener.got("/kairos/action_chunk")
        trajs = listener.got("/kairos/trajectory_preview")
        to_controller = listener.got(spec.controller_topic)
        futures = listener.got("/kairos/predicted_future")
    finally:
        listener.close()
    assert not to_controller, "the adapter is dry-run by default: nothing may reach the controller unarmed"
    assert len(obs) >= 10, f"only {len(obs)} observations\n{logs}"
    assert len(chunks) >= 5 and len(trajs) >= 5, f"{len(chunks)} chunks, {len(trajs)} trajectories\n{logs}"
    obs_stamps = {to_sec(o.header.stamp) for o in obs}
    for o in obs:
        assert list(o.joint_state.name) == list(spec.joint_names)
        assert all(img.encoding == "rgb8" for img in o.images)
        assert all(abs(to_sec(img.header.stamp) - to_sec(o.header.stamp)) <= 0.05 for img in o.images)
    seen_from = min(obs_stamps)  # this test's subscription may match a moment after the world model's
    for c in chunks:
        if to_sec(c.header.stamp) >= seen_from:
            assert to_sec(c.header.stamp) in obs_stamps, "a chunk's stamp is not an observation's stamp"
        assert c.embodiment == spec.name and list(c.slot_names) == list(spec.slot_names)  # aliases resolved
        assert c.backend == backend and len(c.values) == c.horizon * c.dim
    stamps = [to_sec(c.header.stamp) for c in chunks]
    assert stamps == sorted(stamps), "chunks out of order"
    assert all(len(f.frames) == len(f.frame_times) for f in futures)
    for t in trajs:
        assert list(t.joint_names) == list(spec.joint_names)
        times = [to_sec(p.time_from_start) for p in t.points]
        assert times[0] > 0 and all(b > a for a, b in zip(times, times[1:]))
        pos = np.array([p.positions for p in t.points])
        assert np.all(pos >= spec.lower - 1e-9) and np.all(pos <= spec.upper + 1e-9)
        assert all(len(p.velocities) == len(spec.joint_names) for p in t.points)
        assert all(v == 0.0 for v in t.points[-1].velocities), "trajectory does not end at rest"
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["mode"] == "live" and report["counts"]["predictions"] >= 5
    assert report["actions"]["overall"]["count"] > 0
    assert "evaluation report" in result.stdout


def test_auto_domain_keeps_the_replay_off_this_domain(tmp_path):
    """--domain auto (make demo's default): the graph runs on a domain of its own, named in the
    start line; nothing of the replay reaches a listener on this test session's domain."""
    bag, embodiment, backend, topics, layout, tiles = CASES["dual_arm_sqlite3"]
    listener = Listener("domain_listener")
    for topic, typ in (("/kairos/observation", Observation), ("/joint_states", JointState)):
        listener.record(typ, topic)
    cmd = [sys.executable, "-m", "kairos_ros.bringup.cli", "--embodiment", embodiment, "--backend", backend,
           "--bag", os.path.join(BAGS, bag), "--report-dir", str(tmp_path / "report"), "--log-dir",
           str(tmp_path / "logs"), "--domain", "auto", "--visualize", "false",
           "--config", _config(tmp_path, embodiment, topics, layout, tiles)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=REPO)
        heard = listener.got("/kairos/observation") + listener.got("/joint_states")
    finally:
        listener.close()
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("kairos-bringup: started"))
    domain = int(line.split("ROS_DOMAIN_ID ")[1].split(")")[0])
    assert domain != int(os.environ["ROS_DOMAIN_ID"]) and domain != 0
    assert not heard, f"{len(heard)} messages of the replay reached domain {os.environ['ROS_DOMAIN_ID']}"
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["counts"]["predictions"] >= 5  # the graph itself worked on its own domain
