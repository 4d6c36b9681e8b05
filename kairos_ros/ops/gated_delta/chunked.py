"""Chunked gated delta rule for the CPU: the recurrence rewritten per chunk of C tokens as dense
matrix products plus one unit-lower-triangular solve, so cost is O(T C (K + V)) in large
BLAS calls instead of T small steps.

Within a chunk, with G the cumulative log decay (G_t = sum_{i<=t} g_i) and S0 the incoming state:
  U solves (I + diag(beta) A) U = diag(beta) (V - diag(e^G) K S0),  A_ti = e^(G_t-G_i) k_t.k_i (i < t)
  O = diag(e^G) Q S0 + (M * Q K^T) U,                                M_ti = e^(G_t-G_i) (i <= t)
  S_C = e^(G_C) S0 + K^T diag(e^(G_C - G)) U
"""
from __future__ import annotations

import torch

from kairos_ros.ops.gated_delta.naive import l2norm


def gated_delta_chunked(q, k, v, g, beta, scale, initial_state=None, use_qk_l2norm=True, chunk: int = 64):
    q, k, v = q.float(), k.float(), v.float()
    if use_qk_l2norm:
        q, k = l2norm(q), l2norm(k)
    q = q * scale
    b, t, h, dk = q.shape
    dv = v.shape[-1]
    # (B, H, T, .) layout for batched matmuls
    q, k, v = (x.permute(0, 2, 1, 3) for x in (q, k, v))
    g, beta = g.float().permute(0, 2, 1), beta.float().permute(0, 2, 1)
    s = torch.zeros(b, h, dk, dv) if initial_state is None else initial_state.float().clone()
    out = torch.full((b, h, t, dv), float("nan"))
    for start in range(0, t, chunk):
        end = min(start + chunk, t)
        qc, kc, vc = q[:, :, start:end], k[:, :, start:end], v[:, :, start:end]
        bc = beta[:, :, start:end]
        gcum = torch.cumsum(g[:, :, start:end], dim=-1)  # (B, H, C)
        n = end - start
        diff = gcum[..., :, None] - gcum[..., None, :]  # G_t - G_i
        lower = torch.tril(torch.ones(n, n, dtype=torch.bool))
        strict = torch.tril(torch.ones(n, n, dtype=torch.bool), diagonal=-1)
        decay_in = torch.exp(diff.masked_fill(~lower, float("-inf")))  # M (zero above the diagonal)
        a = (kc @ kc.transpose(-1, -2)) * decay_in.masked_fill(~strict, 0.0)
        eye = torch.eye(n).expand(b, h, n, n)
        tri = eye + bc[..., :, None] * a
        rhs = bc[..., None] * (vc - torch.exp(gcum)[..., None] * (kc @ s))
        u = torch.linalg.solve_triangular(tri, rhs, upper=False, unitriangular=True)
        out[:, :, start:end] = torch.exp(gcum)[..., None] * (qc @ s) + ((qc @ kc.transpose(-1, -2)) * decay_in) @ u
        last = gcum[..., -1:]  # (B, H, 1)
        s = torch.exp(last)[..., None] * s + kc.transpose(-1, -2) @ (torch.exp(last - gcum)[..., None] * u)
    return out.permute(0, 2, 1, 3), s
