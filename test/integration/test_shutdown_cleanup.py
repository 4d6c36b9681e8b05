"""Nodes stopped with SIGINT leave no Fast DDS shared-memory segment behind in /dev/shm.

Each DDS participant owns a segment named fastdds_<16 hex digits>; it is removed when the
participant is deleted at shut-down. A node whose middleware context is never freed (it sat in a
frozen reference cycle: core.realtime) left two per run, in a RAM-backed filesystem."""
import os
import re
import time

import pytest

from integration.rosutil import Listener, NodeProcess

SEGMENT = re.compile(r"^fastdds_[0-9a-f]{16}$")
pytestmark = pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm on this system")


def segments() -> set:
    return {name for name in os.listdir("/dev/shm") if SEGMENT.match(name)}


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
    listener = Listener("cleanup_listener")  # this process's own participant exists before the snapshot
    time.sleep(0.5)
    before = segments()
    nodes = [NodeProcess("kairos_ros.nodes.perception_node", "perception", {"camera_topics": ["/cleanup/cam"]}),
             NodeProcess("kairos_ros.nodes.world_model_node", "world_model", {"backend": "hold"}),
             NodeProcess("kairos_ros.nodes.adapter_node", "adapter", {"embodiment": "dual_arm"})]
    try:
        assert listener.wait_nodes([n.name for n in nodes], 60), "\n".join(n.output() for n in nodes)
        assert len(segments() - before) >= len(nodes), "the nodes' segments were expected in /dev/shm"
    finally:
        codes = {n.name: n.stop() for n in nodes}
        listener.close()
    assert codes == {"perception": 0, "world_model": 0, "adapter": 0}, codes
    left = segments() - before
    assert not left, f"segments left in /dev/shm after the nodes exited: {sorted(left)}"


def test_a_killed_node_leaves_files_that_the_cleaner_removes():
    """SIGKILL cannot be cleaned up after by the node itself; core.shm removes exactly its files
    (what kairos-bringup and kairos-bench do at start) and leaves those of live processes."""
    import signal

    from kairos_ros.core.shm import clean_stale_fastdds

    listener = Listener("killed_listener")
    time.sleep(0.5)
    before = segments()
    live = {name for name in before if held(name)}
    assert live, "this process's own participant should hold a segment"
    node = NodeProcess("kairos_ros.nodes.adapter_node", "adapter", {"embodiment": "dual_arm"})
    try:
        assert listener.wait_nodes(["adapter"], 60), node.output()
        os.killpg(node.proc.pid, signal.SIGKILL)
        node.proc.wait(10)
        left = segments() - before
        assert left, "a killed node was expected to leave its segments"
        removed = set(clean_stale_fastdds(min_age=0.0))
        assert left <= removed, (left, removed)
        assert live <= segments(), "a live process's segment was removed"
    finally:
        node.stop()
        listener.close()
