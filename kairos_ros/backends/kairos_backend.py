"""The `kairos` backend: the world-action model behind the world-model node.

Each observation's composed frame is encoded to a latent and absorbed into the streaming world
state (constant cost per frame); the action chunk is sampled with flow-matching Euler steps from
the cached window, conditioned on the instruction and the robot state, and checked before it
leaves: a non-finite input or output raises, so the node drops the prediction, counts it and
resets the world state. Without weights the backend refuses to start, naming the missing
parameter, unless `allow_random_weights` is set, which is for testing and logged loudly.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from kairos_ros.backends.base import Backend, _check_history
from kairos_ros.core.embodiment import state_to_slots
from kairos_ros.core.types import ActionChunkData, ObservationData, PredictionData
from kairos_ros.model.codecs import ConvCodec, HashTextEncoder
from kairos_ros.model.config import get_preset
from kairos_ros.model.sampler import sample_actions
from kairos_ros.model.wam import KairosWAM
from kairos_ros.model.world_state import WorldState

RANDOM_WEIGHTS_WARNING = ("kairos backend running with RANDOM WEIGHTS (allow_random_weights): its predictions "
                          "are meaningless; for testing the plumbing only, never for a robot")


class KairosBackend(Backend):
    name = "kairos"

    def __init__(self, spec, num_predicted_frames: int = 0, model_preset: str = "kairos-nano",
                 dit_checkpoint: str = "", codec_checkpoint: str = "", text_checkpoint: str = "",
                 allow_random_weights: bool = False, flow_steps: int = 10, seed: int = 0,
                 max_frames_per_step: int = 1):
        super().__init__(spec, num_predicted_frames)
        from kairos_ros.model.checkpoint import load_checkpoint

        cfg = get_preset(model_preset)
        if not model_preset.startswith("kairos-nano") and model_preset != "kairos-test":
            raise ValueError(f"model_preset '{model_preset}': only the CPU presets run in this backend so far")
        if cfg.action.action_dim != len(spec.slot_names):
            raise ValueError(f"model_preset '{model_preset}' predicts {cfg.action.action_dim} action values but "
                             f"embodiment '{spec.name}' has {len(spec.slot_names)} slots")
        missing = [n for n, p in (("dit_checkpoint", dit_checkpoint), ("codec_checkpoint", codec_checkpoint),
                                  ("text_checkpoint", text_checkpoint)) if not p]
        if missing and not allow_random_weights:
            raise ValueError(f"parameter '{missing[0]}' is empty: the kairos backend needs trained weights "
                             "(or allow_random_weights:=true, for testing only)")
        torch.manual_seed(seed)
        self.net = KairosWAM(cfg).eval()
        self.codec = ConvCodec().eval()
        self.text = HashTextEncoder(cfg.video.text_dim).eval()
        for module, path in ((self.net, dit_checkpoint), (self.codec, codec_checkpoint), (self.text, text_checkpoint)):
            if path:
                load_checkpoint(module, path)
        self.startup_warning = RANDOM_WEIGHTS_WARNING if missing else ""
        self.model = f"{model_preset}" + (" (RANDOM WEIGHTS)" if missing else f" ({dit_checkpoint})")
        self.flow_steps = flow_steps
        if max_frames_per_step < 1:
            raise ValueError(f"max_frames_per_step = {max_frames_per_step} must be >= 1")
        # When inference is slower than the camera, absorbing every missed frame would fall further
        # behind each step: only the newest frames are absorbed, the skipped ones are counted.
        self.max_frames_per_step = max_frames_per_step
        self.skipped_frames = 0
        self.state = WorldState()
        self.last_stamp: float | None = None
        self.generator = torch.Generator().manual_seed(seed)

    def reset(self) -> None:
        super().reset()
        self.state.reset()
        self.last_stamp = None

    def _context(self, obs: ObservationData):
        q = np.array([obs.joint_state.positions[list(obs.joint_state.names).index(j)] for j in self.spec.joint_names])
        slots = state_to_slots(self.spec, q)
        if not np.all(np.isfinite(slots)):
            raise ValueError("non-finite robot state")
        text = self.text.encode(obs.instruction or "")
        return self.net.context(text, torch.from_numpy(slots.astype(np.float32))[None])

    def predict(self, history: Sequence[ObservationData], horizon: int, step_period: float) -> PredictionData:
        _check_history(history)
        last = history[-1]
        if last.composed is None:
            raise ValueError("observation without a composed frame")
        with torch.no_grad():
            ctx, cm = self._context(last)
            cache = None
            new = [o for o in history if self.last_stamp is None or o.stamp > self.last_stamp]
            self.skipped_frames += max(0, len(new) - self.max_frames_per_step)
            for obs in new[-self.max_frames_per_step:]:  # the newest frames not seen yet, oldest first
                frame = torch.from_numpy(np.ascontiguousarray(obs.composed)).permute(2, 0, 1)[None].float() / 127.5 - 1
                latent = self.codec.encode(frame)
                if not torch.all(torch.isfinite(latent)):
                    raise ValueError("non-finite latent frame")
                cache, _ = self.net.stream_step(latent, ctx, cm, self.state)
                self.last_stamp = obs.stamp
            if cache is None:
                raise ValueError("no new frame since the last prediction")
            actions = sample_actions(self.net, cache, ctx, cm, horizon, self.flow_steps, generator=self.generator)
        values = actions[0].numpy().astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise ValueError("non-finite action chunk")
        self.world_state_frames = self.state.frames
        chunk = ActionChunkData(last.stamp, self.spec.name, list(self.spec.slot_names), values, step_period, self.name,
                                self.model)
        return PredictionData(last.stamp, [], [], chunk)

    def imagine(self, history, candidate: ActionChunkData) -> PredictionData:
        raise ValueError("Imagine is not implemented for the kairos backend yet (joint video+action sampling)")
