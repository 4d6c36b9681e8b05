"""Flow-matching samplers. Convention: x_sigma = (1 - sigma) x0 + sigma * noise, the model predicts
the velocity v = noise - x0, and timestep = 1000 * sigma.

- Euler with a shifted schedule (Kairos uses shift 5 for actions): sigma' = s sigma / (1 + (s-1) sigma).
- The distilled (DMD) schedule: a few fixed timesteps (Kairos: 1000, 800, 500, 100); at each the
  model's x0 estimate x - sigma v is re-noised to the next level with fresh noise.
"""
from __future__ import annotations

from typing import Callable

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


def euler_sample(velocity: Velocity, noise: torch.Tensor, steps: int = 10, shift: float = 5.0) -> torch.Tensor:
    sigmas = shifted_sigmas(steps, shift)
    x = noise
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        t = torch.full((x.shape[0],), float(s) * 1000.0)
        x = x + float(s_next - s) * velocity(x, t)
    return x


def distilled_sample(velocity: Velocity, noise: torch.Tensor, timesteps=DISTILLED_TIMESTEPS,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    x = noise
    levels = [t / 1000.0 for t in timesteps]
    x0 = x
    for i, sigma in enumerate(levels):
        v = velocity(x, torch.full((x.shape[0],), sigma * 1000.0))
        x0 = x - sigma * v
        if i + 1 < len(levels):
            nxt = levels[i + 1]
            fresh = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = (1 - nxt) * x0 + nxt * fresh
    return x0


def sample_actions(model, cache, context, ctx_mask, horizon: int, steps: int = 10, shift: float = 5.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """An action chunk (B, horizon, action_dim), still normalised, from a VideoCache (encode_history,
    stream_step or WorldMemory.observe). Runs in inference mode (less per-op overhead)."""
    b = context.shape[0]
    with torch.inference_mode():
        noise = torch.randn(b, horizon, model.cfg.action.action_dim, generator=generator, device=context.device)
        return euler_sample(lambda x, t: model.action_velocity(x, t, cache, context, ctx_mask), noise, steps, shift)
