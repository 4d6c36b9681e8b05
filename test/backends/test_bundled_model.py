"""The embedded default: the kairos-nano weights bundled in data/models/kairos-nano-aloha (trained on
the simulated ALOHA transfer-cube expert's demonstrations), started exactly as the ALOHA bringup
profile configures them, predict chunks that start at the robot's state, and on a held-out
demonstration (data/demo_transfer_cube, seed 9000: never trained on) are closer to what the robot
did than holding still, over the chunk."""
import json
import os

import numpy as np
import pytest

from kairos_ros.backends import make_backend
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.params import load_ros_params_yaml, validate_params
from kairos_ros.core.types import JointStateData, ObservationData
from kairos_ros.eval.offline import evaluate_bag
from kairos_ros.params.world_model import SCHEMA, backend_options

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROFILE = os.path.join(REPO, "config", "aloha.yaml")
MODEL = os.path.join(REPO, "data", "models", "kairos-nano-aloha")
DEMO = os.path.join(REPO, "data", "demo_transfer_cube")


@pytest.fixture(scope="module")
def setup():
    params = validate_params(SCHEMA, {**load_ros_params_yaml(PROFILE, "world_model"), "backend": "kairos"})
    spec = load_embodiment(params["embodiment"])
    return params, spec, make_backend("kairos", spec, **backend_options(params))


def test_profile_loads_the_bundled_weights(setup):
    params, spec, b = setup
    record = json.load(open(os.path.join(MODEL, "train.json")))
    assert b.random_parts == [] and b.startup_warning == "" and b.model == "kairos-nano (dit.safetensors)"
    assert record["embodiment"] == spec.name and record["slots"] == list(spec.slot_names)
    assert b.required_horizon in (None, params["horizon"]) and b.relative
    assert (params["image_width"], params["image_height"]) == (record["image_width"], record["image_height"])
    # the perception the weights were trained through (the head crop, the tiles) is the profile's
    perception = load_ros_params_yaml(PROFILE, "perception")
    decode = record["data"]["decode"]
    assert list(perception.get("camera_crops") or []) == list(decode["camera_crops"] or [])
    assert (perception["tile_width"], perception["tile_height"], perception["layout"]) == (
        decode["tile_width"], decode["tile_height"], decode["layout"])
    assert list(perception["camera_topics"]) == decode["camera_topics"]


def test_chunk_starts_at_the_robot_state(setup):
    params, spec, b = setup
    q = (spec.lower + spec.upper) / 2
    history = []
    for i in range(params["history_frames"]):
        frame = np.full((params["image_height"], params["image_width"], 3), 100, np.uint8)
        js = JointStateData(1.0 + 0.1 * i, list(spec.joint_names), q)
        history.append(ObservationData(1.0 + 0.1 * i, ["head", "left_wrist", "right_wrist"], [frame] * 3, js,
                                       params["instruction"], composed=frame))
    b.reset()
    chunk = b.predict(history, params["horizon"], spec.default_step_period).chunk
    from kairos_ros.core.embodiment import slots_to_joints

    assert chunk.values.shape == (params["horizon"], spec.dim) and np.all(np.isfinite(chunk.values))
    # in the adapter's joint units (radians, finger metres), as its start-jump gate compares them: the
    # weights learnt commanded positions, so a gripper's first row may differ from the measured
    # opening (squeezing), but no joint may jump further than the default max_start_jump
    first = slots_to_joints(spec, chunk.values[0].astype(np.float64))
    assert np.abs(first - q).max() < 0.2


def test_beats_holding_still_over_the_chunk_on_a_held_out_demonstration(setup):
    params, spec, _ = setup
    perception = load_ros_params_yaml(PROFILE, "perception")  # the head crop the weights were trained with
    common = dict(tile_width=perception["tile_width"], tile_height=perception["tile_height"], num_predicted_frames=0,
                  max_steps=40, horizon=params["horizon"], history=params["history_length"],
                  camera_crops=perception.get("camera_crops"))
    kairos = evaluate_bag(DEMO, "kairos", backend_params={k: v for k, v in backend_options(params).items()
                                                           if k != "num_predicted_frames"}, **common)
    hold = evaluate_bag(DEMO, "hold", **common)
    assert kairos["counts"]["failed_predictions"] == 0
    mine, still = kairos["actions"]["overall"]["mae"], hold["actions"]["overall"]["mae"]
    assert mine < still, (mine, still)
