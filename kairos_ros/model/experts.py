"""The two experts' modules (names = the official checkpoint keys) and their input embeddings.

VideoDiT (`video_dit.*`): Conv3d patch embedding -> tokens in (frame, row, column) order,
text/time embeddings, one timestep per token, blocks [SWA, SWA, DSWA, GATED] x n, modulated head.
ActionExpert (`action_dit.*`): action_encoder, proprio_encoder (robot state -> one context token),
text/time embeddings, one scalar timestep per sample, full-attention blocks, plain Linear head.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from kairos_ros.model.blocks import Block
from kairos_ros.model.config import ActionExpertConfig, VideoDiTConfig
from kairos_ros.model.layers import RopeTable, layer_norm, mlp_embedding, sinusoid


@dataclass
class Prepared:
    """One expert's inputs after the embeddings (also what the parity fixtures compare)."""

    x: torch.Tensor  # (B, N, D) tokens
    t: torch.Tensor  # (B, N, D) video per token / (B, D) action
    t_mod: torch.Tensor  # (B, N, 6, D) / (B, 6, D)
    context: torch.Tensor | None  # (B, L, D) embedded context
    rope: torch.Tensor  # (N, head_dim/2) complex128 rotation factors
    grid: tuple = ()  # video: (frames, rows, columns) of patches


class VideoHead(nn.Module):
    def __init__(self, dim: int, out: int):
        super().__init__()
        self.head = nn.Linear(dim, out)
        self.modulation = nn.Parameter(torch.zeros(1, 2, dim))  # (shift, scale): shift first here


class VideoDiT(nn.Module):
    def __init__(self, cfg: VideoDiTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.patch_embedding = nn.Conv3d(cfg.in_channels, d, kernel_size=cfg.patch, stride=cfg.patch)
        self.text_embedding = mlp_embedding(cfg.text_dim, d)
        self.time_embedding = mlp_embedding(cfg.freq_dim, d)
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        gdn = dict(heads=cfg.num_heads, head_k=cfg.gdn_head_dim, expand_v=cfg.gdn_expand_v, conv=cfg.gdn_conv,
                   eps=cfg.eps)
        self.blocks = nn.ModuleList(Block(kind, d, cfg.attn_dim, cfg.num_heads, cfg.ffn_dim, cfg.eps, gdn)
                                    for kind in cfg.layer_types())
        self.head = VideoHead(d, cfg.out_channels * cfg.patch[0] * cfg.patch[1] * cfg.patch[2])
        self.rope = RopeTable(cfg.rope_split, cfg.rope_theta, cfg.rope_len)  # plain attribute, not a buffer

    def embed(self, latents: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor | None,
              frame_offset: int = 0) -> Prepared:
        """latents (B, C, F, H, W); timesteps (B,) or (B, N) per token (history tokens 0); context
        (B, L, text_dim) or None. frame_offset = RoPE frame index of the first latent frame."""
        dtype = self.patch_embedding.weight.dtype  # inputs follow the model's dtype (no-op when equal)
        x = self.patch_embedding(latents.to(dtype))  # (B, D, F', H', W')
        b, _, f, hg, wg = x.shape
        x = x.flatten(2).transpose(1, 2)  # (B, N, D) frame-major, rows, columns
        n = x.shape[1]
        if timesteps.shape not in ((b,), (b, n)):
            raise ValueError(f"video timesteps {tuple(timesteps.shape)} must be (B,) or (B, N) = {(b, n)}")
        # One timestep per sample: embedded once and shared by every token (an expanded view; the
        # blocks then modulate with one row), instead of the same MLPs over N identical rows.
        steps = timesteps[:, None] if timesteps.dim() == 1 else timesteps
        t = self.time_embedding(sinusoid(steps, self.cfg.freq_dim).to(x.dtype))  # (B, N or 1, D)
        t_mod = self.time_projection(t).unflatten(-1, (6, -1))  # (B, N or 1, 6, D)
        t, t_mod = t.expand(b, n, -1), t_mod.expand(b, n, -1, -1)
        grid = torch.stack(torch.meshgrid(torch.arange(f, device=x.device) + frame_offset,
                                          torch.arange(hg, device=x.device), torch.arange(wg, device=x.device),
                                          indexing="ij"), dim=-1).reshape(-1, 3)
        ctx = None if context is None else self.text_embedding(context.to(dtype))
        return Prepared(x, t, t_mod, ctx, self.rope.factors(grid), (f, hg, wg))

    def unpatchify(self, x: torch.Tensor, t: torch.Tensor, grid: tuple) -> torch.Tensor:
        """Modulated head: tokens (B, N, D), time embedding t (B, N, D) -> latents (B, C, F, H, W)."""
        shift, scale = (self.head.modulation[0, j] + t for j in (0, 1))
        y = self.head.head(layer_norm(x, self.cfg.eps) * (1 + scale) + shift)
        b, (f, hg, wg), (pf, ph, pw), c = y.shape[0], grid, self.cfg.patch, self.cfg.out_channels
        y = y.view(b, f, hg, wg, pf, ph, pw, c)  # features ordered (frame, row, column offsets, channel)
        return y.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(b, c, f * pf, hg * ph, wg * pw)


class ActionExpert(nn.Module):
    def __init__(self, cfg: ActionExpertConfig, text_dim: int):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.action_encoder = nn.Linear(cfg.action_dim, d)
        self.proprio_encoder = nn.Sequential(nn.Linear(cfg.state_dim, text_dim), nn.SiLU(),
                                             nn.Linear(text_dim, text_dim))
        self.text_embedding = mlp_embedding(text_dim, d)
        self.time_embedding = mlp_embedding(cfg.freq_dim, d)
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList(Block("FA", d, cfg.attn_dim, cfg.num_heads, cfg.ffn_dim, cfg.eps)
                                    for _ in range(cfg.num_layers))
        self.head = nn.Linear(d, cfg.action_dim)
        self.rope = RopeTable((cfg.attn_dim // cfg.num_heads,), 10000.0, cfg.rope_len)  # plain attribute

    def embed_time(self, timestep: torch.Tensor):
        """timestep (B,) or scalar -> t (B, D), t_mod (B, 6, D)."""
        emb = sinusoid(timestep.reshape(-1), self.cfg.freq_dim)  # float64 math, float32 out
        t = self.time_embedding(emb.to(self.action_encoder.weight.dtype))
        return t, self.time_projection(t).unflatten(-1, (6, -1))

    def action_rope(self, horizon: int, device) -> torch.Tensor:
        """Action token i at position i (independent of the number of video tokens)."""
        return self.rope.factors(torch.arange(horizon, device=device)[:, None])

    def embed(self, noisy_action: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor | None) -> Prepared:
        """noisy_action (B, A, action_dim); timestep (B,); context (B, L, text_dim) or None."""
        t, t_mod = self.embed_time(timestep)
        dtype = self.action_encoder.weight.dtype
        ctx = None if context is None else self.text_embedding(context.to(dtype))
        return Prepared(self.action_encoder(noisy_action.to(dtype)), t, t_mod, ctx,
                        self.action_rope(noisy_action.shape[1], noisy_action.device))
