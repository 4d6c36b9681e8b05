"""The wire format (kairos_ros/remote/protocol.py): typed arrays, limits, refusals. No sockets."""
from __future__ import annotations

import os
import pickle

import msgpack
import numpy as np
import pytest

from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.remote import protocol as p
from serve_util import observation

SPEC = load_embodiment("aloha")


def code_of(fn, *args):
    with pytest.raises(p.ProtocolError) as info:
        fn(*args)
    return info.value.code


def test_typed_arrays_round_trip_and_keep_dtype_and_shape():
    for a in (np.arange(12, dtype=np.float32).reshape(3, 4), np.arange(5, dtype=np.float64),
              np.zeros((2, 3, 3), np.uint8), np.arange(4, dtype=">f4")):
        wire = msgpack.unpackb(msgpack.packb(p.array_to_wire(a)), raw=False)
        back = p.array_from_wire(wire, "a", tuple(p.DTYPES), tuple(a.shape))
        assert back.shape == a.shape and np.array_equal(back, a)
    with pytest.raises(TypeError):
        p.array_to_wire(np.array([object()], dtype=object))


@pytest.mark.parametrize("obj", [
    {"dtype": "object", "shape": [1], "data": b"\0" * 8},
    {"dtype": "|O", "shape": [1], "data": b"\0" * 8},
    {"dtype": "complex128", "shape": [1], "data": b"\0" * 16},
    {"dtype": "float32", "shape": [3], "data": b"\0" * 8},  # bytes do not match the shape
    {"dtype": "float32", "shape": [2, 2], "data": b"\0" * 16},  # wrong number of dimensions
    {"dtype": "float32", "shape": [-1], "data": b""},
    {"dtype": "float32", "shape": [4.0], "data": b"\0" * 16},
    {"dtype": "float32", "shape": [4], "data": "text"},
    {"dtype": "float32", "shape": [4], "data": b"\0" * 16, "extra": 1},
    [1, 2, 3],
])
def test_bad_typed_arrays_are_refused_before_numpy_sees_them(obj):
    assert code_of(p.array_from_wire, obj, "a", ("float32",), ((0, 100),)) == p.BAD_ARRAY


def test_a_huge_declared_shape_is_refused_without_allocating():
    obj = {"dtype": "uint8", "shape": [100_000, 100_000, 3], "data": b""}
    assert code_of(p.array_from_wire, obj, "frame", ("uint8",), (None, None, 3)) == p.BAD_ARRAY


@pytest.mark.parametrize("data", [b"\xc1", b"\x92\x01", msgpack.packb([1, 2]), msgpack.packb({"no": "type"}),
                                  msgpack.packb({"type": 3}), msgpack.packb({"type": "x"}) + b"\x00",
                                  msgpack.packb(msgpack.ExtType(5, b"abc")),
                                  msgpack.packb({"type": "x", "v": msgpack.ExtType(1, b"")}), "text frame"])
def test_malformed_messages_are_bad_message(data):
    assert code_of(p.unpack, data, 1 << 20) == p.BAD_MESSAGE


def test_oversize_messages_are_refused_before_unpacking():
    assert code_of(p.unpack, msgpack.packb({"type": "x", "pad": b"\0" * 2000}), 1024) == p.BAD_MESSAGE


class Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/kairos-remote-pickle-marker",))


def test_a_pickle_is_never_unpickled(tmp_path):
    marker = "/tmp/kairos-remote-pickle-marker"
    if os.path.exists(marker):
        os.remove(marker)
    payload = pickle.dumps(Boom())
    assert code_of(p.unpack, payload, 1 << 20) == p.BAD_MESSAGE
    wrapped = p.unpack(msgpack.packb({"type": "infer", "a": {"dtype": "object", "shape": [1], "data": payload}}),
                       1 << 20)
    assert code_of(p.array_from_wire, wrapped["a"], "a", ("float32",), (1,)) == p.BAD_ARRAY
    assert not os.path.exists(marker)


@pytest.mark.parametrize("encoding", ["raw", "jpeg"])
def test_observations_round_trip(encoding):
    obs = observation(SPEC, 12.5, offset=0.01)
    wire = msgpack.unpackb(msgpack.packb(p.observation_to_wire(obs, encoding)), raw=False)
    back = p.observation_from_wire(wire, p.FrameRule(128, 144), "do it")
    assert back.stamp == 12.5 and back.instruction == "do it" and back.joint_state.names == obs.joint_state.names
    assert np.array_equal(back.joint_state.positions, obs.joint_state.positions)
    assert back.composed.shape == (144, 128, 3)
    assert np.abs(back.composed.astype(int) - 100).max() <= (0 if encoding == "raw" else 3)


def test_frames_of_another_size_or_a_lying_jpeg_are_refused():
    obs = observation(SPEC, 1.0, size=(48, 64))
    assert code_of(p.observation_from_wire, p.observation_to_wire(obs), p.FrameRule(128, 144)) == p.BAD_ARRAY
    wire = p.observation_to_wire(obs, "jpeg")
    wire["frame"]["width"], wire["frame"]["height"] = 128, 144  # declares the model's size, holds 64x48
    assert code_of(p.observation_from_wire, wire, p.FrameRule(128, 144)) == p.BAD_OBSERVATION
    wire["frame"]["data"] = b"\xff\xd8 not a jpeg"
    assert code_of(p.observation_from_wire, wire, p.FrameRule(128, 144)) == p.BAD_OBSERVATION


@pytest.mark.parametrize("change", [{"stamp": float("nan")}, {"stamp": -1.0}, {"stamp": "1"}, {"joint_names": "a"},
                                    {"joint_names": ["x" * 300]}])
def test_bad_observation_fields_are_refused(change):
    wire = {**p.observation_to_wire(observation(SPEC, 1.0)), **change}
    with pytest.raises(p.ProtocolError):
        p.observation_from_wire(wire, p.FrameRule())


def test_non_finite_joint_positions_are_refused():
    obs = observation(SPEC, 1.0)
    obs.joint_state.positions[0] = np.nan
    assert code_of(p.observation_from_wire, p.observation_to_wire(obs), p.FrameRule()) == p.BAD_ARRAY


def test_errors_carry_a_short_message_only():
    e = p.error(p.INTERNAL, "x" * 5000, 7)
    assert e["type"] == "error" and e["id"] == 7 and len(e["message"]) <= 300 and e["code"] in p.ERROR_CODES
