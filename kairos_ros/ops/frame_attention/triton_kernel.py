"""Triton kernel for frame-windowed attention, flash-attention style.

One program per (block of BM query tokens, batch x head). The block covers query frames
[fq_lo, fq_hi] (one frame, or a few when P is small); it walks only the key tokens of the frames
its window can reach, in blocks of BN, with an online softmax. For dilation 1 that is the single
range [fq_lo - (W-1), fq_hi + (W-1)]; for dilation d it is 2W - 1 separate ranges, one per offset
df = j * d, each matched exactly (df == offset) so no key is counted twice. Cost per program is
O((block frames + window) * P), hence linear in frames overall; with P in the hundreds (Kairos:
1200 tokens per frame) a block never materialises more than BM x BN scores.
Frame offsets, lengths and the history length are runtime values: the streaming mode moves them
every frame without recompiling. Plain pointers and masks (no block pointers), so it also runs
under TRITON_INTERPRET=1 on CPU tensors (Triton >= 3.9 with numpy 2). A query row with no
visible key outputs zeros.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kairos_ros.ops.frame_attention.naive import check_window
from kairos_ros.ops.gated_delta.triton_kernel import check_triton_device

NEG = tl.constexpr(-1.0e30)  # finite "minus infinity": exp(NEG - m) underflows to 0 without inf - inf = NaN


@triton.jit
def _frame_attn_fwd(q, k, v, o, sq_b, sq_h, sq_n, sk_b, sk_h, sk_n, sv_b, sv_h, sv_n, so_b, so_h, so_n,
                    H, NQ, NK, P, D, q_start, k_start, history, scale,
                    BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, W: tl.constexpr, DIL: tl.constexpr,
                    CAUSAL: tl.constexpr, HAS_HISTORY: tl.constexpr, IEEE: tl.constexpr,
                    NJ: tl.constexpr):
    i_m = tl.program_id(0)
    i_bh = tl.program_id(1)
    i_b = (i_bh // H).to(tl.int64)
    i_h = (i_bh % H).to(tl.int64)
    rows = i_m * BM + tl.arange(0, BM)  # (BM,) query tokens
    m_row = rows < NQ
    o_d = tl.arange(0, BD)
    m_d = o_d < D
    fq = q_start + rows // P  # (BM,) absolute query frame per row
    fq_lo = q_start + (i_m * BM) // P
    fq_hi = q_start + tl.minimum(i_m * BM + BM - 1, NQ - 1) // P
    fk_first = k_start
    fk_last = k_start + NK // P - 1
    b_q = tl.load(q + i_b * sq_b + i_h * sq_h + rows[:, None] * sq_n + o_d[None, :],
                  mask=m_row[:, None] & m_d[None, :], other=0.0)  # (BM, BD)
    m_i = tl.full([BM], NEG, dtype=tl.float32)
    l_i = tl.zeros([BM], dtype=tl.float32)
    acc = tl.zeros([BM, BD], dtype=tl.float32)
    for j in range(NJ):
        if DIL == 1:
            off_lo = -(W - 1)
            off_hi = W - 1
        else:
            off_lo = (j - (W - 1)) * DIL
            off_hi = off_lo
        kf_lo = tl.maximum(fq_lo + off_lo, fk_first)
        kf_hi = tl.minimum(fq_hi + off_hi, fk_last)
        if CAUSAL:
            kf_hi = tl.minimum(kf_hi, fq_hi)
        if HAS_HISTORY:  # a block made only of history queries never needs non-history keys
            kf_hi = tl.where(fq_hi < history, tl.minimum(kf_hi, history - 1), kf_hi)
        n_lo = (kf_lo - k_start) * P
        n_hi = (kf_hi - k_start + 1) * P
        for n0 in range(n_lo, n_hi, BN):
            cols = n0 + tl.arange(0, BN)  # (BN,) key tokens
            m_col = cols < n_hi
            fk = k_start + cols // P
            df = fk[None, :] - fq[:, None]  # (BM, BN)
            ok = m_row[:, None] & m_col[None, :] & (df >= off_lo) & (df <= off_hi)
            if CAUSAL:
                ok = ok & (df <= 0)
            if HAS_HISTORY:
                ok = ok & ((fq[:, None] >= history) | (fk[None, :] < history))
            m_kv = m_col[:, None] & m_d[None, :]
            b_k = tl.load(k + i_b * sk_b + i_h * sk_h + cols[:, None] * sk_n + o_d[None, :], mask=m_kv, other=0.0)
            b_v = tl.load(v + i_b * sv_b + i_h * sv_h + cols[:, None] * sv_n + o_d[None, :], mask=m_kv, other=0.0)
            if IEEE:
                s = tl.dot(b_q, tl.trans(b_k), input_precision="ieee")
            else:
                s = tl.dot(b_q, tl.trans(b_k))
            s = tl.where(ok, s * scale, NEG)  # (BM, BN)
            m_new = tl.maximum(m_i, tl.max(s, axis=1))
            p = tl.where(ok, tl.exp(s - m_new[:, None]), 0.0)
            alpha = tl.exp(m_i - m_new)
            l_i = l_i * alpha + tl.sum(p, axis=1)
            if IEEE:
                pv = tl.dot(p.to(b_v.dtype), b_v, input_precision="ieee")
            else:
                pv = tl.dot(p.to(b_v.dtype), b_v)
            acc = acc * alpha[:, None] + pv
            m_i = m_new
    out = tl.where(l_i[:, None] > 0, acc / tl.maximum(l_i, 1e-30)[:, None], 0.0)
    tl.store(o + i_b * so_b + i_h * so_h + rows[:, None] * so_n + o_d[None, :], out.to(o.dtype.element_ty),
             mask=m_row[:, None] & m_d[None, :])


def frame_attention_triton(q, k, v, *, tokens_per_frame, window, dilation=1, q_start_frame=0, k_start_frame=0,
                           num_history_frames=None, causal=False, scale=None, block_m: int = 64,
                           block_n: int = 64):
    """q (B, H, Nq, D), k/v (B, H, Nk, D) -> (B, H, Nq, D) in q's dtype. Any strides with a unit last one."""
    check_window(window, dilation)
    check_triton_device(q, k, v)
    b, h, nq, d = q.shape
    nk = k.shape[2]
    q, k, v = (x if x.stride(-1) == 1 else x.contiguous() for x in (q, k, v))
    scale = d ** -0.5 if scale is None else scale
    out = torch.full_like(q, float("nan"))  # unwritten -> NaN
    bd = max(16, triton.next_power_of_2(d))  # tl.dot needs >= 16 on every side
    grid = (triton.cdiv(nq, block_m), b * h)
    history = -1 if num_history_frames is None else int(num_history_frames)
    _frame_attn_fwd[grid](q, k, v, out, *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *out.stride()[:3],
                          h, nq, nk, tokens_per_frame, d, int(q_start_frame), int(k_start_frame), history,
                          float(scale), BM=block_m, BN=block_n, BD=bd, W=window, DIL=dilation, CAUSAL=causal,
                          HAS_HISTORY=num_history_frames is not None, IEEE=q.dtype == torch.float32,
                          NJ=1 if dilation == 1 else 2 * window - 1)
    return out
