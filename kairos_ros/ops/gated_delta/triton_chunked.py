"""The project's chunked Triton kernel for the gated delta rule (long inputs on CUDA without fla).

One program per (value block, batch x head) holds its K x BV state slice in registers and walks
the sequence in chunks of BT tokens, so the sequential steps drop from T to T / BT and the work
becomes (BT x K) @ (K x BV) products. Per chunk, with G the cumulative log decay inside it,
L = strictly-lower(diag(beta) (K K^T o e^(G_t - G_i))) and S the incoming state (as chunked.py):
    (I + L) U = diag(beta) (V - diag(e^G) K S)       forward substitution, row by row
    O = diag(e^G) Q S + (M o Q K^T) U                M: causal decay mask, diagonal included
    S <- e^(G_last) S + (diag(e^(G_last - G)) K)^T U
Without forming W = T^-1 diag(beta e^G) K (as the CPU path does), nothing larger than BT x K or
K x BV lives in registers. Rows past T load as zeros (q = k = v = g = beta = 0), which leaves the
state untouched. Dot products run in IEEE float32 so the state does not drift (no TF32).
Plain pointers and masks; T is a runtime value; runs under TRITON_INTERPRET=1.
"""
from __future__ import annotations

import triton
import triton.language as tl

NEG = tl.constexpr(-1.0e30)


@triton.jit
def _gated_delta_chunked_fwd(q, k, v, g, beta, h0, o, ht, scale, T, H, K, V, eps,
                             BT: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr, USE_L2: tl.constexpr,
                             HAS_H0: tl.constexpr, STORE_HT: tl.constexpr):
    i_v = tl.program_id(0)
    i_bh = tl.program_id(1)
    i_b = (i_bh // H).to(tl.int64)
    i_h = i_bh % H
    o_t = tl.arange(0, BT)
    o_k = tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    m_k = o_k < K
    m_v = o_v < V
    m_h = m_k[:, None] & m_v[None, :]
    incl = o_t[:, None] >= o_t[None, :]  # (BT, BT) causal, diagonal included
    strict = o_t[:, None] > o_t[None, :]
    p_state = i_bh.to(tl.int64) * K * V + o_k[:, None] * V + o_v[None, :]
    b_s = tl.zeros([BK, BV], dtype=tl.float32)  # state slice S[:, v-block]
    if HAS_H0:
        b_s += tl.load(h0 + p_state, mask=m_h, other=0.0).to(tl.float32)
    for t0 in range(0, T, BT):
        tok = t0 + o_t
        m_t = tok < T
        rows = (i_b * T + tok) * H + i_h  # (BT,) index of (b, t, h) in the (B, T, H) layout
        m_tk = m_t[:, None] & m_k[None, :]
        m_tv = m_t[:, None] & m_v[None, :]
        b_q = tl.load(q + rows[:, None] * K + o_k[None, :], mask=m_tk, other=0.0).to(tl.float32)  # (BT, BK)
        b_k = tl.load(k + rows[:, None] * K + o_k[None, :], mask=m_tk, other=0.0).to(tl.float32)
        b_v = tl.load(v + rows[:, None] * V + o_v[None, :], mask=m_tv, other=0.0).to(tl.float32)  # (BT, BV)
        b_g = tl.load(g + rows, mask=m_t, other=0.0).to(tl.float32)  # (BT,)
        b_beta = tl.load(beta + rows, mask=m_t, other=0.0).to(tl.float32)
        if USE_L2:
            b_q = b_q / tl.sqrt(tl.sum(b_q * b_q, axis=1) + eps)[:, None]
            b_k = b_k / tl.sqrt(tl.sum(b_k * b_k, axis=1) + eps)[:, None]
        b_q = b_q * scale
        b_G = tl.cumsum(b_g, axis=0)  # (BT,)
        g_last = tl.sum(b_g, axis=0)  # padded rows add 0, so this is G at the last real token
        decay = tl.exp(tl.where(incl, b_G[:, None] - b_G[None, :], NEG))  # (BT, BT), exponents <= 0
        kk = tl.dot(b_k, tl.trans(b_k), input_precision="ieee")
        b_l = tl.where(strict, kk * decay, 0.0) * b_beta[:, None]  # diag(beta) A, strictly lower
        ks = tl.dot(b_k, b_s, input_precision="ieee")  # (BT, BV)
        b_u = b_beta[:, None] * (b_v - tl.exp(b_G)[:, None] * ks)  # right-hand side, solved in place
        for i in range(1, BT):  # forward substitution: u_i -= sum_{j<i} L_ij u_j (rows j < i are final)
            l_i = tl.sum(tl.where(o_t[:, None] == i, b_l, 0.0), axis=0)  # (BT,) row i of L
            corr = tl.sum(l_i[:, None] * b_u, axis=0)  # (BV,)
            b_u = tl.where(o_t[:, None] == i, b_u - corr[None, :], b_u)
        qk = tl.dot(b_q, tl.trans(b_k), input_precision="ieee") * decay
        b_o = tl.exp(b_G)[:, None] * tl.dot(b_q, b_s, input_precision="ieee")
        b_o += tl.dot(qk, b_u, input_precision="ieee")
        tl.store(o + rows[:, None] * V + o_v[None, :], b_o.to(o.dtype.element_ty), mask=m_tv)
        kd = b_k * tl.exp(g_last - b_G)[:, None]  # (BT, BK)
        b_s = b_s * tl.exp(g_last) + tl.dot(tl.trans(kd), b_u, input_precision="ieee")
    if STORE_HT:
        tl.store(ht + p_state, b_s, mask=m_h)


def launch_chunked(grid, q, k, v, g, beta, h0, out, final, scale, t, h, dk, dv, eps, bk, bv, use_l2, has_h0,
                   store_ht, block_t: int = 32):
    _gated_delta_chunked_fwd[grid](q, k, v, g, beta, h0, out, final, scale, t, h, dk, dv, eps, BT=block_t, BK=bk,
                                   BV=bv, USE_L2=use_l2, HAS_H0=has_h0, STORE_HT=store_ht, num_warps=4)
