"""How consistent an action chunk is with the model: its flow-matching denoising error.

For a chunk a (normalised, the model's layout) and fixed noise e, at a few noise levels sigma the
noisy chunk x = (1 - sigma) a + sigma e is given to the action expert, whose velocity should be
e - a (the training target). The mean squared error between the two, averaged over the levels,
is low for chunks the model would itself produce from this history and high for others. The noise
and levels are fixed (seeded), so scores of different candidates for the same history compare.
"""
from __future__ import annotations

import torch

SCORE_SIGMAS = (0.25, 0.5, 0.75)


def denoising_error(model, cache, context, ctx_mask, actions: torch.Tensor, sigmas=SCORE_SIGMAS,
                    seed: int = 0) -> torch.Tensor:
    """actions (B, A, action_dim) normalised -> (B,) mean squared velocity error over `sigmas`."""
    a = actions.to(device=context.device, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    total = torch.zeros(a.shape[0], dtype=torch.float64, device=a.device)
    with torch.inference_mode():
        for sigma in sigmas:
            e = torch.randn(a.shape, generator=gen).to(a.device)
            x = (1 - sigma) * a + sigma * e
            t = torch.full((a.shape[0],), sigma * 1000.0, device=a.device)
            v = model.action_velocity(x, t, cache, context, ctx_mask).float()
            total += ((v - (e - a)) ** 2).mean(dim=(1, 2)).double()
    return (total / len(sigmas)).float()
