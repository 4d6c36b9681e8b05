"""GatedDeltaNet layer (the GATED video layers' linear temporal memory).

h -> q, k, v = SiLU(causal depthwise conv_4(W h)) -> gated delta rule over the flattened
(frame, row, column) token order (q, k L2-normalised, q scaled by head_k^-1/2) -> per-head
RMSNorm (shared weight) times SiLU(g_proj h) -> o_proj. No biases, no RoPE. The recurrent state
(B, H, K, V) float32 and the conv tails (B, C, conv - 1) can be carried across calls, which is
what makes streaming one frame at a time equal to one pass over all frames.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kairos_ros.model.layers import rms
from kairos_ros.ops.gated_delta import gated_delta_rule


class GatedRMSNorm(nn.Module):
    """RMSNorm over one head's value width, times SiLU(gate); one weight shared by all heads."""

    def __init__(self, width: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, o: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return rms(o, self.weight, self.eps) * F.silu(gate)


class GatedDeltaNet(nn.Module):
    def __init__(self, dim: int, heads: int, head_k: int, expand_v: int = 2, conv: int = 4, eps: float = 1e-6):
        super().__init__()
        self.heads, self.head_k, self.head_v, self.conv = heads, head_k, head_k * expand_v, conv
        kw, vw = heads * head_k, heads * self.head_v
        self.q_proj = nn.Linear(dim, kw, bias=False)
        self.k_proj = nn.Linear(dim, kw, bias=False)
        self.v_proj = nn.Linear(dim, vw, bias=False)
        self.g_proj = nn.Linear(dim, vw, bias=False)  # output gate
        self.o_proj = nn.Linear(vw, dim, bias=False)
        self.a_proj = nn.Linear(dim, heads, bias=False)  # decay gate input
        self.b_proj = nn.Linear(dim, heads, bias=False)  # write strength beta
        self.q_conv1d = nn.Conv1d(kw, kw, conv, groups=kw, bias=False)
        self.k_conv1d = nn.Conv1d(kw, kw, conv, groups=kw, bias=False)
        self.v_conv1d = nn.Conv1d(vw, vw, conv, groups=vw, bias=False)
        self.A_log = nn.Parameter(torch.zeros(heads))
        self.dt_bias = nn.Parameter(torch.zeros(heads))
        self.o_norm = GatedRMSNorm(self.head_v, eps)

    def _short_conv(self, conv: nn.Conv1d, x: torch.Tensor, tail: torch.Tensor | None):
        """Causal depthwise conv + SiLU over tokens: x (B, T, C); tail (B, C, conv-1) = previous inputs
        (zeros before the first token). Returns (out (B, T, C), new tail)."""
        xt = x.transpose(1, 2)  # (B, C, T)
        if tail is None:
            tail = xt.new_zeros(xt.shape[0], xt.shape[1], self.conv - 1)
        full = torch.cat([tail, xt], dim=-1)
        out = F.silu(F.conv1d(full, conv.weight, groups=xt.shape[1]))
        return out.transpose(1, 2), full[..., full.shape[-1] - (self.conv - 1):]

    def forward(self, h: torch.Tensor, state: dict | None = None):
        """h (B, T, dim). state: {"recurrent": (B, H, K, V), "q_conv"/"k_conv"/"v_conv": tails} or None
        (a fresh start). Returns (output (B, T, dim), new state)."""
        b, t, _ = h.shape
        state = state or {}
        q, q_tail = self._short_conv(self.q_conv1d, self.q_proj(h), state.get("q_conv"))
        k, k_tail = self._short_conv(self.k_conv1d, self.k_proj(h), state.get("k_conv"))
        v, v_tail = self._short_conv(self.v_conv1d, self.v_proj(h), state.get("v_conv"))
        beta = torch.sigmoid(self.b_proj(h))  # (B, T, H)
        g = -torch.exp(self.A_log) * F.softplus(self.a_proj(h) + self.dt_bias)  # log decay (B, T, H)
        o, s = gated_delta_rule(q.view(b, t, self.heads, -1), k.view(b, t, self.heads, -1),
                                v.view(b, t, self.heads, -1), g, beta, scale=self.head_k ** -0.5,
                                initial_state=state.get("recurrent"), output_final_state=True)
        o = self.o_norm(o.to(h.dtype), self.g_proj(h).view(b, t, self.heads, -1))  # (B, T, H, V)
        new_state = {"recurrent": s, "q_conv": q_tail, "k_conv": k_tail, "v_conv": v_tail}
        return self.o_proj(o.reshape(b, t, -1)), new_state
