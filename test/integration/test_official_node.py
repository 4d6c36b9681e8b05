"""backend:=official over DDS: a world-model node asks a real HTTP process reproducing the official
Kairos service's /infer protocol (test/remote/official_service.py) for its chunks, opted in with
official_allow_pickle; the chunk maps the service's actions onto the unified slots."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from integration.rosutil import Listener, NodeProcess, send_until
from kairos_msgs.msg import ActionChunk, Observation
from kairos_ros.core.embodiment import load_embodiment, state_to_slots
from kairos_ros.core.types import JointStateData, ObservationData
from kairos_ros.nodes.convert import observation_to_msg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "remote"))
from test_official_client import start_service  # noqa: E402

SPEC = load_embodiment("dual_arm")
OBS, CHUNKS = "/official_test/observation", "/official_test/action_chunk"


@pytest.fixture(scope="module")
def rig():
    proc, url = start_service()
    listener = Listener("official_listener")
    listener.record(ActionChunk, CHUNKS)
    node = NodeProcess("kairos_ros.nodes.world_model_node", "official_world_model",
                       {"embodiment": "dual_arm", "backend": "official", "official_url": url,
                        "official_allow_pickle": True, "horizon": 8, "observation_topic": OBS,
                        "chunk_topic": CHUNKS, "num_predicted_frames": 0})
    try:
        assert listener.wait_nodes([node.name], 60), node.output()
        listener.obs = listener.publisher(Observation, OBS)
        assert listener.wait_subscriptions({OBS: 1})
        listener.proc = node
        yield listener
    finally:
        assert node.stop() == 0, node.output()[-3000:]
        listener.close()
        proc.terminate()
        proc.wait(timeout=10)


def test_chunks_come_from_the_official_service(rig):
    q = (SPEC.lower + SPEC.upper) / 2

    def send():
        now = rig.node.get_clock().now().nanoseconds * 1e-9
        frame = np.full((128, 160, 3), 80, np.uint8)
        obs = ObservationData(now, ["cam"], [frame], JointStateData(now, list(SPEC.joint_names), q), "go")
        rig.obs.publish(observation_to_msg(obs, "single"))

    assert send_until(send, lambda: rig.got(CHUNKS), 30.0), rig.proc.output()[-3000:]
    chunk = rig.got(CHUNKS)[-1]
    assert chunk.backend == "official" and chunk.horizon == 8
    values = np.asarray(chunk.values, np.float32).reshape(chunk.horizon, chunk.dim)
    # the test service answers robot_state + 0.01 * (k + 1) for row k
    expected = state_to_slots(SPEC, q)[None, :] + 0.01 * np.arange(1, 9)[:, None]
    np.testing.assert_allclose(values, expected, atol=1e-5)
