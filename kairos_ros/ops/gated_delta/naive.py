"""Reference gated delta rule: the per-token recurrence, written to be obviously correct.

Shapes: q, k (B, T, H, K); v (B, T, H, V); g (log decay) and beta (B, T, H); state (B, H, K, V).
S' = exp(g_t) S_{t-1};  u_t = beta_t (v_t - S'^T k_t);  S_t = S' + k_t u_t^T;  o_t = S_t^T q_t
"""
from __future__ import annotations

import torch


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + eps)


def gated_delta_naive(q, k, v, g, beta, scale, initial_state=None, use_qk_l2norm=True):
    q, k = q.float(), k.float()
    if use_qk_l2norm:
        q, k = l2norm(q), l2norm(k)
    q = q * scale
    b, t, h, dk = q.shape
    s = torch.zeros(b, h, dk, v.shape[-1]) if initial_state is None else initial_state.float().clone()
    out = torch.full((b, t, h, v.shape[-1]), float("nan"))
    for i in range(t):
        s = s * torch.exp(g[:, i].float())[..., None, None]
        kt = k[:, i]  # (B, H, K)
        u = beta[:, i].float()[..., None] * (v[:, i].float() - torch.einsum("bhkv,bhk->bhv", s, kt))
        s = s + kt[..., :, None] * u[..., None, :]
        out[:, i] = torch.einsum("bhkv,bhk->bhv", s, q[:, i])
    return out, s
