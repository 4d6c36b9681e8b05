"""Frame-windowed attention on the CPU with cost linear in the number of frames: each query
frame attends only the key frames inside its window (at most 2 * window - 1 of them), gathered
and processed in one batched SDPA per distinct window pattern."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from kairos_ros.ops.frame_attention.naive import frame_visible


def frame_attention_cpu(q, k, v, *, tokens_per_frame, window, dilation=1, q_start_frame=0, k_start_frame=0,
                        num_history_frames=None, causal=False, scale=None):
    b, h, nq, d = q.shape
    p = tokens_per_frame
    fq_n, fk_n = nq // p, k.shape[2] // p
    vis = frame_visible(torch.arange(fq_n) + q_start_frame, torch.arange(fk_n) + k_start_frame, window, dilation,
                        num_history_frames, causal)  # (Fq, Fk) frame visibility
    out = torch.full_like(q, float("nan"))
    kf = k.view(b, h, fk_n, p, d)
    vf = v.view(b, h, fk_n, p, d)
    qf = q.view(b, h, fq_n, p, d)
    counts = vis.sum(-1)
    for n_keys in counts.unique().tolist():
        rows = torch.nonzero(counts == n_keys).flatten()  # query frames with this many visible key frames
        if n_keys == 0:
            out.view(b, h, fq_n, p, d)[:, :, rows] = 0.0
            continue
        idx = torch.stack([torch.nonzero(vis[r]).flatten() for r in rows])  # (R, n_keys)
        kk = kf[:, :, idx].reshape(b, h, len(rows), n_keys * p, d)
        vv = vf[:, :, idx].reshape(b, h, len(rows), n_keys * p, d)
        res = F.scaled_dot_product_attention(qf[:, :, rows], kk, vv, scale=scale)  # (B, H, R, P, D)
        out.view(b, h, fq_n, p, d)[:, :, rows] = res
    return out
