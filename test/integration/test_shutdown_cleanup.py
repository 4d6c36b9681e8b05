"""Nodes stopped with SIGINT leave no Fast DDS shared-memory segment behind in /dev/shm.

Each DDS participant owns a segment named fastdds_<16 hex digits>; it is removed when the
participant is deleted at shut-down. A node whose middleware context is never freed (it sat in a
frozen reference cycle: core.realtime) left two per run, in a RAM-backed filesystem."""
import os
import re

import pytest

from integration.rosutil import Listener, NodeProcess, wait_for

SEGMENT = re.compile(r"^fastdds_[0-9a-f]{16}$")
pytestmark = pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm on this system")


def segments() -> set:
    return {name for name in os.listdir("/dev/shm") if SEGMENT.match(name)}


def segments_of(pid) -> set:
    """The segments a process has open (its participant's own): names from its open files. Other
    DDS processes on this host (other test runs) come and go, so the tests follow these by name
    rather than comparing snapshots of /dev/shm."""
    out = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for fd in fds:
        try:
            name = os.path.basename(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
        if SEGMENT.match(name.removesuffix("_el")):
            out.add(name.removesuffix("_el"))
    return out


def wait_segments(nodes) -> dict:
    """{node name: its segments}, once each node (up and in the graph) has one."""
    found = {}

    def each_has_one() -> bool:
        found.update({n.name: segments_of(n.proc.pid) for n in nodes})
        return all(found.values())
    assert wait_for(each_has_one, 20), found
    return found


def held(name: str) -> bool:
    """Whether a live process holds the segment's lock file (its owner is alive)."""
    import fcntl

    try:
        fd = os.open(f"/dev/shm/{name}_el", os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)


def test_nodes_remove_their_shared_memory_segments():
    listener = Listener("cleanup_listener")
    # names no earlier test left in the graph: each node must really be up (past its signal set-up)
    nodes = [NodeProcess("kairos_ros.nodes.perception_node", "perception_shm", {"camera_topics": ["/cleanup/cam"]}),
             NodeProcess("kairos_ros.nodes.world_model_node", "world_model_shm", {"backend": "hold"}),
             NodeProcess("kairos_ros.nodes.adapter_node", "adapter_shm", {"embodiment": "dual_arm"})]
    try:
        assert listener.wait_nodes([n.name for n in nodes], 60), "\n".join(n.output() for n in nodes)
        theirs = set().union(*wait_segments(nodes).values())
        assert theirs <= segments(), "the nodes' segments were expected in /dev/shm"
    finally:
        codes = {n.name: n.stop() for n in nodes}
        listener.close()
    assert codes == {"perception_shm": 0, "world_model_shm": 0, "adapter_shm": 0}, \
        {n.name: (codes[n.name], n.output()[-2000:]) for n in nodes if codes[n.name]}
    left = theirs & segments()
    assert not left, f"segments left in /dev/shm after the nodes exited: {sorted(left)}"


def test_a_killed_node_leaves_files_that_the_cleaner_removes():
    """SIGKILL cannot be cleaned up after by the node itself; core.shm removes exactly its files
    (what kairos-bringup and kairos-bench do at start) and leaves those of live processes."""
    import signal

    from kairos_ros.core.shm import clean_stale_fastdds

    listener = Listener("killed_listener")
    live = segments_of(os.getpid())
    assert live and all(held(name) for name in live), "this process's own participant should hold a segment"
    node = NodeProcess("kairos_ros.nodes.adapter_node", "adapter", {"embodiment": "dual_arm"})
    try:
        assert listener.wait_nodes(["adapter"], 60), node.output()
        theirs = wait_segments([node])["adapter"]
        os.killpg(node.proc.pid, signal.SIGKILL)
        node.proc.wait(10)
        left = theirs & segments()
        assert left == theirs, "a killed node was expected to leave its segments"
        removed = set(clean_stale_fastdds(min_age=0.0))
        assert left <= removed, (left, removed)
        assert live <= segments(), "a live process's segment was removed"
    finally:
        node.stop()
        listener.close()


def _clean_exit(node: NodeProcess, code: int) -> None:
    with open(node.log.name) as f:
        out = f.read()
    assert code == 0, f"exit code {code}\n{out}"
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out


def _signal_until_exit(node: NodeProcess, sig, timeout: float = 30.0) -> int:
    """Send `sig` again every 20 ms until the node exits: later ones land during its clean-up, as
    a terminal's Ctrl-C followed by the one launch forwards does."""
    def send_and_check():
        if node.proc.poll() is None:
            try:
                os.kill(node.proc.pid, sig)
            except ProcessLookupError:
                pass
        return node.proc.poll() is not None

    assert wait_for(send_and_check, timeout, 0.02), node.output()
    return node.stop()


def test_a_second_sigint_during_clean_up_still_exits_0_without_traceback():
    import signal

    listener = Listener("double_sigint_listener")
    node = NodeProcess("kairos_ros.nodes.world_model_node", "world_model_double_sigint", {"backend": "hold"})
    try:
        assert listener.wait_nodes(["world_model_double_sigint"], 60), node.output()
        os.kill(node.proc.pid, signal.SIGINT)
        os.kill(node.proc.pid, signal.SIGINT)  # two in quick succession
        code = _signal_until_exit(node, signal.SIGINT)
    finally:
        node.stop()
        listener.close()
    _clean_exit(node, code)


def test_sigterm_stops_a_node_cleanly():
    import signal

    listener = Listener("sigterm_listener")
    node = NodeProcess("kairos_ros.nodes.adapter_node", "adapter_sigterm", {"embodiment": "dual_arm"})
    try:
        assert listener.wait_nodes(["adapter_sigterm"], 60), node.output()
        code = _signal_until_exit(node, signal.SIGTERM)
    finally:
        node.stop()
        listener.close()
    _clean_exit(node, code)


_PARENT = r"""
import subprocess, sys
from kairos_ros.bringup.graph import ProcessSpec
from kairos_ros.bringup.supervisor import command_for
spec = ProcessSpec(sys.argv[2], "adapter_node", "kairos_ros.nodes.adapter_node", [], {"embodiment": "dual_arm"})
# Its own session, and no PR_SET_PDEATHSIG from this side: only the node's own watch can stop it.
child = subprocess.Popen(command_for(spec), stdin=subprocess.DEVNULL, stdout=open(sys.argv[1], "w"),
                         stderr=subprocess.STDOUT, start_new_session=True)
print(child.pid, flush=True)
child.wait()
"""


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (this test is not its parent: a zombie waits
    for whoever adopted it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
@pytest.mark.parametrize("watch", ["1", "0"])
def test_a_node_stops_when_its_parent_dies(tmp_path, watch):
    """SIGTERM to `ros2 launch` ends it without stopping its processes (ros2/launch#666): each node
    watches its parent instead (KAIROS_PARENT_WATCH=0 turns that off)."""
    import signal
    import subprocess
    import sys

    log = tmp_path / "node.log"
    listener = Listener(f"orphan_listener_{watch}")
    env = dict(os.environ, KAIROS_PARENT_WATCH=watch)
    name = f"adapter_orphan_{watch}"  # a name no earlier test left in the graph: the node must really be up
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(log), name], stdout=subprocess.PIPE, text=True,
                              env=env, start_new_session=True)
    pid = int(parent.stdout.readline())
    try:
        assert listener.wait_nodes([name], 60), log.read_text()
        parent.kill()
        parent.wait(10)
        if watch == "1":
            assert wait_for(lambda: not _alive(pid), 30), f"node {pid} outlived its parent\n{log.read_text()}"
            out = log.read_text()
            assert "Traceback" not in out, out
        else:
            assert not wait_for(lambda: not _alive(pid), 3), "KAIROS_PARENT_WATCH=0 should leave the node running"
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
        listener.close()
