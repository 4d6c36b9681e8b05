"""Flow-matching samplers. Convention: x_sigma = (1 - sigma) x0 + sigma * noise, the model predicts
the velocity v = noise - x0, and timestep = 1000 * sigma.

- Euler with a shifted schedule (Kairos uses shift 5 for actions): sigma' = s sigma / (1 + (s-1) sigma).
- Video frames use a shift that grows with the sequence (`video_shift`): in the official pipeline
  mu rises linearly from 0.5 at 256 tokens per latent frame to 0.9 at 8192, and the shift is
  e^mu times the square root of the number of latent frames (history included).
- The distilled (DMD) schedule: a few fixed timesteps (Kairos: 1000, 800, 500, 100, passed through
  the shift-5 map as the official DMD scheduler does); at each the model's x0 estimate x - sigma v
  is re-noised to the next level with fresh noise.
"""
from __future__ import annotations

from typing import Callable

import math

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, timestep (B,)) -> v
DISTILLED_TIMESTEPS = (1000.0, 800.0, 500.0, 100.0)


def shifted_sigmas(steps: int, shift: float) -> torch.Tensor:
    """steps + 1 noise levels from 1 down to 0."""
    if steps < 1:
        raise ValueError(f"steps = {steps} must be >= 1")
    if shift <= 0:
        raise ValueError(f"shift = {shift} must be > 0")
    sigma = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    return shift * sigma / (1 + (shift - 1) * sigma)


def video_shift(tokens_per_frame: int, latent_frames: int) -> float:
    """The official video shift for frames of `tokens_per_frame` patches, `latent_frames` in all."""
    if tokens_per_frame < 1 or latent_frames < 1:
        raise ValueError(f"video_shift needs tokens_per_frame >= 1 and latent_frames >= 1, got "
                         f"{tokens_per_frame} and {latent_frames}")
    mu = 0.5 + (tokens_per_frame - 256) * (0.9 - 0.5) / (8192 - 256)
    return math.exp(mu) * math.sqrt(latent_frames)


def shift_levels(levels, shift: float) -> torch.Tensor:
    """The shift map s sigma / (1 + (s - 1) sigma) applied to noise levels in [0, 1]."""
    sigma = torch.as_tensor(levels, dtype=torch.float64)
    return shift * sigma / (1 + (shift - 1) * sigma)


def distilled_sigmas(timesteps=DISTILLED_TIMESTEPS, shift: float = 5.0) -> torch.Tensor:
    """The distilled schedule's levels followed by 0 (its last x0 estimate is the sample)."""
    return torch.cat([shift_levels([t / 1000.0 for t in timesteps], shift), torch.zeros(1, dtype=torch.float64)])


class NoiseQueue:
    """Gaussian noise drawn ahead from a generator, in the order a sampler will ask for it, and
    handed out later (on another thread): the generator's sequence stays what drawing on demand
    gives. Pass it wherever a sampler takes a generator."""

    def __init__(self, generator: torch.Generator | None, shapes, dtype=torch.float32):
        self.items = [torch.randn(tuple(s), generator=generator, dtype=dtype) for s in shapes]

    def take(self, shape, dtype=torch.float32) -> torch.Tensor:
        if not self.items or tuple(self.items[0].shape) != tuple(shape):
            raise ValueError(f"noise of shape {tuple(shape)} asked for, the queue holds "
                             f"{[tuple(x.shape) for x in self.items[:3]]}")
        return self.items.pop(0).to(dtype)


def gaussian(shape, generator, dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise on the CPU from a torch.Generator (or None), or a NoiseQueue's next."""
    if isinstance(generator, NoiseQueue):
        return generator.take(shape, dtype)
    return torch.randn(tuple(shape), generator=generator, dtype=dtype)


def advance(x: torch.Tensor, v: torch.Tensor, sigma: float, sigma_next: float, kind: str = "euler",
            generator: torch.Generator | NoiseQueue | None = None) -> torch.Tensor:
    """One step from level sigma to sigma_next: Euler along v, or (distilled) the x0 estimate
    x - sigma v re-noised to sigma_next. Both equal x - sigma v when sigma_next is 0."""
    if kind == "euler" or sigma_next == 0.0:
        return x + (sigma_next - sigma) * v
    if kind != "distilled":
        raise ValueError(f"unknown schedule '{kind}' (euler or distilled)")
    fresh = gaussian(x.shape, generator, x.dtype).to(x.device)
    return (1 - sigma_next) * (x - sigma * v) + sigma_next * fresh


def euler_sample(velocity: Velocity, noise: torch.Tensor, steps: int = 10, shift: float = 5.0) -> torch.Tensor:
    sigmas = shifted_sigmas(steps, shift)
    x = noise
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        t = torch.full((x.shape[0],), float(s) * 1000.0)
        x = x + float(s_next - s) * velocity(x, t)
    return x


def distilled_sample(velocity: Velocity, noise: torch.Tensor, timesteps=DISTILLED_TIMESTEPS,
                     generator: torch.Generator | None = None, shift: float = 5.0) -> torch.Tensor:
    levels = distilled_sigmas(timesteps, shift).tolist()
    x = noise
    for sigma, nxt in zip(levels[:-1], levels[1:]):
        x = advance(x, velocity(x, torch.full((x.shape[0],), sigma * 1000.0)), sigma, nxt, "distilled", generator)
    return x


def sample_actions(model, cache, context, ctx_mask, horizon: int, steps: int = 10, shift: float = 5.0,
                   generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
    """An action chunk (B, horizon, action_dim), still normalised, from a VideoCache (encode_history,
    stream_step or WorldMemory.observe). Runs in inference mode (less per-op overhead). The noise
    is drawn on the CPU from `generator` (reproducible on any device) unless given."""
    b = context.shape[0]
    with torch.inference_mode():
        if noise is None:
            noise = torch.randn(b, horizon, model.cfg.action.action_dim, generator=generator)
        noise = noise.to(device=context.device, dtype=torch.float32)
        return euler_sample(lambda x, t: model.action_velocity(x, t.to(x.device), cache, context, ctx_mask), noise,
                            steps, shift)
