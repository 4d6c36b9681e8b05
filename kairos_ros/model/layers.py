"""Small building blocks: RMSNorm, timestep sinusoid, RoPE tables, attention, cross-attention."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rms(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """weight * x * rsqrt(mean(x^2) + eps) over the last dimension, the mean in float32 (as apex)."""
    return weight * (x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps).to(x.dtype))


class RMSNorm(nn.Module):
    """rms() over the whole width (across heads, not per head), as the q/k norms of both experts."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms(x, self.weight, self.eps)


def sinusoid(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[cos(t w), sin(t w)] with w_j = 10000^(-j / (dim/2)), computed in float64 (cos first)."""
    half = dim // 2
    w = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    angles = t.to(torch.float64)[..., None] * w
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1).to(torch.float32)


class RopeTable:
    """Rotary embedding over several position axes (video: frame/row/column dims 44/42/42 of a
    128-wide head; action: one axis over the whole head). A plain attribute, not a buffer: it holds
    no state the checkpoint needs. Angles pos * theta^(-2i/d) are float64, as in the official
    table of `length` rows; positions outside [0, length) are refused unless check=False
    (internal re-basing of cached keys rotates by negative offsets)."""

    def __init__(self, dims: tuple, theta: float = 10000.0, length: int = 1024):
        self.dims, self.theta, self.length = tuple(dims), theta, length
        self._inv: dict = {}

    def _inv_freq(self, device) -> list[torch.Tensor]:
        key = str(device)
        if key not in self._inv:
            self._inv[key] = [torch.pow(self.theta, -torch.arange(0, d, 2, dtype=torch.float64, device=device) / d)
                              for d in self.dims]
        return self._inv[key]

    def factors(self, positions: torch.Tensor, check: bool = True) -> torch.Tensor:
        """positions (N, axes) int -> (N, sum(dims)/2) complex128 e^{i angle}."""
        if check and positions.numel() and (int(positions.min()) < 0 or int(positions.max()) >= self.length):
            raise ValueError(f"RoPE positions {int(positions.min())}..{int(positions.max())} outside the table "
                             f"[0, {self.length})")
        pos = positions.to(torch.float64)
        angles = torch.cat([pos[:, a, None] * inv for a, inv in enumerate(self._inv_freq(positions.device))], -1)
        return torch.polar(torch.ones_like(angles), angles)

    def frame_shift(self, shift: int, device) -> torch.Tensor:
        """(sum(dims)/2,) complex128 factor moving a video key `shift` frames (axis 0 only)."""
        inv = self._inv_freq(device)
        rot = [torch.polar(torch.ones_like(inv[0]), shift * inv[0])]
        return torch.cat(rot + [torch.ones_like(i, dtype=torch.complex128) for i in inv[1:]])


def apply_rope(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """x (B, N, H, D): consecutive pairs as complex numbers times factors (N, D/2). The angles are
    float64 (as the official table); the product is complex64 for float32/16 inputs (differs from
    a float64 product by ~1e-7 relative, far below bf16 and the parity tolerance), complex128 for
    float64 inputs."""
    b, n, h, d = x.shape
    wide = x.dtype == torch.float64
    xc = torch.view_as_complex(x.to(torch.float64 if wide else torch.float32).reshape(b, n, h, d // 2, 2))
    f = factors.to(torch.complex128 if wide else torch.complex64)
    return torch.view_as_real(xc * f[None, :, None, :]).reshape(b, n, h, d).to(x.dtype)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """q (B, H, Nq, D), k/v (B, H, Nk, D); mask broadcastable to (B, H, Nq, Nk) bool (True = may
    attend). A query row that may attend nothing outputs zeros."""
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v)
    empty = ~mask.any(-1, keepdim=True)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | empty)
    return out.masked_fill(empty, 0.0)


def heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, N, W) -> (B, H, N, W/H)."""
    return x.unflatten(-1, (n_heads, -1)).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, N, D) -> (B, N, H*D)."""
    return x.transpose(1, 2).flatten(2)


class QKV(nn.Module):
    """q, k, v, o projections with full-width RMSNorm on q and k (names match the checkpoints)."""

    def __init__(self, dim: int, attn_dim: int, eps: float = 1e-6):
        super().__init__()
        self.q = nn.Linear(dim, attn_dim)
        self.k = nn.Linear(dim, attn_dim)
        self.v = nn.Linear(dim, attn_dim)
        self.o = nn.Linear(attn_dim, dim)
        self.norm_q = RMSNorm(attn_dim, eps)
        self.norm_k = RMSNorm(attn_dim, eps)

    def context_kv(self, ctx: torch.Tensor, n_heads: int):
        """Keys/values of the (embedded) context (B, L, dim) -> two (B, H, L, hd); no RoPE."""
        return heads(self.norm_k(self.k(ctx)), n_heads), heads(self.v(ctx), n_heads)

    def cross(self, x: torch.Tensor, ctx_kv, ctx_mask: torch.Tensor | None, n_heads: int) -> torch.Tensor:
        """Cross-attention of x (B, N, dim) to the context; ctx_mask (B, L) bool or None (all valid)."""
        q = heads(self.norm_q(self.q(x)), n_heads)
        mask = None if ctx_mask is None else ctx_mask[:, None, None, :]
        return self.o(merge_heads(attend(q, ctx_kv[0], ctx_kv[1], mask)))


def layer_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    return F.layer_norm(x, (x.shape[-1],), eps=eps)


def ffn(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))


def mlp_embedding(din: int, dim: int) -> nn.Sequential:
    """Linear, SiLU, Linear (text, time and proprio embeddings)."""
    return nn.Sequential(nn.Linear(din, dim), nn.SiLU(), nn.Linear(dim, dim))
