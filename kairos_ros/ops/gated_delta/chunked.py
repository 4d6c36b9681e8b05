"""Chunked gated delta rule for the CPU (WY / UT-transform form).

Within a chunk of C tokens, with G_t = sum_{i<=t} g_i (cumulative log decay inside the chunk) and
S0 the incoming state, unrolling the recurrence gives for the "new values" U (rows u_t):
    (I + diag(beta) A) U = diag(beta) V - diag(beta e^G) K S0,     A_ti = e^(G_t - G_i) k_t.k_i  (i < t)
Let T = (I + diag(beta) A)^-1 (unit lower triangular). Then U = U0 - W S0 with
    U0 = T diag(beta) V,   W = T diag(beta e^G) K
which depend on the chunk alone, so they are computed for all chunks at once (one batched
triangular solve). Only the state hand-over is sequential, a few (C x K x V) products per chunk:
    U   = U0 - W S0
    O   = diag(e^G) Q S0 + (M o Q K^T) U,          M_ti = e^(G_t - G_i) for i <= t, else 0
    S_C = e^(G_C) S0 + (diag(e^(G_C - G)) K)^T U
Every exponent above is <= 0, so nothing overflows. T is padded to a multiple of C with
q = k = v = g = beta = 0, which leaves the state untouched (u = 0, decay e^0 = 1): padding is exact.
"""
from __future__ import annotations

import torch

from kairos_ros.ops.gated_delta.naive import initial_state_or_zeros, prepare_qk

CHUNK = 64
RECURRENT_MAX_T = 4  # below this the plain recurrence is cheaper than building one chunk


def _recurrent(q, k, v, g, beta, s):
    """The per-token recurrence on prepared inputs, in (B*H) batched products."""
    b, t, h, dk = q.shape
    dv = v.shape[-1]
    s = s.reshape(b * h, dk, dv)  # (BH, K, V)
    out = torch.full((b, t, h, dv), float("nan"), device=q.device)  # (B, T, H, V)
    for i in range(t):
        kt = k[:, i].reshape(b * h, 1, dk)  # (BH, 1, K)
        s = s * torch.exp(g[:, i].float()).reshape(b * h, 1, 1)
        u = beta[:, i].float().reshape(b * h, 1, 1) * (v[:, i].float().reshape(b * h, 1, dv) - kt @ s)  # (BH, 1, V)
        s = torch.baddbmm(s, kt.transpose(1, 2), u)
        out[:, i] = (q[:, i].reshape(b * h, 1, dk) @ s).reshape(b, h, dv)
    return out, s.reshape(b, h, dk, dv)


def _to_chunks(x: torch.Tensor, n: int, c: int) -> torch.Tensor:
    """(B, T, H, ...) -> (N, B*H, C, ...) float32, zero-padded along T; chunk-major so that each
    chunk's slice in the sequential loop is contiguous."""
    b, t, h = x.shape[:3]
    x = x.float()
    pad = n * c - t
    if pad:
        x = torch.cat([x, x.new_zeros(b, pad, *x.shape[2:])], dim=1)
    x = x.reshape(b, n, c, h, *x.shape[3:]).movedim(3, 1)  # (B, H, N, C, ...)
    return x.movedim(2, 0).reshape(n, b * h, c, *x.shape[4:])


def gated_delta_chunked(q, k, v, g, beta, scale, initial_state=None, use_qk_l2norm=True, chunk: int = CHUNK):
    """Returns o (B, T, H, V) float32 and the final state (B, H, K, V) float32."""
    q, k = prepare_qk(q, k, scale, use_qk_l2norm)
    b, t, h, dk = q.shape
    dv = v.shape[-1]
    s = initial_state_or_zeros(initial_state, b, h, dk, dv, q.device)  # (B, H, K, V)
    if t < RECURRENT_MAX_T:
        return _recurrent(q, k, v, g, beta, s)
    c = min(chunk, t)
    n = -(-t // c)
    qc, kc, vc = _to_chunks(q, n, c), _to_chunks(k, n, c), _to_chunks(v, n, c)  # (N, BH, C, K|V)
    gc, bc = _to_chunks(g, n, c), _to_chunks(beta, n, c)  # (N, BH, C)

    gcum = gc.cumsum(-1)  # (N, BH, C)
    incl = torch.ones(c, c, dtype=torch.bool, device=q.device).tril()
    decay = torch.exp((gcum[..., :, None] - gcum[..., None, :]).masked_fill(~incl, float("-inf")))  # M
    a = (kc @ kc.transpose(-1, -2)) * decay.tril(-1) * bc[..., :, None]  # diag(beta) A, strictly lower
    a.diagonal(dim1=-2, dim2=-1).fill_(1.0)  # I + diag(beta) A
    eye = torch.eye(c, device=q.device).expand_as(a).contiguous()
    # Inverting against C right-hand sides is cheaper than solving against K + V of them.
    tinv = torch.linalg.solve_triangular(a, eye, upper=False, unitriangular=True)  # (N, BH, C, C)
    u0 = tinv @ (bc[..., None] * vc)  # (N, BH, C, V)
    w = tinv @ ((bc * gcum.exp())[..., None] * kc)  # (N, BH, C, K)
    attn = (qc @ kc.transpose(-1, -2)) * decay  # (N, BH, C, C) decayed causal scores
    qe = qc * gcum.exp()[..., None]  # (N, BH, C, K)
    last = gcum[..., -1]  # (N, BH) total log decay of each chunk
    kd = (kc * torch.exp(last[..., None] - gcum)[..., None]).transpose(-1, -2).contiguous()  # (N, BH, K, C)
    chunk_decay = last.exp()[..., None, None]  # (N, BH, 1, 1)

    s = s.reshape(b * h, dk, dv)  # (BH, K, V)
    # Training needs autograd, which out= does not support: collect the chunks and stack them.
    grad = torch.is_grad_enabled() and any(x.requires_grad for x in (qc, kc, vc, gc, bc, s))
    out = [] if grad else torch.full((n, b * h, c, dv), float("nan"), device=q.device)  # (N, BH, C, V)
    for i in range(n):
        u = torch.baddbmm(u0[i], w[i], s, alpha=-1.0)  # U0 - W S0
        if grad:
            out.append(torch.baddbmm(qe[i] @ s, attn[i], u))
        else:
            torch.baddbmm(qe[i] @ s, attn[i], u, out=out[i])
        s = torch.baddbmm(s * chunk_decay[i], kd[i], u)
    out = torch.stack(out) if grad else out
    o = out.reshape(n, b, h, c, dv).permute(1, 0, 3, 2, 4).reshape(b, n * c, h, dv)[:, :t]  # (B, T, H, V)
    return o, s.reshape(b, h, dk, dv)
