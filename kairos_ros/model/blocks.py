"""Transformer blocks of both experts (adaLN modulation in Kairos' order: scale, shift, gate, ...)."""
from __future__ import annotations

import torch
from torch import nn

from kairos_ros.model.gated_deltanet import GatedDeltaNet
from kairos_ros.model.layers import QKV, apply_rope, cross_attention, ffn, layer_norm


class Block(nn.Module):
    """One layer of an expert. kind: SWA, DSWA, GATED (video) or FA (action expert)."""

    def __init__(self, kind: str, dim: int, attn_dim: int, heads: int, ffn_dim: int, eps: float,
                 gdn: dict | None = None):
        super().__init__()
        self.kind, self.heads, self.eps = kind, heads, eps
        if kind == "GATED":
            self.gated_delta = GatedDeltaNet(dim, **gdn)
        else:
            self.self_attn = QKV(dim, attn_dim, eps=eps)
        self.cross_attn = QKV(dim, attn_dim, eps=eps)
        self.cross_attn_norm = nn.LayerNorm(dim, eps=eps, elementwise_affine=True)
        self.ffn = ffn(dim, ffn_dim)
        self.modulation = nn.Parameter(torch.zeros(1, 6, dim))

    def chunks(self, t_mod: torch.Tensor) -> list[torch.Tensor]:
        """t_mod (B, N, 6, D) per token or (B, 6, D) per sample -> six (B, N or 1, D) chunks."""
        mod = self.modulation[0] + (t_mod if t_mod.dim() == 4 else t_mod[:, None])
        return [mod[..., j, :] for j in range(6)]

    def modulated(self, x: torch.Tensor, c: list[torch.Tensor]) -> torch.Tensor:
        return layer_norm(x, self.eps) * (1 + c[0]) + c[1]

    def qkv(self, h: torch.Tensor, angles: torch.Tensor):
        """Self-attention q, k (RMSNorm over the full width, then RoPE) and v: (B, N, H, hd)."""
        b, n, _ = h.shape
        sa = self.self_attn
        q = apply_rope(sa.norm_q(sa.q(h)).view(b, n, self.heads, -1), angles)
        k = apply_rope(sa.norm_k(sa.k(h)).view(b, n, self.heads, -1), angles)
        return q, k, sa.v(h).view(b, n, self.heads, -1)

    def finish(self, x, attn_out, c, ctx, ctx_mask):
        """Gate the self-attention (or GDN) output, then cross-attention and the FFN."""
        x = x + c[2] * attn_out
        x = x + cross_attention(self.cross_attn, self.cross_attn_norm(x), ctx, ctx_mask, self.heads)
        return x + c[5] * self.ffn(layer_norm(x, self.eps) * (1 + c[3]) + c[4])
