"""The temporal memory a world-model runner holds between control steps, in one of two modes.

- `official` (the released semantics): keep the last `history_frames` latent frames and, at every
  observation, re-encode them all with `encode_history` (t = 0, bidirectional windows among the
  history frames, frame positions 0..F-1, the current context). Cost grows with history_frames,
  which is therefore bounded; RoboTwin uses 1.
- `streaming`: absorb each frame once into a WorldState (causal windows, GatedDeltaNet state
  carried; see world_state.py). Cost per frame is constant however long the history. Each frame
  is encoded with the context (instruction + robot state) current when it arrived.

Both return a VideoCache for `KairosWAM.action_velocity` (and so for `sampler.sample_actions`).
"""
from __future__ import annotations

from collections import deque

import torch

from kairos_ros.model.video_stack import VideoCache
from kairos_ros.model.wam import KairosWAM
from kairos_ros.model.world_state import WorldState

TEMPORAL_MODES = ("official", "streaming")


class WorldMemory:
    def __init__(self, model: KairosWAM, mode: str = "official", history_frames: int = 1, action_frames: int = 1):
        if mode not in TEMPORAL_MODES:
            raise ValueError(f"unknown temporal mode '{mode}' (one of {list(TEMPORAL_MODES)})")
        rope_len = model.cfg.video.rope_len
        if not isinstance(history_frames, int) or not 1 <= history_frames <= rope_len:
            raise ValueError(f"history_frames = {history_frames!r} must be an int in [1, {rope_len}]")
        self.model, self.mode = model, mode
        self.history: deque = deque(maxlen=history_frames)  # official: latent frames (B, C, 1, H, W)
        self.state = WorldState(action_frames=action_frames)  # streaming
        self.latest: torch.Tensor | None = None  # the newest latent frame (both modes)

    @property
    def frames(self) -> int:
        """Frames observed since the last reset."""
        return self.state.frames

    def reset(self) -> None:
        self.history.clear()
        self.state.reset()
        self.latest = None

    def observe(self, frame_latents: torch.Tensor, context: torch.Tensor,
                ctx_mask: torch.Tensor | None = None) -> VideoCache:
        """Add one clean latent frame (B, C, 1, H, W); return the cache the action expert attends."""
        return self.observe_many([frame_latents], context, ctx_mask)

    def observe_many(self, frames: list, context: torch.Tensor, ctx_mask: torch.Tensor | None = None) -> VideoCache:
        """Add clean latent frames (each (B, C, 1, H, W)), oldest first; official mode re-encodes once."""
        if not frames:
            raise ValueError("observe_many needs at least one frame")
        if self.mode == "streaming":
            for frame in frames:
                cache = self.model.stream_step(frame, context, ctx_mask, self.state)[0]
            self.latest = frames[-1]
            return cache
        for frame in frames:
            if self.history and self.history[-1].shape != frame.shape:
                raise ValueError(f"frame {tuple(frame.shape)} differs from the history's "
                                 f"{tuple(self.history[-1].shape)} (reset to change the image size)")
            self.history.append(frame)
            self.state.frames += 1  # the counter only; official mode keeps no per-layer state
        self.latest = frames[-1]
        # Only as far as the action expert reads: the same cache, without the layers after its last K/V.
        return self.model.encode_history(self.history_latents(), context, ctx_mask, kv_only=True)[0]

    def history_latents(self) -> torch.Tensor:
        """Official mode: the kept history frames (B, C, F, H, W)."""
        return torch.cat(list(self.history), dim=2)
