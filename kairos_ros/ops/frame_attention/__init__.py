"""Frame-windowed (dilated) attention over frame-major video tokens, with a dispatcher by device.

    o = frame_window_attention(q, k, v, *, tokens_per_frame, window=3, dilation=1, q_start_frame=0,
                               k_start_frame=0, num_history_frames=None, causal=False, scale=None,
                               backend="auto")
    mask = frame_window_mask(num_q_frames, num_k_frames, tokens_per_frame, *, window, dilation,
                             q_start_frame, k_start_frame, num_history_frames, causal)  # (Nq, Nk), True = may attend

q (B, H, Nq, D), k/v (B, H, Nk, D), o like q; Nq = Fq * P, Nk = Fk * P. Visibility rules are in
naive.py (Kairos: SWA window 3; DSWA window 3, dilation 4; history frames never see the future).
A query row with no visible key returns zeros. backend="auto": CUDA -> the project's Triton
kernel; anything else -> the CPU path (cost linear in frames). Explicit: "naive" | "cpu" | "triton".
"""
from __future__ import annotations

import torch

from kairos_ros.ops.frame_attention.cpu import frame_attention_cpu
from kairos_ros.ops.frame_attention.naive import frame_attention_naive, frame_window_mask

BACKENDS = ("auto", "naive", "cpu", "triton")


def select_backend(backend: str, is_cuda: bool) -> str:
    """The concrete backend that `backend` stands for on this device."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown frame attention backend '{backend}' (one of {list(BACKENDS)})")
    if backend != "auto":
        return backend
    return "triton" if is_cuda else "cpu"


def _check_shapes(q, k, v, p: int) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.shape != k.shape or q.shape[:2] != k.shape[:2] or q.shape[3] != k.shape[3]:
        raise ValueError(f"expected q (B, H, Nq, D) and k, v (B, H, Nk, D); got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if p < 1:
        raise ValueError(f"tokens_per_frame must be >= 1; got {p}")
    for name, n in (("queries", q.shape[2]), ("keys", k.shape[2])):
        if n % p:
            raise ValueError(f"{n} {name} are not whole frames of {p} tokens")


def frame_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, tokens_per_frame: int,
                           window: int = 3, dilation: int = 1, q_start_frame: int = 0, k_start_frame: int = 0,
                           num_history_frames: int | None = None, causal: bool = False,
                           scale: float | None = None, backend: str = "auto") -> torch.Tensor:
    backend = select_backend(backend, q.is_cuda)
    _check_shapes(q, k, v, tokens_per_frame)
    if backend == "triton":
        from kairos_ros.ops.frame_attention.triton_kernel import frame_attention_triton as fn  # imports triton
    else:
        fn = frame_attention_cpu if backend == "cpu" else frame_attention_naive
    return fn(q, k, v, tokens_per_frame=tokens_per_frame, window=window, dilation=dilation,
              q_start_frame=q_start_frame, k_start_frame=k_start_frame, num_history_frames=num_history_frames,
              causal=causal, scale=scale)


__all__ = ["frame_window_attention", "frame_window_mask", "select_backend", "BACKENDS"]
