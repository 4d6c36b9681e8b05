"""kairos-play publishes a bag's messages into the graph: MCAP and sqlite3, remapping, rate,
/clock, loops (time goes backwards), and clear errors."""
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from rosbags.highlevel import AnyReader
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState

from integration.rosutil import REPO, Listener, wait_for
from kairos_ros.lib.rostime import to_sec

BAGS = os.path.join(REPO, "test", "fixtures", "bags")


def contents(bag: str) -> tuple[Counter, float]:
    """(messages per topic, the last message's bag time in s)."""
    with AnyReader([Path(bag)]) as reader:
        counts, last = Counter(), 0
        for conn, t_ns, _ in reader.messages():
            counts[conn.topic] += 1
            last = max(last, t_ns)
    return counts, last * 1e-9


def play(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "kairos_ros.tools.play", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("bag,cam", [("single_arm_mcap", "/cameras/head/image_raw"),
                                     ("dual_arm_sqlite3", "/cameras/left_wrist/image_raw")])
def test_replay_with_timing_remap_and_clock(bag, cam):
    listener = Listener(f"play_{bag}")
    listener.record(JointState, "/joint_states")
    listener.record(Image, "/renamed/image")
    listener.record(Clock, "/clock")
    counts, end = contents(os.path.join(BAGS, bag))
    try:
        start = time.monotonic()
        # kairos-play waits until its publishers have matched this listener's subscriptions (only
        # these two: the bag's other topics have no subscriber here).
        res = play(os.path.join(BAGS, bag), "--clock", "--rate", "2.0", "--remap", f"{cam}:=/renamed/image",
                   "--wait-for-subscribers", "10", "--wait-topic", "/joint_states", "--wait-topic", "/renamed/image")
        took = time.monotonic() - start

        def all_arrived() -> bool:  # what is still in flight when the player exits
            clock = listener.got("/clock")
            return (len(listener.got("/joint_states")) >= counts["/joint_states"] and
                    len(listener.got("/renamed/image")) >= counts[cam] and bool(clock) and
                    abs(to_sec(clock[-1].clock) - end) < 1e-6)
        wait_for(all_arrived, 10)  # (the checks below allow for messages lost at the player's exit)
        js, imgs, clock = listener.got("/joint_states"), listener.got("/renamed/image"), listener.got("/clock")
    finally:
        listener.close()
    assert res.returncode == 0, res.stderr
    assert len(js) >= 150 and len(imgs) >= 30, (len(js), len(imgs))
    stamps = [to_sec(m.header.stamp) for m in js]
    assert stamps == sorted(stamps)
    span = stamps[-1] - stamps[0]
    assert 0.4 * span / 2.0 <= took, f"replayed {span:.1f} s of bag in {took:.1f} s at rate 2"
    ticks = [to_sec(c.clock) for c in clock]
    assert len(ticks) > 50 and abs(ticks[-1] - stamps[-1]) < 0.1


def test_loop_goes_back_in_time():
    listener = Listener("play_loop")
    listener.record(JointState, "/joint_states")
    try:  # (kairos-play waits until its publisher has matched this listener's subscription)
        proc = subprocess.Popen([sys.executable, "-m", "kairos_ros.tools.play", os.path.join(BAGS, "hand_compressed_mcap"),
                                 "--loop", "--rate", "4", "--topics", "/joint_states", "--wait-for-subscribers", "5"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def restarted() -> bool:
            stamps = [to_sec(m.header.stamp) for m in listener.got("/joint_states")]
            return any(b < a for a, b in zip(stamps, stamps[1:]))

        # The bag is 3 s long, 0.75 s at rate 4: start-up on a loaded machine takes longer than that.
        looped = wait_for(restarted, 30)
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    finally:
        listener.close()
    assert proc.returncode == 0, err
    assert looped, "the loop never restarted the bag"


def test_bad_bag_is_named():
    res = play("/no/such/bag")
    assert res.returncode == 2 and "/no/such/bag" in res.stderr
    res = play(os.path.join(BAGS, "single_arm_mcap"), "--rate", "0")
    assert res.returncode == 2 and "--rate" in res.stderr
