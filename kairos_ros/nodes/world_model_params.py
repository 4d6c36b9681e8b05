"""Parameter schema of the world-model node (kept apart so docs and config tests import it)."""
from __future__ import annotations

from kairos_ros.core.params import ParamSpec

SCHEMA = [
    ParamSpec("backend", "str", "hold", "Prediction backend: 'hold' and 'extrapolate' are honest "
              "baselines (no learned model); 'kairos' runs the world-action model.",
              choices=["hold", "extrapolate", "kairos"], read_only=True),
    ParamSpec("embodiment", "str", "dual_arm", "Embodiment whose unified action slots are predicted.",
              read_only=True),
    ParamSpec("horizon", "int", 32, "Rows per action chunk.", min=1, max=1024, read_only=True),
    ParamSpec("step_period", "float", 0.0, "Seconds between chunk rows (0: the embodiment's "
              "default_step_period).", min=0.0, max=10.0, read_only=True),
    ParamSpec("history_length", "int", 8, "Observations kept for the backend.", min=1, max=4096,
              read_only=True),
    ParamSpec("num_predicted_frames", "int", 4, "Future frames predicted per step.", min=0, max=256,
              read_only=True),
    ParamSpec("publish_frames", "bool", True, "Put the predicted frames into PredictedFuture.",
              read_only=True),
    ParamSpec("max_observation_age", "float", 1.0, "Do not predict from an observation older than "
              "this (s, node clock; 0 disables).", min=0.0, max=3600.0, read_only=True),
    ParamSpec("instruction", "str", "", "Initial instruction (SetInstruction changes it).", read_only=True),
    ParamSpec("observation_topic", "str", "/kairos/observation", "Observation input.", read_only=True),
    ParamSpec("chunk_topic", "str", "/kairos/action_chunk", "ActionChunk output.", read_only=True),
    ParamSpec("future_topic", "str", "/kairos/predicted_future", "PredictedFuture output.", read_only=True),
    ParamSpec("status_topic", "str", "/kairos/status", "WorldModelStatus output.", read_only=True),
    ParamSpec("instruction_topic", "str", "/kairos/instruction", "Latched instruction broadcast.",
              read_only=True),
    ParamSpec("frame_id", "str", "base_link", "frame_id of published messages.", read_only=True),
    ParamSpec("status_period", "float", 1.0, "Seconds between status and /diagnostics messages.",
              min=0.05, max=60.0, read_only=True),
    ParamSpec("model_preset", "str", "kairos-nano", "kairos backend: model preset (CPU presets so far).",
              read_only=True),
    ParamSpec("dit_checkpoint", "str", "", "kairos backend: safetensors with the video DiT + action expert "
              "(official key layout).", read_only=True),
    ParamSpec("codec_checkpoint", "str", "", "kairos backend: latent codec (VAE) weights.", read_only=True),
    ParamSpec("text_checkpoint", "str", "", "kairos backend: text encoder weights.", read_only=True),
    ParamSpec("allow_random_weights", "bool", False, "kairos backend: run without weights (predictions are "
              "meaningless; testing only, logged loudly).", read_only=True),
    ParamSpec("flow_steps", "int", 10, "kairos backend: Euler flow-matching steps per action chunk.", min=1,
              max=100, read_only=True),
]


KAIROS_KEYS = ("model_preset", "dit_checkpoint", "codec_checkpoint", "text_checkpoint", "allow_random_weights",
               "flow_steps")


def backend_options(params: dict) -> dict:
    """The subset of validated parameters the chosen backend's constructor takes."""
    options = {"num_predicted_frames": params["num_predicted_frames"]}
    if params["backend"] == "kairos":
        options.update({key: params[key] for key in KAIROS_KEYS})
    return options
