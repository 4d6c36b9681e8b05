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
    assert wait_for(lambda: len(node_pids(proc.pid)) == 3 or proc.poll() is not None, 60), "nodes never started"
    assert proc.poll() is None, proc.communicate()
    pids = node_pids(proc.pid)
    time.sleep(3.0)  # let the nodes finish starting
    return pids


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
