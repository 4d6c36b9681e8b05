"""Triton kernel for frame-windowed attention, flash-attention style: one program per (query frame,
batch x head) keeps its P queries on chip and visits only the 2 * window - 1 candidate key frames
of its window (online softmax), so cost is linear in the number of frames. Frame offsets and the
history length are runtime values (the streaming mode moves them every frame without recompiling).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _frame_attn_fwd(q, k, v, o, scale, q_start, k_start, num_k_frames, history,
                    P: tl.constexpr, D: tl.constexpr, BP: tl.constexpr, BD: tl.constexpr, W: tl.constexpr,
                    DIL: tl.constexpr, CAUSAL: tl.constexpr, HAS_HISTORY: tl.constexpr, NQ: tl.constexpr,
                    NK: tl.constexpr):
    i_f = tl.program_id(0)
    i_bh = tl.program_id(1)
    o_p = tl.arange(0, BP)
    o_d = tl.arange(0, BD)
    m_p = o_p < P
    m_d = o_d < D
    q_rows = i_f * P + o_p
    b_q = tl.load(q + i_bh * NQ * D + q_rows[:, None] * D + o_d[None, :], mask=m_p[:, None] & m_d[None, :], other=0.0)
    b_q = (b_q.to(tl.float32) * scale)
    fq = q_start + i_f
    m_i = tl.full([BP], -1e30, dtype=tl.float32)
    l_i = tl.zeros([BP], dtype=tl.float32)
    acc = tl.zeros([BP, BD], dtype=tl.float32)
    for j in range(0, 2 * W - 1):
        df = (j - (W - 1)) * DIL
        fk = fq + df
        ok = (fk >= k_start) & (fk < k_start + num_k_frames)
        if CAUSAL:
            ok = ok & (df <= 0)
        if HAS_HISTORY:
            ok = ok & ((fq >= history) | (fk < history))
        kf = fk - k_start
        k_rows = kf * P + o_p
        m_key = m_p & ok
        b_k = tl.load(k + i_bh * NK * D + k_rows[:, None] * D + o_d[None, :], mask=m_key[:, None] & m_d[None, :],
                      other=0.0).to(tl.float32)
        b_v = tl.load(v + i_bh * NK * D + k_rows[:, None] * D + o_d[None, :], mask=m_key[:, None] & m_d[None, :],
                      other=0.0).to(tl.float32)
        s = tl.dot(b_q, tl.trans(b_k))  # (BP, BP)
        s = tl.where(m_key[None, :], s, -1e30)
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        p = tl.where(m_key[None, :], tl.exp(s - m_new[:, None]), 0.0)
        alpha = tl.exp(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None] + tl.dot(p, b_v)
        m_i = m_new
    out = tl.where(l_i[:, None] > 0, acc / tl.maximum(l_i, 1e-30)[:, None], 0.0)
    tl.store(o + i_bh * NQ * D + q_rows[:, None] * D + o_d[None, :], out.to(o.dtype.element_ty),
             mask=m_p[:, None] & m_d[None, :])


def frame_attention_triton(q, k, v, *, tokens_per_frame, window, dilation=1, q_start_frame=0, k_start_frame=0,
                           num_history_frames=None, causal=False, scale=None):
    b, h, nq, d = q.shape
    nk = k.shape[2]
    p = tokens_per_frame
    scale = d ** -0.5 if scale is None else scale
    out = torch.full_like(q, float("nan"))
    bp, bd = max(16, triton.next_power_of_2(p)), max(16, triton.next_power_of_2(d))
    grid = (nq // p, b * h)
    _frame_attn_fwd[grid](q.contiguous(), k.contiguous(), v.contiguous(), out, float(scale), q_start_frame,
                          k_start_frame, nk // p, -1 if num_history_frames is None else num_history_frames,
                          P=p, D=d, BP=bp, BD=bd, W=window, DIL=dilation, CAUSAL=causal,
                          HAS_HISTORY=num_history_frames is not None, NQ=nq, NK=nk)
    return out
