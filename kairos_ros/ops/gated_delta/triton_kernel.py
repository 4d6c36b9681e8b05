"""The project's Triton kernel for the gated delta rule: fused recurrence, one program per
(value block, batch x head), the K x BV state block kept in registers across all T steps.
Plain pointer arithmetic with masks (no block pointers), so it also runs under TRITON_INTERPRET=1.
q and k arrive already L2-normalised and q scaled (done in PyTorch around the kernel).
T is a compile-time constant because Triton 3.5's interpreter cannot loop over a runtime scalar;
on a GPU that compiles one variant per sequence length (the streaming mode uses one length).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _gated_delta_fwd(q, k, v, g, beta, h0, o, ht, T: tl.constexpr, H: tl.constexpr, K: tl.constexpr, V: tl.constexpr,
                     BK: tl.constexpr, BV: tl.constexpr, HAS_H0: tl.constexpr, STORE_HT: tl.constexpr):
    i_v = tl.program_id(0)
    i_bh = tl.program_id(1)
    i_b = i_bh // H
    i_h = i_bh % H
    o_k = tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    m_k = o_k < K
    m_v = o_v < V
    m_h = m_k[:, None] & m_v[None, :]
    b_h = tl.zeros([BK, BV], dtype=tl.float32)  # state block (K, BV)
    if HAS_H0:
        b_h += tl.load(h0 + i_bh * K * V + o_k[:, None] * V + o_v[None, :], mask=m_h, other=0.0)
    for t in range(0, T):
        row = (i_b * T + t) * H + i_h
        b_q = tl.load(q + row * K + o_k, mask=m_k, other=0.0).to(tl.float32)
        b_k = tl.load(k + row * K + o_k, mask=m_k, other=0.0).to(tl.float32)
        b_v = tl.load(v + row * V + o_v, mask=m_v, other=0.0).to(tl.float32)
        b_g = tl.load(g + row).to(tl.float32)
        b_beta = tl.load(beta + row).to(tl.float32)
        b_h = b_h * tl.exp(b_g)
        b_u = b_beta * (b_v - tl.sum(b_h * b_k[:, None], axis=0))
        b_h = b_h + b_k[:, None] * b_u[None, :]
        b_o = tl.sum(b_h * b_q[:, None], axis=0)
        tl.store(o + row * V + o_v, b_o.to(o.dtype.element_ty), mask=m_v)
    if STORE_HT:
        tl.store(ht + i_bh * K * V + o_k[:, None] * V + o_v[None, :], b_h, mask=m_h)


def gated_delta_triton(q, k, v, g, beta, scale, initial_state=None, use_qk_l2norm=True, block_v: int = 32):
    from kairos_ros.ops.gated_delta.naive import l2norm

    b, t, h, dk = q.shape
    dv = v.shape[-1]
    qf, kf = q.float(), k.float()
    if use_qk_l2norm:
        qf, kf = l2norm(qf), l2norm(kf)
    qf = (qf * scale).contiguous()
    kf = kf.contiguous()
    vf, gf, bf = v.float().contiguous(), g.float().contiguous(), beta.float().contiguous()
    out = torch.full((b, t, h, dv), float("nan"), dtype=torch.float32, device=q.device)
    final = torch.full((b, h, dk, dv), float("nan"), dtype=torch.float32, device=q.device)
    h0 = initial_state.float().contiguous() if initial_state is not None else final  # unused when absent
    bv = min(block_v, triton.next_power_of_2(dv))
    grid = (triton.cdiv(dv, bv), b * h)
    _gated_delta_fwd[grid](qf, kf, vf, gf, bf, h0, out, final, T=t, H=h, K=dk, V=dv, BK=triton.next_power_of_2(dk),
                           BV=bv, HAS_H0=initial_state is not None, STORE_HT=True)
    return out, final
