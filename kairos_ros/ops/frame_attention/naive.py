"""Reference frame-windowed attention: a dense boolean mask and one SDPA call.

Tokens are frame-major with P per frame; query token i belongs to frame q_start + i // P, key
token j to frame k_start + j // P. A key frame fk is visible from query frame fq (df = fk - fq) when
  dilation 1: |df| < window;   dilation d > 1: df % d == 0 and |df // d| < window
(window 3, dilation 4 gives df in {0, +-4, +-8}); additionally fk <= fq when causal, and
fk < num_history_frames when fq < num_history_frames (history frames never see the future).
A query row with no visible key outputs zeros (SDPA alone would give NaN there).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def frame_visible(fq: torch.Tensor, fk: torch.Tensor, window: int, dilation: int = 1,
                  num_history_frames: int | None = None, causal: bool = False) -> torch.Tensor:
    """(Fq, Fk) bool: may absolute query frame fq[i] attend absolute key frame fk[j]."""
    df = fk[None, :] - fq[:, None]
    if dilation == 1:
        ok = df.abs() < window
    else:
        ok = (df % dilation == 0) & ((df // dilation).abs() < window)
    if causal:
        ok = ok & (df <= 0)
    if num_history_frames is not None:
        ok = ok & ~((fq[:, None] < num_history_frames) & (fk[None, :] >= num_history_frames))
    return ok


def check_window(window: int, dilation: int) -> None:
    if window < 1 or dilation < 1:
        raise ValueError(f"window and dilation must be >= 1; got window={window}, dilation={dilation}")


def frame_window_mask(num_q_frames: int, num_k_frames: int, tokens_per_frame: int, *, window: int,
                      dilation: int = 1, q_start_frame: int = 0, k_start_frame: int = 0,
                      num_history_frames: int | None = None, causal: bool = False,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """(Nq, Nk) bool token mask, True = may attend; Nq = num_q_frames * P, Nk = num_k_frames * P."""
    check_window(window, dilation)
    fq = torch.arange(num_q_frames, device=device) + q_start_frame
    fk = torch.arange(num_k_frames, device=device) + k_start_frame
    frames = frame_visible(fq, fk, window, dilation, num_history_frames, causal)
    return frames.repeat_interleave(tokens_per_frame, 0).repeat_interleave(tokens_per_frame, 1)


def frame_attention_naive(q, k, v, *, tokens_per_frame, window, dilation=1, q_start_frame=0, k_start_frame=0,
                          num_history_frames=None, causal=False, scale=None):
    """q (B, H, Nq, D), k/v (B, H, Nk, D) -> (B, H, Nq, D)."""
    p = tokens_per_frame
    mask = frame_window_mask(q.shape[2] // p, k.shape[2] // p, p, window=window, dilation=dilation,
                             q_start_frame=q_start_frame, k_start_frame=k_start_frame,
                             num_history_frames=num_history_frames, causal=causal, device=q.device)
    empty = ~mask.any(-1, keepdim=True)  # (Nq, 1) rows that see nothing
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask | empty, scale=scale)
    return out.masked_fill(empty, 0.0)
