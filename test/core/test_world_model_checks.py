"""params.world_model.check_world_model: the world model's cross-parameter checks, shared by the node,
closed-loop evaluation and kairos-eval, each refusal naming the parameter and its value."""
from types import SimpleNamespace

import pytest

from kairos_ros.core.params import ParameterError, validate_params
from kairos_ros.params.world_model import SCHEMA, check_world_model


def params(**kw):
    return validate_params(SCHEMA, {"backend": "kairos", **kw})


def test_defaults_pass():
    check_world_model(params())
    check_world_model(params(backend="hold"), SimpleNamespace())


def test_official_mode_needs_the_history_it_re_encodes():
    with pytest.raises(ParameterError, match=r"'history_length' = 2 must be >= history_frames 4"):
        check_world_model(params(temporal_mode="official", history_frames=4, history_length=2))
    check_world_model(params(backend="hold", temporal_mode="official", history_frames=4, history_length=2))


def test_an_instruction_that_cannot_be_used_is_refused():
    with pytest.raises(ParameterError, match="'instruction'"):
        check_world_model(params(instruction="x" * 100_000))


def test_the_loaded_model_fixes_the_horizon_and_the_history():
    p = params(horizon=16, history_length=2)
    with pytest.raises(ParameterError, match=r"'horizon' = 16.*32 rows; set horizon:=32"):
        check_world_model(p, SimpleNamespace(required_horizon=32))
    with pytest.raises(ParameterError, match=r"'history_length' = 2 must be >= 3"):
        check_world_model(p, SimpleNamespace(state_velocity=3))
    check_world_model(p, SimpleNamespace(required_horizon=16, state_velocity=2))
