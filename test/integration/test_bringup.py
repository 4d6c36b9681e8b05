"""kairos-bringup as a user runs it: every node its own process, clean stops, named failures."""
import os
import signal
import subprocess
import sys
import time

import pytest

from integration.rosutil import REPO, wait_for

NODES = ("kairos_ros.nodes.perception_node", "kairos_ros.nodes.world_model_node", "kairos_ros.nodes.adapter_node")


def descendants(pid: int) -> list[int]:
    """Every live process below pid (reads /proc)."""
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in os.listdir(f"/proc/{parent}/task") if os.path.exists(f"/proc/{parent}/task") else []:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                kids = []
            out += kids
            todo += kids
    return out


def node_pids(root: int) -> dict[str, int]:
    found = {}
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        for module in NODES:
            if module.encode() in cmd:
                found[module.rsplit(".", 1)[-1]] = pid
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def bringup(*args, **kw):
    cmd = [sys.executable, "-m", "kairos_ros.bringup.cli", "--embodiment", "dual_arm", "--backend", "hold", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, **kw)


def started(proc) -> dict[str, int]:
    """Wait for the bringup's "graph ready" line (every node up with its subscriptions matched: past
    start-up, where a signal is handled cleanly), then return the nodes' pids."""
    import select

    deadline = time.monotonic() + 90
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "graph ready" in line:
                return node_pids(proc.pid)
        elif proc.poll() is not None:
            break
    raise AssertionError("the graph never became ready:\n" + "".join(seen) + (proc.stderr.read() if proc.poll() is not None
                                                                              else ""))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_every_node_cleanly(sig):
    proc = bringup()
    pids = started(proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert "perception=0" in out and "world_model=0" in out and "adapter=0" in out, out + err
    assert not [p for p in pids.values() if alive(p)], "orphaned node processes"


def test_dead_node_is_named_and_bringup_fails():
    proc = bringup()
    pids = started(proc)
    os.kill(pids["world_model_node"], signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "node 'world_model' exited with code -9" in err, out + err
    assert not [p for p in pids.values() if alive(p)]


def test_killed_bringup_leaves_no_orphans():
    proc = bringup()
    pids = started(proc)
    proc.kill()  # SIGKILL: no chance to clean up; the kernel's parent-death signal stops the nodes
    proc.communicate(timeout=10)
    assert wait_for(lambda: not [p for p in pids.values() if alive(p)], 15), "nodes outlived a killed bringup"


def test_bad_arguments_are_named():
    proc = bringup("--config", "/nonexistent.yaml")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "/nonexistent.yaml" in err
    proc = bringup("--bag", "/no/such/bag")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "/no/such/bag" in err


def test_node_refusing_to_start_fails_bringup(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("perception:\n  ros__parameters:\n    camera_topics: ['/c']\n    rate_hz: -5.0\n")
    proc = bringup("--config", str(cfg))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "node 'perception' exited with code 2" in err, out + err


@pytest.mark.parametrize("args,message", [
    (["--rate", "abc"], "argument --rate: rate:='abc' is not a number"),
    (["--rate", "nan"], "argument --rate: rate:='nan' must be a number > 0"),
    (["--visualize", "maybe"], "argument --visualize: visualize:='maybe' is not a boolean"),
    (["--use-sim-time", "sometimes"], "argument --use-sim-time: use_sim_time:='sometimes' is not a boolean"),
    (["--embodiment", "dual_armm"], "embodiment:='dual_armm': unknown embodiment 'dual_armm' (known: ['aloha', "
                                    "'franka_panda', 'shadow_hand']; aliases: dexterous_hand = shadow_hand, "
                                    "dual_arm = aloha, single_arm = franka_panda)"),
])
def test_bad_values_are_named_with_the_launch_files_checks(capsys, args, message):
    """The same checks as the launch file (kairos_ros.bringup.args), before any process starts."""
    from kairos_ros.bringup.cli import main

    try:
        code = main(args)
    except SystemExit as exc:  # argparse
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_misspelt_profile_section_is_refused(tmp_path, capsys):
    """ROS ignores a parameter-file section that matches no node: `adaptr:` left the adapter on its
    defaults without a word."""
    from kairos_ros.bringup.cli import main

    with open(os.path.join(REPO, "config", "aloha.yaml")) as f:
        text = f.read()
    cfg = tmp_path / "typo.yaml"
    cfg.write_text(text.replace("\nadapter:\n", "\nadaptr:\n"))
    assert main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"config:={cfg}: section 'adaptr' is not a node of the graph (did you mean 'adapter'?); " \
           "the nodes are perception, world_model, adapter, visualizer" in err, err


def test_world_model_death_under_bringup_ends_with_a_hold(tmp_path):
    """Issue 10: the bringup stopped an armed adapter after the world model died, and the adapter sent
    nothing as it stopped: the last (possibly long) motion ran on. Now its clean-up sends a hold first."""
    import numpy as np
    import yaml
    from sensor_msgs.msg import Image, JointState
    from trajectory_msgs.msg import JointTrajectory

    from integration.rosutil import Listener
    from kairos_ros.core.embodiment import load_embodiment
    from kairos_ros.lib.rostime import to_time

    spec = load_embodiment("dual_arm")
    profile = yaml.safe_load(open(os.path.join(REPO, "config", "aloha.yaml")))
    ctrl = "/bringup_hold/ctrl"
    profile["adapter"]["ros__parameters"].update({"armed_on_start": True, "trajectory_topic": ctrl})
    cams = profile["perception"]["ros__parameters"]["camera_topics"]
    cfg = tmp_path / "armed.yaml"
    cfg.write_text(yaml.safe_dump(profile))
    listener = Listener("bringup_hold_listener")
    listener.record(JointTrajectory, ctrl)
    pubs = [listener.publisher(Image, t) for t in cams]
    js_pub = listener.publisher(JointState, "/joint_states")
    proc = bringup("--config", str(cfg), "--visualize", "false")
    try:
        pids = started(proc)
        mid = (spec.lower + spec.upper) / 2
        names = list(spec.joint_names) + list(spec.ignore_joints)
        positions = [float(x) for x in mid] + [0.0] * len(spec.ignore_joints)

        def feed():
            stamp = to_time(listener.node.get_clock().now().nanoseconds * 1e-9)
            js = JointState(name=names, position=positions)
            js.header.stamp = stamp
            js_pub.publish(js)
            for pub in pubs:
                img = Image(height=48, width=64, encoding="rgb8", step=192, data=bytes(np.zeros(48 * 192, np.uint8)))
                img.header.stamp = stamp
                pub.publish(img)
            return [t for t in listener.got(ctrl) if len(t.points) > 1]

        assert wait_for(feed, 60, 0.05), "no armed trajectory reached the controller"
        listener.clear()
        os.kill(pids["world_model_node"], signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode != 0 and "node 'world_model' exited with code -9" in err, err[-3000:]

        def holds():
            return [t for t in listener.got(ctrl) if len(t.points) == 1 and all(v == 0.0 for v in t.points[0].velocities)]
        assert wait_for(holds, 10), f"the armed adapter stopped without a hold\n{err[-3000:]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        listener.close()
