"""Small building blocks: RMSNorm, time embedding, RoPE, masked attention, cross-attention."""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """weight * x * rsqrt(mean(x^2) + eps) over the last dimension (the whole width, not per head)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def sinusoid(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[cos(t w), sin(t w)] with w_j = 10000^(-j / (dim/2)), computed in float64 (cos first)."""
    half = dim // 2
    w = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) / half)
    angles = t.to(torch.float64)[..., None] * w
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1).to(torch.float32)


def rope_angles(positions: torch.Tensor, dim: int, theta: float = 10000.0) -> torch.Tensor:
    """(N,) positions -> (N, dim/2) float64 angles pos * theta^(-2i/dim)."""
    i = torch.arange(dim // 2, dtype=torch.float64)
    return positions.to(torch.float64)[:, None] * torch.pow(theta, -2.0 * i / dim)


def video_rope_angles(frames: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, split, theta) -> torch.Tensor:
    """(N, head_dim/2) angles: frame pairs, then row pairs, then column pairs (Kairos 44/42/42)."""
    return torch.cat([rope_angles(frames, split[0], theta), rope_angles(rows, split[1], theta),
                      rope_angles(cols, split[2], theta)], dim=-1)


def apply_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """x (B, N, H, D) with consecutive pairs as complex numbers, rotated by angles (N, D/2); float64 math."""
    b, n, h, d = x.shape
    xc = torch.view_as_complex(x.to(torch.float64).reshape(b, n, h, d // 2, 2))
    rot = torch.polar(torch.ones_like(angles), angles)[None, :, None, :]  # (1, N, 1, D/2)
    return torch.view_as_real(xc * rot).reshape(b, n, h, d).to(x.dtype)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """q (B, Nq, H, D), k/v (B, Nk, H, D), mask (Nq, Nk) or (B, Nq, Nk) bool (True = may attend).
    Rows that may attend nothing return zeros."""
    qh, kh, vh = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, N, D)
    if mask is None:
        out = F.scaled_dot_product_attention(qh, kh, vh)
    else:
        m = mask if mask.dim() == 3 else mask[None]
        m = m[:, None]  # (B or 1, 1, Nq, Nk)
        empty = ~m.any(-1, keepdim=True)
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=m | empty)
        out = out.masked_fill(empty, 0.0)
    return out.transpose(1, 2)  # (B, Nq, H, D)


class QKV(nn.Module):
    """q, k, v, o projections with full-width RMSNorm on q and k (names match the checkpoints)."""

    def __init__(self, dim: int, attn_dim: int, kv_in: int | None = None, eps: float = 1e-6):
        super().__init__()
        kv_in = dim if kv_in is None else kv_in
        self.q = nn.Linear(dim, attn_dim)
        self.k = nn.Linear(kv_in, attn_dim)
        self.v = nn.Linear(kv_in, attn_dim)
        self.o = nn.Linear(attn_dim, dim)
        self.norm_q = RMSNorm(attn_dim, eps)
        self.norm_k = RMSNorm(attn_dim, eps)


def cross_attention(mod: QKV, x: torch.Tensor, ctx: torch.Tensor, ctx_mask: torch.Tensor | None,
                    heads: int) -> torch.Tensor:
    """Cross-attention to the context (text + proprio token): RMSNorm on q and k, no RoPE."""
    b, n, _ = x.shape
    q = mod.norm_q(mod.q(x)).view(b, n, heads, -1)
    k = mod.norm_k(mod.k(ctx)).view(b, ctx.shape[1], heads, -1)
    v = mod.v(ctx).view(b, ctx.shape[1], heads, -1)
    mask = None if ctx_mask is None else ctx_mask[:, None, :].expand(b, n, ctx.shape[1])
    return mod.o(attention(q, k, v, mask).reshape(b, n, -1))


def layer_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), eps=eps)


def ffn(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))


def mlp_embedding(din: int, dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(din, dim), nn.SiLU(), nn.Linear(dim, dim))


