"""Reference gated delta rule: the per-token recurrence, written to be obviously correct.

Shapes: q, k (B, T, H, K); v (B, T, H, V); g (log decay, <= 0) and beta (B, T, H); state (B, H, K, V).
With q_hat = l2norm(q) * scale and k_hat = l2norm(k) (or q * scale and k without the norm):
    S' = exp(g_t) S_{t-1};  u_t = beta_t (v_t - S'^T k_hat_t);  S_t = S' + k_hat_t u_t^T;  o_t = S_t^T q_hat_t
Everything is float32 whatever the input dtype; the dispatcher casts o back.
"""
from __future__ import annotations

import torch

L2_EPS = 1e-6  # inside the square root, as the Kairos / fla kernels do


def l2norm(x: torch.Tensor, eps: float = L2_EPS) -> torch.Tensor:
    return x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + eps)


def prepare_qk(q: torch.Tensor, k: torch.Tensor, scale: float, use_qk_l2norm: bool):
    """float32 q_hat (normalised, then scaled) and k_hat."""
    q, k = q.float(), k.float()
    if use_qk_l2norm:
        q, k = l2norm(q), l2norm(k)
    return q * scale, k


def initial_state_or_zeros(initial_state, b: int, h: int, dk: int, dv: int, device) -> torch.Tensor:
    if initial_state is None:
        return torch.zeros(b, h, dk, dv, dtype=torch.float32, device=device)
    return initial_state.float().clone()  # never write into the caller's tensor


def gated_delta_naive(q, k, v, g, beta, scale, initial_state=None, use_qk_l2norm=True):
    """Returns o (B, T, H, V) float32 and the final state (B, H, K, V) float32."""
    q, k = prepare_qk(q, k, scale, use_qk_l2norm)
    b, t, h, dk = q.shape
    dv = v.shape[-1]
    s = initial_state_or_zeros(initial_state, b, h, dk, dv, q.device)  # (B, H, K, V)
    out = torch.full((b, t, h, dv), float("nan"), device=q.device)  # (B, T, H, V)
    for i in range(t):
        s = s * torch.exp(g[:, i].float())[..., None, None]
        kt = k[:, i]  # (B, H, K)
        u = beta[:, i].float()[..., None] * (v[:, i].float() - torch.einsum("bhkv,bhk->bhv", s, kt))  # (B, H, V)
        s = s + kt[..., :, None] * u[..., None, :]
        out[:, i] = torch.einsum("bhkv,bhk->bhv", s, q[:, i])
    return out, s
