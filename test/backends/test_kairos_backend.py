"""The `kairos` backend: refuses to start without weights (naming the parameter), runs on random
weights only when explicitly allowed, absorbs frames into the streaming world state, and raises
on bad input so the node drops the prediction and resets."""
import numpy as np
import pytest

from kairos_ros.backends import make_backend
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.types import JointStateData, ObservationData

SPEC = load_embodiment("dual_arm")
MID = (SPEC.lower + SPEC.upper) / 2


def obs(t, size=(64, 80), q=MID):
    js = JointStateData(t, list(SPEC.joint_names), np.asarray(q, float))
    frame = np.random.default_rng(int(t * 10)).integers(0, 255, size + (3,), dtype=np.uint8)
    return ObservationData(t, ["head"], [frame], js, "pick up the cube", composed=frame)


@pytest.fixture(scope="module")
def backend():
    return make_backend("kairos", SPEC, allow_random_weights=True, flow_steps=2)


def test_refuses_without_weights():
    with pytest.raises(ValueError, match="parameter 'dit_checkpoint' is empty"):
        make_backend("kairos", SPEC)
    with pytest.raises(ValueError, match="8 slots"):
        make_backend("kairos", load_embodiment("single_arm"), allow_random_weights=True)


def test_random_weights_are_labelled(backend):
    assert "RANDOM WEIGHTS" in backend.startup_warning and "RANDOM WEIGHTS" in backend.model


def test_predicts_and_streams(backend):
    backend.reset()
    history = [obs(1.0), obs(1.1)]
    pred = backend.predict(history, 8, 0.05)
    assert pred.chunk.values.shape == (8, 14) and np.all(np.isfinite(pred.chunk.values))
    assert backend.world_state_frames == 1 and backend.skipped_frames == 1  # behind: newest frame only
    pred = backend.predict(history + [obs(1.2)], 8, 0.05)  # only the new frame is absorbed
    assert backend.world_state_frames == 2 and pred.chunk.model == backend.model
    with pytest.raises(ValueError, match="no new frame"):
        backend.predict(history + [obs(1.2)], 8, 0.05)
    backend.reset()
    assert backend.world_state_frames == 0 and backend.state.frames == 0


def test_bad_inputs_raise(backend):
    backend.reset()
    with pytest.raises(ValueError, match="not a multiple of 16"):
        backend.predict([obs(2.0, size=(60, 80))], 8, 0.05)
    backend.reset()
    bad = MID.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="non-finite robot state"):
        backend.predict([obs(3.0, q=bad)], 8, 0.05)
    with pytest.raises(ValueError, match="Imagine is not implemented"):
        backend.imagine([obs(4.0)], None)


def test_wrong_checkpoint_is_refused(tmp_path):
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "kairos_parity",
                        "state_dict_fp16.safetensors")
    with pytest.raises(ValueError, match="does not fit the model"):
        make_backend("kairos", SPEC, dit_checkpoint=path, allow_random_weights=True)
