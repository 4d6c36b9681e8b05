"""The perception node's rate limit over DDS: inputs faster than rate_hz are thinned to rate_hz,
and a complete set held back by the limit is still published once the limit lifts (by the
one-shot flush timer, with no further input arriving)."""
import time

import numpy as np
import pytest
from sensor_msgs.msg import Image, JointState

from integration.rosutil import Listener, NodeProcess, wait_for
from kairos_msgs.msg import Observation
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib.rostime import to_sec, to_time

SPEC = load_embodiment("single_arm")
CAM = "/rate/cam/image_raw"
RATE = 4.0  # Hz: one observation per 0.25 s at most (0.225 s with the jitter margin)


@pytest.fixture(scope="module")
def graph():
    listener = Listener("rate_listener")
    listener.record(Observation, "/kairos/observation")
    node = NodeProcess("kairos_ros.nodes.perception_node", "perception",
                       {"embodiment": "single_arm", "camera_topics": [CAM], "layout": "single",
                        "tile_width": 32, "tile_height": 32, "rate_hz": RATE, "slop": 0.01})
    assert listener.wait_nodes(["perception"], 60), node.output()
    img_pub = listener.publisher(Image, CAM)
    js_pub = listener.publisher(JointState, "/joint_states")
    assert listener.wait_subscriptions({CAM: 1, "/joint_states": 1}), node.output()
    assert listener.wait_matched({img_pub: 1, js_pub: 1}), node.output()
    yield listener, node, img_pub, js_pub
    assert node.stop() == 0, node.output()[-3000:]
    listener.close()


def send_set(listener, img_pub, js_pub) -> float:
    stamp = listener.node.get_clock().now().nanoseconds * 1e-9
    js = JointState(name=list(SPEC.joint_names), position=[float(x) for x in (SPEC.lower + SPEC.upper) / 2])
    js.header.stamp = to_time(stamp)
    img = Image(height=24, width=32, encoding="rgb8", step=96, data=bytes(np.full(24 * 32 * 3, 90, np.uint8)))
    img.header.stamp = to_time(stamp)
    js_pub.publish(js)
    img_pub.publish(img)
    return stamp


def arrivals(listener, since: float) -> list[tuple[float, float]]:
    """(arrival monotonic time, observation stamp) of observations that arrived after `since`."""
    with listener.lock:
        return [(t, to_sec(m.header.stamp)) for t, m in listener.msgs["/kairos/observation"] if t > since]


def published(listener, stamp: float, since: float) -> bool:
    return any(abs(s - stamp) < 1e-6 for _, s in arrivals(listener, since))


def test_faster_input_is_thinned_to_rate_hz(graph):
    listener, node, img_pub, js_pub = graph
    start = time.monotonic()
    for _ in range(50):  # 50 sets at 50 Hz over one second
        last = send_set(listener, img_pub, js_pub)
        time.sleep(0.02)
    sent_for = time.monotonic() - start
    # The newest set goes out last, at once or flushed when the limit lifts; nothing comes after it.
    assert wait_for(lambda: published(listener, last, start), 10), arrivals(listener, start)
    got = arrivals(listener, start)
    # One at once, then at most one per 0.225 s while sets came, and the last one flushed: 7 at the
    # very most for one second of input (more only when this loop itself ran late); at least 3.
    most = 1 + int((sent_for + 1.0 / RATE) / (0.9 / RATE))
    assert 3 <= len(got) <= most, f"{len(got)} observations from 50 sets in {sent_for:.2f} s at rate_hz {RATE}"
    # Publish instants (arrival here, a little DDS jitter aside) keep the limit. Stamps need not:
    # the last one is a set flushed after the limit, which may be younger than 0.225 s.
    times = [t for t, _ in got]
    assert all(b - a >= 0.18 for a, b in zip(times, times[1:])), np.diff(times)
    assert node.alive()


def test_held_back_set_is_flushed_without_further_input(graph):
    listener, node, img_pub, js_pub = graph
    # The limit has lifted (the newest observation went out over 1 / RATE s ago, measured on arrival
    # here, i.e. no earlier than it was published): the next set goes out at once.
    newest = max((t for t, _ in arrivals(listener, 0.0)), default=0.0)
    assert wait_for(lambda: time.monotonic() > newest + 1.0 / RATE + 0.05, 10)
    start = time.monotonic()
    first = send_set(listener, img_pub, js_pub)
    time.sleep(0.05)  # the second set 50 ms later (input at 20 Hz, its stamps apart by more than the slop)
    second = send_set(listener, img_pub, js_pub)  # inside the limit: held back, then nothing else comes
    assert wait_for(lambda: published(listener, second, start), 10), arrivals(listener, start)
    got = arrivals(listener, start)
    stamps = [s for _, s in got]
    assert any(abs(s - first) < 1e-6 for s in stamps), f"first set not published: {stamps}"
    flushed = [t for t, s in got if abs(s - second) < 1e-6]
    assert flushed, f"the held-back set (stamp {second}) was never published: {stamps}"
    first_t = next(t for t, s in got if abs(s - first) < 1e-6)
    assert flushed[0] - first_t >= 0.15, "the held-back set went out inside the rate limit"
    assert node.alive()
