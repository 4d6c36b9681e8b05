"""Predicted frames are off the control path (issue 13): with chunk_first the world model publishes
the chunks of newer observations while an older observation's frames are still being made, waiting
frame jobs that a newer one replaces are dropped and counted (scheduler.frames_stale), and every
chunk's time is reported in stages. With chunk_first off (frames made before the chunk goes out,
the behaviour before) the same measure finds no chunk ahead of the frames: it can fail."""
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image, JointState

from integration.rosutil import Listener, NodeProcess, wait_for
from kairos_msgs.msg import ActionChunk, Observation, PredictedFuture
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib.rostime import to_sec, to_time

SPEC = load_embodiment("dual_arm")
MID = (SPEC.lower + SPEC.upper) / 2
PARAMS = {"embodiment": "dual_arm", "backend": "kairos", "allow_random_weights": True, "flow_steps": 2, "horizon": 8,
          "status_period": 0.2, "num_predicted_frames": 2, "image_width": 32, "image_height": 32,
          "temporal_mode": "official", "video_steps": 60}  # frames: many steps, so they take a while


def observation(listener) -> Observation:
    stamp = to_time(listener.node.get_clock().now().nanoseconds * 1e-9)
    msg = Observation(camera_names=["cam"], layout="single", instruction="pick up the cube")
    msg.header.stamp = stamp
    pixels = np.random.default_rng(stamp.nanosec).integers(0, 255, 32 * 32 * 3, dtype=np.uint8)
    msg.images = [Image(height=32, width=32, encoding="rgb8", step=96, data=bytes(pixels))]
    msg.images[0].header.stamp = stamp
    msg.joint_state = JointState(name=list(SPEC.joint_names), position=[float(x) for x in MID])
    msg.joint_state.header.stamp = stamp
    return msg


def chunks_ahead_of_frames(listener) -> int:
    """The most chunks of newer observations that arrived before one observation's frames did."""
    with listener.lock:
        chunks = [(t, to_sec(m.header.stamp)) for t, m in listener.msgs["/kairos/action_chunk"]]
        futures = [(t, to_sec(m.header.stamp)) for t, m in listener.msgs["/kairos/predicted_future"] if m.frames]
    return max((sum(1 for tc, sc in chunks if sc > sf and tc < tf) for tf, sf in futures), default=0)


def run(name: str, chunk_first: bool, observations: int = 80):
    listener = Listener(f"frames_off_{name}")
    for typ, topic in ((ActionChunk, "/kairos/action_chunk"), (PredictedFuture, "/kairos/predicted_future"),
                       (DiagnosticArray, "/diagnostics")):
        listener.record(typ, topic)
    node = NodeProcess("kairos_ros.nodes.world_model_node", "world_model", {**PARAMS, "chunk_first": chunk_first})
    try:
        assert listener.wait_nodes(["world_model"], 90), node.output()
        pub = listener.publisher(Observation, "/kairos/observation")
        assert listener.wait_subscriptions({"/kairos/observation": 1}), node.output()
        sent = 0

        def enough() -> bool:  # feed at 10 Hz until frames were seen behind two newer chunks
            nonlocal sent
            pub.publish(observation(listener))
            sent += 1
            time.sleep(0.1)
            return chunks_ahead_of_frames(listener) >= 2 or sent >= observations
        wait_for(enough, 120, period=0.0)
        assert wait_for(lambda: any(m.frames for m in listener.got("/kairos/predicted_future")), 60), node.output()
        key = "frames.p50_ms" if chunk_first else "stage.frames.p50_ms"  # frames on their worker / in the chunk
        assert wait_for(lambda: key in listener.diagnostics_values("world_model"), 10)
        return chunks_ahead_of_frames(listener), listener.diagnostics_values("world_model")
    finally:
        assert node.stop() == 0, node.output()[-3000:]
        listener.close()


@pytest.mark.parametrize("chunk_first", [True, False])
def test_chunks_do_not_wait_for_frames(chunk_first):
    ahead, diag = run(f"{chunk_first}".lower(), chunk_first, observations=80 if chunk_first else 30)
    assert {"stage.wait.p50_ms", "stage.encode.p50_ms", "stage.history.p50_ms", "stage.message.p50_ms"} <= set(diag)
    if chunk_first:
        assert ahead >= 2, diag
        assert int(diag.get("scheduler.frames_stale", 0)) >= 1, diag  # waiting jobs replaced by newer ones
        assert "frames.p50_ms" in diag
    else:  # the frames before the chunk: the measure above finds nothing ahead of them
        assert ahead == 0, diag
        assert "stage.frames.p50_ms" in diag  # and the late chunks' stages say where the time went
