"""core.prediction: what the world model refuses to publish (issue: node logic moved out of
world_model_node): a chunk valid for the embodiment with exactly `horizon` rows, finite frames."""
import numpy as np
import pytest

from kairos_ros.core.chunks import ChunkError
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.prediction import BadPrediction, check_frames, check_prediction_chunk
from kairos_ros.core.types import ActionChunkData

SPEC = load_embodiment("single_arm")


def chunk(values=None, **kw):
    args = dict(stamp=1.0, embodiment=SPEC.name, slot_names=list(SPEC.slot_names),
                values=np.zeros((4, len(SPEC.slot_names)), np.float32) if values is None else values,
                step_period=0.05)
    return ActionChunkData(**{**args, **kw})


def test_a_valid_chunk_of_the_horizon_passes():
    assert check_prediction_chunk(chunk(), SPEC, 4) is None


def test_every_step_period_and_horizon_the_parameters_allow_passes():
    check_prediction_chunk(chunk(np.zeros((1024, len(SPEC.slot_names))), step_period=10.0), SPEC, 1024)


def test_wrong_horizon_is_refused():
    with pytest.raises(BadPrediction, match=r"chunk horizon 4 rows != horizon 8"):
        check_prediction_chunk(chunk(), SPEC, 8)


@pytest.mark.parametrize("values, match", [
    (np.zeros((4, 3)), "chunk dimension 3"),
    (np.zeros(4), r"must be \(horizon >= 1, dim\)"),
    (np.full((4, 8), np.nan), "non-finite values"),
])
def test_malformed_values_are_refused_with_the_chunk_check_reason(values, match):
    with pytest.raises(BadPrediction, match=match) as info:
        check_prediction_chunk(chunk(values), SPEC, 4)
    assert isinstance(info.value.__cause__, ChunkError)


def test_wrong_embodiment_or_step_period_is_refused():
    with pytest.raises(BadPrediction, match="embodiment"):
        check_prediction_chunk(chunk(embodiment="nobody"), SPEC, 4)
    with pytest.raises(BadPrediction, match="step_period"):
        check_prediction_chunk(chunk(step_period=0.0), SPEC, 4)


def test_frames_must_be_finite():
    check_frames([np.zeros((2, 2, 3), np.uint8), np.ones((2, 2, 3), np.float32)])
    check_frames([])
    with pytest.raises(BadPrediction, match="non-finite predicted frames"):
        check_frames([np.zeros((2, 2, 3)), np.array([[np.inf]])])
    assert issubclass(BadPrediction, ValueError)  # the node's backend-error handler sees it too
