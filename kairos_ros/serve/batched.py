"""Stateless, batched kairos predictions for several robots at once (the core of `kairos-serve --ray`).

With `temporal_mode: official` (the bundled kairos-nano weights' mode) the model's world state for
a prediction is a function of the robot's newest observations only: the last `history_frames`
composed frames (re-encoded together at every step), the newest robot state (and, for a
state_velocity checkpoint, the velocity fitted over the last observations) and the instruction. So a
robot's world state can travel with each request (`BatchItem.history`), the replica that computes
it keeps nothing between calls, and requests of different robots can share one batched forward
pass without mixing: each batch row is one robot's history, context and noise.

`BatchedKairos.predict_many` groups the items that can share tensors (same instruction, frame
count, horizon and image size), runs each group as one batch (codec, history encoding, flow-matching
action sampling) and returns one chunk per item, in order: the chunk a fresh `kairos` backend
would give for that history alone (test/remote/test_ray_serve.py checks both).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from kairos_ros.backends.kairos_backend import KairosBackend
from kairos_ros.backends.kairos_setup import identity
from kairos_ros.core.action_space import from_layout
from kairos_ros.core.types import ActionChunkData, ObservationData
from kairos_ros.model.sampler import sample_actions

MAX_BATCH = 256


@dataclass
class BatchItem:
    """One robot's request: its newest observations (oldest first, at least one), the chunk wanted,
    and the sampler's starting noise (horizon, action_dim) float32, already scaled (None: zeros,
    the deterministic chunk)."""

    history: list
    horizon: int
    step_period: float
    noise: np.ndarray | None = None


class BatchedKairos:
    """The kairos model behind a stateless, batched predict_many (one instance per replica)."""

    name = "kairos"

    def __init__(self, spec, **params):
        params = {**params, "num_predicted_frames": 0}  # chunks only: predicted frames are not served batched
        if params.get("temporal_mode", "streaming") != "official":
            raise ValueError("batched (Ray) serving needs temporal_mode: official, whose world state is the "
                             "newest observations and so can travel with each request; streaming mode keeps a "
                             "per-robot recurrent state in the process")
        self.backend = KairosBackend(spec, **params)  # loads and checks everything as the node does
        self.spec = spec
        self.model = self.backend.model
        b = self.backend
        self.history_frames = b.opts.history_frames
        self.frames_needed = max(self.history_frames, b.state_velocity or 1)  # observations a request carries
        self.action_dim = b.net.cfg.action.action_dim
        self.noise_scale = b.opts.action_noise_scale
        self._text: dict = {}

    # -- one robot's inputs -----------------------------------------------------------------------------
    def _state(self, history: Sequence[ObservationData]) -> tuple[np.ndarray, np.ndarray | float]:
        """(normalised proprio (S,), the reference actions are offsets from) as KairosBackend._context."""
        return self.backend.proprio(history)

    def _text_tokens(self, text: str) -> torch.Tensor:
        if text not in self._text:
            if len(self._text) >= 64:
                self._text.clear()
            with torch.inference_mode():
                self._text[text] = self.backend.text.encode(text).to(self.backend.device)
        return self._text[text]

    def check(self, item: BatchItem) -> None:
        if not item.history:
            raise ValueError("empty observation history: nothing to predict from")
        if not 1 <= int(item.horizon) <= 1024:
            raise ValueError(f"horizon {item.horizon} must be in [1, 1024]")
        self.backend._check_horizon(int(item.horizon))
        for obs in item.history[-self.history_frames:]:
            self.backend.check_observation(obs)
        if item.noise is not None and np.shape(item.noise) != (item.horizon, self.action_dim):
            raise ValueError(f"noise of shape {np.shape(item.noise)} must be ({item.horizon}, {self.action_dim})")

    @staticmethod
    def _key(item: BatchItem, frames: int) -> tuple:
        last = item.history[-1]
        return (last.instruction or "", min(len(item.history), frames), int(item.horizon), last.composed.shape)

    # -- the batch ------------------------------------------------------------------------------------------
    def predict_many(self, items: Sequence[BatchItem]) -> list:
        """One result per item, in order: an ActionChunkData, or the ValueError that item raised
        (a bad request fails alone, not its batch)."""
        if len(items) > MAX_BATCH:
            raise ValueError(f"{len(items)} items in one batch (at most {MAX_BATCH})")
        use_threads = getattr(self.backend, "_use_threads", None)  # the profile's intra-op threads, per thread
        if use_threads is not None:
            use_threads()
        results: list = [None] * len(items)
        groups: dict = {}
        for i, item in enumerate(items):
            try:
                self.check(item)
                groups.setdefault(self._key(item, self.history_frames), []).append(i)
            except ValueError as exc:
                results[i] = exc
        for key, index in groups.items():
            try:
                chunks = self._group([items[i] for i in index], key[0], key[1])
            except ValueError as exc:
                chunks = [exc] * len(index)
            for i, chunk in zip(index, chunks):
                results[i] = chunk
        return results

    def _group(self, items: list, text: str, frames: int) -> list:
        """Items sharing instruction, frame count, horizon and image size, as one batch of B rows."""
        b = self.backend
        horizon = int(items[0].horizon)
        states, references = zip(*(self._state(item.history) for item in items))
        pixels = np.stack([np.ascontiguousarray(o.composed) for item in items for o in item.history[-frames:]])
        noise = np.stack([np.zeros((horizon, self.action_dim), np.float32) if item.noise is None
                          else np.asarray(item.noise, np.float32) for item in items])
        n = len(items)
        with torch.inference_mode():
            text_tokens = self._text_tokens(text)
            ctx, cm = b.net.context(text_tokens.expand(n, -1, -1),
                                    torch.from_numpy(np.stack(states)).to(b.device))
            x = torch.from_numpy(pixels).to(b.device).permute(0, 3, 1, 2).float() / 127.5 - 1
            latents = b.codec.encode(x)  # (n * frames, C, 1, h, w)
            if not torch.all(torch.isfinite(latents)):
                raise ValueError("non-finite latent frame")
            c, h, w = latents.shape[1], latents.shape[3], latents.shape[4]
            latents = latents.reshape(n, frames, c, h, w).permute(0, 2, 1, 3, 4)  # (n, C, frames, h, w)
            cache = b.net.encode_history(latents, ctx, cm, kv_only=True)[0]  # only as far as the action expert reads
            actions = sample_actions(b.net, cache, ctx, cm, horizon, b.opts.flow_steps,
                                     noise=torch.from_numpy(noise))  # (n, horizon, action_dim)
        out = []
        for row, item, reference in zip(actions.float().cpu().numpy(), items, references):
            if not np.all(np.isfinite(row)):
                out.append(ValueError("non-finite action chunk"))
                continue
            values = from_layout(identity(row, b.action_norm, inverse=True) + reference, b.action_slots,
                                 self.spec.slot_names).astype(np.float32)
            last = item.history[-1]
            out.append(ActionChunkData(last.stamp, self.spec.name, list(self.spec.slot_names), values,
                                       float(item.step_period), self.name, self.model))
        return out
