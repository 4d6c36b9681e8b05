"""Unit tests for kairos_ros.core.chunks.validate_chunk: every refusal."""
import math

import numpy as np
import pytest

from kairos_ros.core.chunks import ChunkError, validate_chunk
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.types import ActionChunkData

SPEC = load_embodiment("single_arm")


def chunk(values=None, **kw):
    args = dict(stamp=1.0, embodiment=SPEC.name, slot_names=list(SPEC.slot_names),
                values=np.zeros((4, 8), np.float32) if values is None else values, step_period=0.05)
    args.update(kw)
    return ActionChunkData(**args)


def test_valid_chunk_passes():
    assert validate_chunk(chunk(), SPEC) is None
    validate_chunk(chunk(values=np.zeros((1, 8)), slot_names=tuple(SPEC.slot_names)), SPEC)


def test_wrong_embodiment():
    with pytest.raises(ChunkError, match="chunk embodiment 'dual_arm' != adapter embodiment 'franka_panda'"):
        validate_chunk(chunk(embodiment="dual_arm"), SPEC)  # another robot's alias


def test_alias_of_the_adapter_embodiment_is_accepted():
    validate_chunk(chunk(embodiment="single_arm"), SPEC)


@pytest.mark.parametrize("values,shape", [(np.zeros((0, 8)), r"\(0, 8\)"), (np.zeros(8), r"\(8,\)"),
                                          (np.zeros((2, 4, 8)), r"\(2, 4, 8\)")])
def test_bad_shape(values, shape):
    with pytest.raises(ChunkError, match=rf"must be \(horizon >= 1, dim\), got shape {shape}"):
        validate_chunk(chunk(values=values), SPEC)


def test_wrong_dimension():
    with pytest.raises(ChunkError, match="chunk dimension 7 != 8 slots of 'franka_panda'"):
        validate_chunk(chunk(values=np.zeros((3, 7))), SPEC)


def test_slot_count_mismatch():
    with pytest.raises(ChunkError, match="chunk names 7 slots, 'franka_panda' has 8"):
        validate_chunk(chunk(slot_names=list(SPEC.slot_names)[:7]), SPEC)


def test_first_differing_slot_named():
    names = list(SPEC.slot_names)
    names[3], names[5] = names[5], names[3]
    with pytest.raises(ChunkError, match="chunk slot 3 is 'arm.joint_6', expected 'arm.joint_4'"):
        validate_chunk(chunk(slot_names=names), SPEC)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values(bad):
    values = np.zeros((5, 8), np.float32)
    values[2, 6] = bad
    values[4, 0] = bad
    with pytest.raises(ChunkError, match=r"chunk has 2 non-finite values \(first: row 2, slot 'arm.joint_7'\)"):
        validate_chunk(chunk(values=values), SPEC)


@pytest.mark.parametrize("period", [0.0, -0.05, math.nan, math.inf])
def test_bad_step_period(period):
    with pytest.raises(ChunkError, match=f"chunk step_period {period} must be finite and > 0"):
        validate_chunk(chunk(step_period=period), SPEC)


def test_chunk_error_is_a_value_error():
    assert issubclass(ChunkError, ValueError)
