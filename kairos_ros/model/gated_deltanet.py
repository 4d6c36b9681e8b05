"""GatedDeltaNet layer (linear temporal memory): causal short conv, gates, delta-rule recurrence."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _delta_rule(q, k, v, g, beta, scale, initial_state):
    from kairos_ros.ops.gated_delta import gated_delta_rule

    o, state = gated_delta_rule(q, k, v, g, beta, scale=scale, initial_state=initial_state, output_final_state=True)
    return o, state


class GatedDeltaNet(nn.Module):
    def __init__(self, dim: int, heads: int, head_k: int, expand_v: int = 2, conv: int = 4, eps: float = 1e-6):
        super().__init__()
        self.heads, self.head_k, self.head_v, self.conv = heads, head_k, head_k * expand_v, conv
        kw, vw = heads * head_k, heads * self.head_v
        self.q_proj = nn.Linear(dim, kw, bias=False)
        self.k_proj = nn.Linear(dim, kw, bias=False)
        self.v_proj = nn.Linear(dim, vw, bias=False)
        self.g_proj = nn.Linear(dim, vw, bias=False)
        self.o_proj = nn.Linear(vw, dim, bias=False)
        self.a_proj = nn.Linear(dim, heads, bias=False)
        self.b_proj = nn.Linear(dim, heads, bias=False)
        self.q_conv1d = nn.Conv1d(kw, kw, conv, groups=kw, bias=False)
        self.k_conv1d = nn.Conv1d(kw, kw, conv, groups=kw, bias=False)
        self.v_conv1d = nn.Conv1d(vw, vw, conv, groups=vw, bias=False)
        self.A_log = nn.Parameter(torch.zeros(heads))
        self.dt_bias = nn.Parameter(torch.zeros(heads))
        self.o_norm = nn.Module()
        self.o_norm.weight = nn.Parameter(torch.ones(self.head_v))
        self.eps = eps

    def _short_conv(self, conv: nn.Conv1d, x: torch.Tensor, tail: torch.Tensor | None):
        """Causal depthwise conv over tokens: x (B, T, C); tail = the previous (conv-1) inputs."""
        xt = x.transpose(1, 2)  # (B, C, T)
        pad = torch.zeros(x.shape[0], x.shape[2], self.conv - 1, dtype=x.dtype) if tail is None else tail
        full = torch.cat([pad, xt], dim=-1)
        return F.silu(F.conv1d(full, conv.weight, groups=xt.shape[1])).transpose(1, 2), full[..., -(self.conv - 1):]

    def forward(self, h: torch.Tensor, state: dict | None = None):
        """h (B, T, dim) in the flattened (frame, row, column) order. `state` carries the recurrent
        and conv state across calls (streaming); returns (output, new_state)."""
        b, t, _ = h.shape
        state = state or {}
        q, q_tail = self._short_conv(self.q_conv1d, self.q_proj(h), state.get("q_conv"))
        k, k_tail = self._short_conv(self.k_conv1d, self.k_proj(h), state.get("k_conv"))
        v, v_tail = self._short_conv(self.v_conv1d, self.v_proj(h), state.get("v_conv"))
        beta = torch.sigmoid(self.b_proj(h))  # (B, T, H)
        g = -torch.exp(self.A_log) * F.softplus(self.a_proj(h) + self.dt_bias)  # log decay (B, T, H)
        o, s = _delta_rule(q.view(b, t, self.heads, -1), k.view(b, t, self.heads, -1),
                           v.view(b, t, self.heads, -1), g, beta, self.head_k ** -0.5, state.get("recurrent"))
        o = o.to(h.dtype)
        o = o * torch.rsqrt(o.pow(2).mean(-1, keepdim=True) + self.eps) * self.o_norm.weight  # per-head RMSNorm
        o = o * F.silu(self.g_proj(h)).view(b, t, self.heads, -1)
        new_state = {"recurrent": s, "q_conv": q_tail, "k_conv": k_tail, "v_conv": v_tail}
        return self.o_proj(o.reshape(b, t, -1)), new_state
