"""Parameter schema of the world-model node (kept apart so docs and config tests import it)."""
from __future__ import annotations

from kairos_ros.backends.kairos_options import KAIROS_KEYS  # the validated parameters that reach the kairos backend
from kairos_ros.core.params import ParameterError, ParamSpec
from kairos_ros.core.stamps import FUTURE_TOLERANCE, FUTURE_TOLERANCE_MAX
from kairos_ros.core.text import InstructionError, check_instruction
from kairos_ros.model.config import PRESETS

SCHEMA = [
    ParamSpec("backend", "str", "hold", "Prediction backend: 'hold' and 'extrapolate' are honest "
              "baselines (no learned model); 'kairos' runs the world-action model; 'remote' asks kairos-serve "
              "for it over a websocket (remote_* parameters); 'official' asks a running official Kairos inference "
              "service (its POST /infer, a pickle protocol: only with official_allow_pickle, official_* parameters).",
              choices=["hold", "extrapolate", "kairos", "remote", "official"], read_only=True),
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
    ParamSpec("chunk_first", "bool", False, "Publish the ActionChunk as soon as the backend has it and make the "
              "predicted frames on a worker thread of their own, so neither this chunk nor the next waits for video "
              "(kairos on a CPU: a predicted frame costs many chunks); a frame job still waiting when a newer one "
              "comes is dropped and counted (frames_stale). A prediction whose frames then turn out non-finite is "
              "still dropped and the world state reset, but its (checked, finite) chunk has been sent. false: "
              "nothing is published until the whole prediction, frames included, is checked.", read_only=True),
    ParamSpec("latency_budget", "float", 0.0, "Warn (throttled; counted as slow_inference in /diagnostics, so "
              "the status turns WARN) when the time from an observation's arrival to its chunk's publication "
              "exceeds this (s; 0 disables), naming the stage that took longest (wait, encode, history, sample, "
              "output, message; per-stage percentiles in /diagnostics). Set it to the replanning period the robot "
              "needs.", min=0.0, max=60.0, read_only=True),
    ParamSpec("max_observation_age", "float", 1.0, "Do not predict from an observation older than "
              "this (s, node clock; 0 disables).", min=0.0, max=3600.0, read_only=True),
    ParamSpec("future_stamp_tolerance", "float", FUTURE_TOLERANCE, "Drop observations stamped further ahead of "
              "the node clock than this (s; sim time included): a stamp from the future is not a measurement.",
              min=0.0, max=FUTURE_TOLERANCE_MAX, read_only=True),
    ParamSpec("imagine_queue", "int", 2, "Imagine goals accepted at once (queued or running); more are refused at "
              "once. Control predictions always run first; 0 refuses every goal.", min=0, max=64, read_only=True),
    ParamSpec("imagine_worker", "str", "separate", "Where Imagine goals run: 'separate' (a second model instance on "
              "a thread of its own at a lower CPU priority: a long Imagine never holds up a control chunk; twice the "
              "model's memory) or 'shared' (the control thread's model, between control predictions: one Imagine "
              "can delay the next chunk by its own duration).", choices=["separate", "shared"], read_only=True),
    ParamSpec("imagine_timeout", "float", 30.0, "An accepted Imagine goal still waiting behind control predictions "
              "after this long (s) is aborted, so every accepted goal ends.", min=0.1, max=3600.0, read_only=True),
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
    ParamSpec("model_preset", "str", "kairos-nano", "kairos backend: model preset. kairos-nano (CPU, real time) "
              "and kairos-test are resized to the action layout; kairos-4b-wam (RoboTwin, 14-D) and "
              "kairos-4b-wam-libero take the official weights and need a CUDA device.",
              choices=sorted(PRESETS), read_only=True),
    ParamSpec("device", "str", "auto", "kairos backend: 'auto' (CUDA when torch sees one, else the CPU), 'cpu' "
              "or 'cuda' (refused when there is none).", choices=["auto", "cpu", "cuda"], read_only=True),
    ParamSpec("dtype", "str", "auto", "kairos backend: weights and activations dtype; 'auto' = bfloat16 on CUDA "
              "(the released pipeline's), float32 on the CPU. float16 is refused on the CPU, bfloat16 on a GPU "
              "without it.", choices=["auto", "float32", "bfloat16", "float16"], read_only=True),
    ParamSpec("allow_large_preset_on_cpu", "bool", False, "kairos backend: run a preset of more than 200M "
              "parameters (the 4B presets) on the CPU anyway (tens of GB, minutes per chunk).", read_only=True),
    ParamSpec("dit_checkpoint", "str", "", "kairos backend: safetensors with the video DiT + action expert "
              "(official key layout; kairos-nano files carry their action/state layout and statistics, see "
              "docs/kairos-nano-checkpoint.md).", read_only=True),
    ParamSpec("codec_checkpoint", "str", "", "kairos backend: latent codec. A Wan2.1 VAE for the 4B presets (a "
              "local diffusers AutoencoderKLWan folder, or Wan2.1_VAE.pth) or the kairos-nano codec safetensors.",
              read_only=True),
    ParamSpec("text_checkpoint", "str", "", "kairos backend: text encoder. A local Qwen model folder for the 4B "
              "presets (Qwen3.5-2B for kairos-4b-wam, Qwen2.5-VL-7B-Instruct for -libero) or the kairos-nano text "
              "encoder safetensors.", read_only=True),
    ParamSpec("dit_checkpoint_sha256", "str", "", "kairos backend: sha256 of the dit_checkpoint file (64 hex "
              "digits; '': not checked). When set, start-up is refused unless the file's digest matches. A sidecar "
              "'<file>.sha256' (sha256sum format; kairos-checkpoint hash --write-sidecar) is checked whenever "
              "present.", read_only=True),
    ParamSpec("codec_checkpoint_sha256", "str", "", "kairos backend: sha256 of the codec_checkpoint file, as "
              "dit_checkpoint_sha256 (refused for a folder: its files' sidecars are checked instead).",
              read_only=True),
    ParamSpec("text_checkpoint_sha256", "str", "", "kairos backend: sha256 of the text_checkpoint file, as "
              "dit_checkpoint_sha256 (refused for a folder: its files' sidecars are checked instead).",
              read_only=True),
    ParamSpec("text_drop_tokens", "int", 97, "kairos backend, Qwen encoder: hidden states kept from this token "
              "on (97 in the official pipeline: its chat-template prefix and system message).", min=0, max=4096,
              read_only=True),
    ParamSpec("text_system_prompt", "str", "", "kairos backend, Qwen encoder: system message of the chat "
              "template (use the one the checkpoint was trained with; it is not shipped here).", read_only=True),
    ParamSpec("allow_random_weights", "bool", False, "kairos backend: run parts without weights (predictions are "
              "meaningless; testing only, logged loudly and reported in every status).", read_only=True),
    ParamSpec("action_stats", "str", "", "kairos backend: Kairos stats JSON ({state|action}/default/global_*) "
              "to denormalise actions and normalise the robot state, in the model's layout order (empty: the "
              "statistics in the DiT checkpoint; refused for trained weights without any).", read_only=True),
    ParamSpec("normalization", "str", "zscore", "kairos backend: statistics used: zscore (mean/std, RoboTwin) or "
              "minmax (to [-1, 1], LIBERO); clamped to +-5.", choices=["zscore", "minmax"], read_only=True),
    ParamSpec("action_layout", "str_array", [], "kairos backend: the model's action slots in its order (empty: "
              "from the checkpoint, the preset (ROBOTWIN_SLOTS for kairos-4b-wam), else the embodiment's slots).",
              read_only=True),
    ParamSpec("state_layout", "str_array", [], "kairos backend: the model's robot-state slots (empty: from the "
              "checkpoint or preset, else the action layout).", read_only=True),
    ParamSpec("temporal_mode", "str", "streaming", "kairos backend: 'streaming' (each frame absorbed once into "
              "the world state, constant cost) or 'official' (the last history_frames re-encoded every step, the "
              "released semantics).", choices=["streaming", "official"], read_only=True),
    ParamSpec("history_frames", "int", 1, "kairos backend: frames the action expert attends (official: "
              "re-encoded each step, so bounded; RoboTwin uses 1).", min=1, max=64, read_only=True),
    ParamSpec("flow_steps", "int", 10, "kairos backend: Euler flow-matching steps per action chunk (shift 5).",
              min=1, max=100, read_only=True),
    ParamSpec("video_steps", "int", 0, "kairos backend: Euler steps for predicted frames (0: flow_steps; "
              "official mode then runs the joint video+action loop).", min=0, max=100, read_only=True),
    ParamSpec("video_schedule", "str", "euler", "kairos backend: predicted frames by Euler steps with the "
              "sequence-length shift, or the 4-step distilled schedule (for distilled weights).",
              choices=["euler", "distilled"], read_only=True),
    ParamSpec("video_every", "int", 1, "kairos backend: predict frames on every Nth prediction only (frames "
              "cost much more than a chunk on a CPU); the others publish no frames.", min=1, max=10000,
              read_only=True),
    ParamSpec("frame_period", "float", 0.0, "kairos backend: seconds between predicted frames (0: spread over "
              "the chunk).", min=0.0, max=60.0, read_only=True),
    ParamSpec("image_width", "int", 0, "kairos backend: composed image width the model expects (a multiple of "
              "16; 0: any multiple of 16); other sizes are refused per observation.", min=0, max=8192,
              read_only=True),
    ParamSpec("image_height", "int", 0, "kairos backend: composed image height (as image_width).", min=0,
              max=8192, read_only=True),
    ParamSpec("max_frames_per_step", "int", 1, "kairos backend, streaming mode: newest unseen frames absorbed per "
              "prediction when inference is slower than the camera (the others are skipped and counted). The "
              "official mode always takes up to history_frames new observations, so its history keeps the "
              "camera's spacing (history_length must hold them).", min=1, max=64, read_only=True),
    ParamSpec("seed", "int", 0, "kairos backend: seed of the sampling noise (and of random weights).", min=0,
              max=2**31 - 1, read_only=True),
    ParamSpec("action_noise_scale", "float", 1.0, "kairos backend: scale of the action sampler's starting noise "
              "(1: the released sampler, a random draw from the learnt distribution; 0: the deterministic chunk "
              "from the prior's mean, lower variance; in between, lower-temperature draws).", min=0.0, max=1.0,
              read_only=True),
    ParamSpec("threads", "int", 1, "kairos backend: intra-op threads of each inference thread (the control "
              "path, and the worker that predicts frames); 0: torch's default (one per core). 1 on two cores: the "
              "frame worker takes the other core, and a two-thread team waits for a preempted worker at every "
              "small op when the machine is shared (README, real-time inference).", min=0, max=256,
              read_only=True),
]





REMOTE_SCHEMA = [
    ParamSpec("remote_url", "str", "ws://127.0.0.1:8765", "remote backend: kairos-serve's address, ws://host:port "
              "or wss://host:port (TLS). Plain ws:// is refused for a host that is not loopback unless "
              "remote_allow_plaintext.", read_only=True),
    ParamSpec("remote_token_file", "str", "", "remote backend: file holding the bearer token (empty: the "
              "KAIROS_REMOTE_TOKEN environment variable). The token is sent in the handshake only, never logged.",
              read_only=True),
    ParamSpec("remote_ca_file", "str", "", "remote backend: CA certificate (PEM) that signs the server's TLS "
              "certificate (empty: the system's CAs).", read_only=True),
    ParamSpec("remote_allow_plaintext", "bool", False, "remote backend: allow ws:// to a host that is not loopback "
              "(token and observations in clear).", read_only=True),
    ParamSpec("remote_connect_timeout", "float", 2.0, "remote backend: deadline for the connection, TLS, token "
              "check and hello (s).", min=0.05, max=60.0, read_only=True),
    ParamSpec("remote_reply_timeout", "float", 1.0, "remote backend: deadline for a chunk (and for its predicted "
              "frames) after the observation is sent (s). A late chunk is given up: nothing is published for that "
              "observation.", min=0.01, max=600.0, read_only=True),
    ParamSpec("remote_frames_timeout", "float", 30.0, "remote backend: deadline for the predicted frames after "
              "their chunk (s; frames cost much more than a chunk). The inference thread waits for them, as it does "
              "in-process; frames that come later are given up and counted as a failure.", min=0.01, max=600.0,
              read_only=True),
    ParamSpec("remote_backoff_max", "float", 5.0, "remote backend: a lost link is retried after 0.1 s, doubling up "
              "to this many seconds between attempts.", min=0.1, max=300.0, read_only=True),
    ParamSpec("remote_image_encoding", "str", "raw", "remote backend: the composed frame as raw uint8 (exact; "
              "128x144x3 = 55 kB) or JPEG (smaller, lossy).", choices=["raw", "jpeg"], read_only=True),
    ParamSpec("remote_jpeg_quality", "int", 90, "remote backend: JPEG quality when remote_image_encoding is jpeg.",
              min=1, max=100, read_only=True),
    ParamSpec("remote_max_message_bytes", "int", 16 * 2**20, "remote backend: largest reply accepted (bytes; "
              "predicted frames make the largest).", min=1024, max=2**30, read_only=True),
]
SCHEMA += REMOTE_SCHEMA
REMOTE_KEYS = tuple(spec.name for spec in REMOTE_SCHEMA)

OFFICIAL_SCHEMA = [
    ParamSpec("official_url", "str", "http://127.0.0.1:8000", "official backend: the official Kairos inference "
              "service (http:// or https://; POST /infer).", read_only=True),
    ParamSpec("official_allow_pickle", "bool", False, "official backend: the service's requests and replies are "
              "Python pickles. Replies are decoded only by a restricted unpickler (numpy arrays and plain builtins; "
              "any other global refused by name), but the protocol stays unsafe against a hostile service: the "
              "backend refuses to start unless this is true (docs/remote-protocol.md).", read_only=True),
    ParamSpec("official_timeout", "float", 5.0, "official backend: deadline for one whole /infer exchange (s).",
              min=0.05, max=600.0, read_only=True),
    ParamSpec("official_max_reply_bytes", "int", 16 * 2**20, "official backend: largest reply read (bytes), "
              "checked from Content-Length before reading.", min=1024, max=2**30, read_only=True),
    ParamSpec("official_steps", "int", 20, "official backend: num_inference_steps sent with each request.",
              min=1, max=1000, read_only=True),
    ParamSpec("official_state_layout", "str_array", [], "official backend: the unified slots, in the service's "
              "robot_state order (empty: the embodiment's slot order).", read_only=True),
    ParamSpec("official_action_layout", "str_array", [], "official backend: the unified slot of each column of the "
              "service's action array (empty: the embodiment's slot order).", read_only=True),
    ParamSpec("official_ca_file", "str", "", "official backend: CA certificate (PEM) for an https:// service "
              "(empty: the system's CAs).", read_only=True),
]
SCHEMA += OFFICIAL_SCHEMA
OFFICIAL_KEYS = tuple(spec.name for spec in OFFICIAL_SCHEMA)


def backend_options(params: dict) -> dict:
    """The subset of validated parameters the chosen backend's constructor takes."""
    options = {"num_predicted_frames": params["num_predicted_frames"]}
    if params["backend"] == "kairos":
        options.update({key: params[key] for key in KAIROS_KEYS})
    if params["backend"] == "remote":
        options.update({key: params[key] for key in REMOTE_KEYS}, horizon=params["horizon"],
                       step_period=params["step_period"], publish_frames=params["publish_frames"])
    if params["backend"] == "official":
        options.update({key: params[key] for key in OFFICIAL_KEYS})
    return options


def check_world_model(params: dict, backend=None) -> None:
    """The checks that span several parameters (or a parameter and the loaded model), shared by the
    node, closed-loop evaluation and kairos-eval. `params` is validated (core.params); `backend` the
    constructed backend when there is one. ParameterError names the parameter and value."""
    p = params
    if p["backend"] == "kairos" and p["temporal_mode"] == "official" and p["history_length"] < p["history_frames"]:
        raise ParameterError(f"parameter 'history_length' = {p['history_length']} must be >= history_frames "
                             f"{p['history_frames']}: the official mode re-encodes that many observations")
    try:
        check_instruction(p["instruction"])
    except InstructionError as exc:
        raise ParameterError(f"parameter 'instruction': {exc}") from exc
    if backend is None:
        return
    fixed = getattr(backend, "required_horizon", None)
    if fixed is not None and fixed != p["horizon"]:
        raise ParameterError(f"parameter 'horizon' = {p['horizon']}: the model's checkpoint (stepwise action "
                             f"statistics) predicts chunks of {fixed} rows; set horizon:={fixed}")
    fit = getattr(backend, "state_velocity", 0)
    if fit > p["history_length"]:
        raise ParameterError(f"parameter 'history_length' = {p['history_length']} must be >= {fit}: the model's "
                             f"checkpoint fits the robot's velocity over the last {fit} observations")
