"""The project's Triton kernels for the gated delta rule: a fused recurrence over T (here, used
for T <= 64) and a chunked kernel (triton_chunked.py, longer inputs); the wrapper picks.

The recurrence: one program per (value block, batch x head) keeps its K x BV state slice in registers for
all T steps; q/k L2 norm and scale are applied in the kernel, so the inputs are read once in their
own dtype and nothing is materialised in float32 beforehand. Plain pointer arithmetic with masks
(no block pointers), and T is a runtime value (one compiled variant for every sequence length);
it runs under TRITON_INTERPRET=1 on CPU tensors (Triton >= 3.9 with numpy 2: older interpreters
cannot loop to a runtime bound).
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from kairos_ros.ops.gated_delta.naive import L2_EPS
from kairos_ros.ops.gated_delta.triton_chunked import launch_chunked

RECURRENT_MAX_T = 64  # longer inputs go to the chunked kernel (triton_chunked.py)
STATE_REGS = 2048  # BK * BV per warp: keeps the state slice in registers (fla's fused kernel uses the same budget)


@triton.jit
def _gated_delta_recurrent_fwd(q, k, v, g, beta, h0, o, ht, scale, T, H, K, V, eps,
                               BK: tl.constexpr, BV: tl.constexpr, USE_L2: tl.constexpr,
                               HAS_H0: tl.constexpr, STORE_HT: tl.constexpr):
    i_v = tl.program_id(0)
    i_bh = tl.program_id(1)
    i_b = (i_bh // H).to(tl.int64)
    i_h = i_bh % H
    o_k = tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    m_k = o_k < K
    m_v = o_v < V
    m_h = m_k[:, None] & m_v[None, :]
    p_state = i_bh.to(tl.int64) * K * V + o_k[:, None] * V + o_v[None, :]  # (BK, BV) offsets into (B, H, K, V)
    b_h = tl.zeros([BK, BV], dtype=tl.float32)  # state slice S[:, v-block]
    if HAS_H0:
        b_h += tl.load(h0 + p_state, mask=m_h, other=0.0).to(tl.float32)
    for t in range(0, T):
        row = (i_b * T + t) * H + i_h  # index of (b, t, h) in the (B, T, H) layout
        b_q = tl.load(q + row * K + o_k, mask=m_k, other=0.0).to(tl.float32)
        b_k = tl.load(k + row * K + o_k, mask=m_k, other=0.0).to(tl.float32)
        b_v = tl.load(v + row * V + o_v, mask=m_v, other=0.0).to(tl.float32)
        b_g = tl.load(g + row).to(tl.float32)
        b_beta = tl.load(beta + row).to(tl.float32)
        if USE_L2:
            b_q = b_q / tl.sqrt(tl.sum(b_q * b_q) + eps)
            b_k = b_k / tl.sqrt(tl.sum(b_k * b_k) + eps)
        b_q = b_q * scale
        b_h = b_h * tl.exp(b_g)
        b_u = b_beta * (b_v - tl.sum(b_h * b_k[:, None], axis=0))  # (BV,)
        b_h = b_h + b_k[:, None] * b_u[None, :]
        b_o = tl.sum(b_h * b_q[:, None], axis=0)  # (BV,)
        tl.store(o + row * V + o_v, b_o.to(o.dtype.element_ty), mask=m_v)
    if STORE_HT:
        tl.store(ht + p_state, b_h, mask=m_h)


def check_triton_device(*tensors: torch.Tensor) -> None:
    """Triton kernels need GPU tensors, or CPU tensors under the interpreter (tests)."""
    if any(not x.is_cuda for x in tensors) and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError("the 'triton' backend needs CUDA tensors (or TRITON_INTERPRET=1 for CPU tensors); "
                         f"got device {tensors[0].device}")


def gated_delta_triton(q, k, v, g, beta, scale, initial_state=None, use_qk_l2norm=True, output_final_state=True,
                       mode: str = "auto", block_v: int | None = None):
    """Returns o (B, T, H, V) in v's dtype and the final state (B, H, K, V) float32 (None unless asked).
    mode "auto": the fused recurrence for T <= 64 (as Kairos / fla choose), the chunked kernel above."""
    check_triton_device(q, k, v, g, beta)
    if mode not in ("auto", "recurrent", "chunked"):
        raise ValueError(f"unknown triton gated delta mode '{mode}' (auto, recurrent or chunked)")
    b, t, h, dk = q.shape
    dv = v.shape[-1]
    chunked = mode == "chunked" or (mode == "auto" and t > RECURRENT_MAX_T)
    q, k, v, g, beta = (x.contiguous() for x in (q, k, v, g, beta))
    bk = max(16, triton.next_power_of_2(dk)) if chunked else triton.next_power_of_2(dk)  # tl.dot: sides >= 16
    bv = block_v or min(triton.next_power_of_2(dv), max(8, STATE_REGS // bk))
    bv = max(16, bv) if chunked else bv
    out = torch.full((b, t, h, dv), float("nan"), dtype=v.dtype, device=v.device)  # unwritten -> NaN
    final = torch.full((b, h, dk, dv), float("nan"), dtype=torch.float32, device=v.device) \
        if output_final_state else out  # `out` is only a placeholder pointer when the state is not stored
    h0 = initial_state.float().contiguous() if initial_state is not None else out
    grid = (triton.cdiv(dv, bv), b * h)
    args = (q, k, v, g, beta, h0, out, final, float(scale), t, h, dk, dv, L2_EPS)
    if chunked:
        launch_chunked(grid, *args, bk, bv, use_qk_l2norm, initial_state is not None, output_final_state,
                       block_t=16 if bk >= 256 else 32)
    else:
        _gated_delta_recurrent_fwd[grid](*args, BK=bk, BV=bv, USE_L2=use_qk_l2norm, HAS_H0=initial_state is not None,
                                         STORE_HT=output_final_state, num_warps=1)
    return out, (final if output_final_state else None)
