"""Frame-windowed attention on the CPU with cost linear in the number of frames.

Each query frame attends only the key frames inside its window (at most 2 * window - 1 of them).
Query frames are grouped by how many key frames they see; each group gathers its key frames
(R, n * P tokens) and runs one batched, mask-free SDPA, so the work is Fq * n * P^2 * D rather
than the dense Fq * Fk * P^2 * D. Interior frames all fall in one group; the few edge patterns
(window clipped at the ends, causal, history) add a handful of small groups.
Query frames that see no key frame output zeros.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from kairos_ros.ops.frame_attention.naive import check_window, frame_visible


def frame_attention_cpu(q, k, v, *, tokens_per_frame, window, dilation=1, q_start_frame=0, k_start_frame=0,
                        num_history_frames=None, causal=False, scale=None):
    """q (B, H, Nq, D), k/v (B, H, Nk, D) -> (B, H, Nq, D)."""
    check_window(window, dilation)
    b, h, nq, d = q.shape
    p = tokens_per_frame
    fq_n, fk_n = nq // p, k.shape[2] // p
    fq = torch.arange(fq_n, device=q.device) + q_start_frame
    fk = torch.arange(fk_n, device=q.device) + k_start_frame
    vis = frame_visible(fq, fk, window, dilation, num_history_frames, causal)  # (Fq, Fk)
    qf = q.reshape(b, h, fq_n, p, d)
    kf = k.reshape(b, h, fk_n, p, d)
    vf = v.reshape(b, h, fk_n, p, d)
    out = torch.full((b, h, fq_n, p, d), float("nan"), dtype=q.dtype, device=q.device)  # unwritten -> NaN
    counts = vis.sum(-1)  # (Fq,) visible key frames per query frame
    for n_keys in counts.unique().tolist():
        rows = torch.nonzero(counts == n_keys).flatten()  # (R,) query frames with this many key frames
        if n_keys == 0:
            out[:, :, rows] = 0.0
            continue
        r = len(rows)
        # Their key frames, R runs of n in row order. index_select copies whole (P, D) frames, far
        # faster than advanced indexing; 4-D (B, H*R, tokens, D) lets SDPA use its fused CPU kernel.
        flat = torch.nonzero(vis[rows])[:, 1]  # (R * n,)
        kk = kf.index_select(2, flat).reshape(b, h * r, n_keys * p, d)  # (B, H*R, n*P, D)
        vv = vf.index_select(2, flat).reshape(b, h * r, n_keys * p, d)
        qq = qf.index_select(2, rows).reshape(b, h * r, p, d)  # (B, H*R, P, D)
        res = F.scaled_dot_product_attention(qq, kk, vv, scale=scale)
        out.index_copy_(2, rows, res.view(b, h, r, p, d))
    return out.reshape(b, h, nq, d)
