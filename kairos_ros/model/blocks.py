"""One transformer layer of either expert (adaLN modulation in Kairos' order: scale, shift, gate).

    c = modulation + t_mod                 six chunks c0..c5 of width dim
    h = LN(x) (1 + c0) + c1                non-affine LayerNorm
    x = x + c2 * SelfAttn(h)               SWA / DSWA / FA attention, or GatedDeltaNet (GATED)
    x = x + CrossAttn(LN_affine(x), ctx)   no modulation, no gate
    x = x + c5 * FFN(LN(x) (1 + c3) + c4)
The self-attention itself is done by the caller (it mixes experts and caches); the block gives the
projections and the rest of the layer.
"""
from __future__ import annotations

import torch
from torch import nn

from kairos_ros.model.gated_deltanet import GatedDeltaNet
from kairos_ros.model.layers import QKV, apply_rope, ffn, layer_norm


class Block(nn.Module):
    """kind: SWA, DSWA, GATED (video) or FA (action expert)."""

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
        """t_mod (B, N, 6, D) per token or (B, 6, D) per sample -> six (B, N or 1, D) chunks. A
        per-token t_mod expanded from one row (stride 0 over tokens) gives (B, 1, D) chunks."""
        if t_mod.dim() == 4 and t_mod.shape[1] > 1 and t_mod.stride(1) == 0:
            t_mod = t_mod[:, :1]  # every token shares it: modulate by broadcasting one row
        mod = self.modulation[0] + (t_mod if t_mod.dim() == 4 else t_mod[:, None])
        return list(mod.unbind(-2))

    def modulated(self, x: torch.Tensor, c: list[torch.Tensor]) -> torch.Tensor:
        return layer_norm(x, self.eps) * (1 + c[0]) + c[1]

    def qkv(self, h: torch.Tensor, rope: torch.Tensor):
        """Self-attention q, k (RMSNorm over the full width, then RoPE) and v, each (B, N, H, hd)."""
        sa = self.self_attn
        q = apply_rope(sa.norm_q(sa.q(h)).unflatten(-1, (self.heads, -1)), rope)
        k = apply_rope(sa.norm_k(sa.k(h)).unflatten(-1, (self.heads, -1)), rope)
        return q, k, sa.v(h).unflatten(-1, (self.heads, -1))

    def context_kv(self, ctx_emb: torch.Tensor):
        """This layer's cross-attention keys/values of the embedded context (reusable across calls)."""
        return self.cross_attn.context_kv(ctx_emb, self.heads)

    def finish(self, x, attn_out, c, ctx_kv, ctx_mask):
        """Gate the self-attention (or GDN) output (B, N, dim), then cross-attention and the FFN."""
        x = x + c[2] * attn_out
        x = x + self.cross_attn.cross(self.cross_attn_norm(x), ctx_kv, ctx_mask, self.heads)
        return x + c[5] * self.ffn(layer_norm(x, self.eps) * (1 + c[3]) + c[4])
