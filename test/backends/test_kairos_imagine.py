"""Imagine with the kairos backend: the model's future frames for the history (which, in Kairos,
do not depend on the candidate), the candidate unchanged, and its consistency with the model."""
import numpy as np
import pytest

from kairos_helpers import obs
from kairos_ros.backends import make_backend
from kairos_ros.core.types import ActionChunkData


def candidate(spec, values):
    return ActionChunkData(0.0, spec.name, list(spec.slot_names), np.asarray(values, np.float32), 0.05)


@pytest.fixture(params=["streaming", "official"])
def b(request, specs):
    return make_backend("kairos", specs["dual"], allow_random_weights=True, flow_steps=3, num_predicted_frames=2,
                        temporal_mode=request.param)


def test_future_frames_do_not_depend_on_the_candidate(b, specs):
    spec = specs["dual"]
    history = [obs(spec, 1.0), obs(spec, 1.1)]
    results = []
    for values in (np.zeros((6, 14)), np.full((6, 14), 0.7)):
        b.generator.manual_seed(5)  # the same sampling noise for both
        results.append(b.imagine(history, candidate(spec, values)))
    first, second = results
    assert len(first.frames) == 2 and first.frame_times == pytest.approx([0.15, 0.3])
    assert all(np.array_equal(x, y) for x, y in zip(first.frames, second.frames))
    assert first.extras["candidate_error"] != second.extras["candidate_error"]
    assert first.extras["model_chunk_error"] == second.extras["model_chunk_error"]
    assert np.array_equal(second.chunk.values, np.full((6, 14), 0.7, np.float32)) and second.chunk.backend == "kairos"
    msg = first.extras["message"]
    assert "imagined 2 frames" in msg and "do not depend on the candidate" in msg and "candidate_error=" in msg
    assert "RANDOM WEIGHTS" in msg
    assert b.memory.frames == b.world_state_frames == 1  # the history's newest frame only, absorbed once


def test_the_models_own_chunk_is_fully_consistent(specs):
    spec = specs["dual"]
    b = make_backend("kairos", spec, allow_random_weights=True, flow_steps=3)
    history = [obs(spec, 1.0)]
    b.generator.manual_seed(9)
    own = b.predict(history, 6, 0.05).chunk.values
    frames = b.state.frames
    b.generator.manual_seed(9)  # imagine samples the model's chunk first: the same one
    res = b.imagine(history, candidate(spec, own))
    assert res.extras["distance_to_model_chunk"] < 1e-4
    assert res.extras["candidate_error"] == pytest.approx(res.extras["model_chunk_error"], rel=1e-4)
    assert res.frames == [] and "no frames imagined (num_predicted_frames is 0)" in res.extras["message"]
    assert b.state.frames == frames  # no new observation: the world state is unchanged


def test_bad_candidates(specs):
    spec = specs["dual"]
    b = make_backend("kairos", spec, allow_random_weights=True, flow_steps=1)
    bad = np.zeros((4, 14))
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"candidate of shape \(4, 14\) must be \(horizon, dim\) and finite"):
        b.imagine([obs(spec, 1.0)], candidate(spec, bad))
    other = ActionChunkData(0.0, "x", ["left_arm.joint_1"], np.zeros((4, 1), np.float32), 0.05)
    with pytest.raises(ValueError, match=r"slots \['left_arm.joint_2'"):
        b.imagine([obs(spec, 1.0)], other)
