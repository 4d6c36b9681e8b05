"""Frame-windowed (dilated) attention with a dispatcher: CPU -> the gathered path whose cost is
linear in frames; CUDA -> the project's Triton kernel (also linear in frames).

    frame_window_attention(q, k, v, *, tokens_per_frame, window=3, dilation=1, q_start_frame=0,
                           k_start_frame=0, num_history_frames=None, causal=False, scale=None,
                           backend="auto")   q (B, H, Nq, D), k/v (B, H, Nk, D)
"""
from __future__ import annotations

from kairos_ros.ops.frame_attention.cpu import frame_attention_cpu
from kairos_ros.ops.frame_attention.naive import frame_attention_naive, frame_window_mask

BACKENDS = ("auto", "naive", "cpu", "triton")


def frame_window_attention(q, k, v, *, tokens_per_frame, window=3, dilation=1, q_start_frame=0, k_start_frame=0,
                           num_history_frames=None, causal=False, scale=None, backend="auto"):
    if backend not in BACKENDS:
        raise ValueError(f"unknown frame attention backend '{backend}' (one of {list(BACKENDS)})")
    for name, n in (("queries", q.shape[2]), ("keys", k.shape[2])):
        if n % tokens_per_frame:
            raise ValueError(f"{n} {name} are not whole frames of {tokens_per_frame} tokens")
    if backend == "auto":
        backend = "cpu" if q.device.type == "cpu" else "triton"
    if backend == "triton":
        from kairos_ros.ops.frame_attention.triton_kernel import frame_attention_triton as fn
    else:
        fn = frame_attention_cpu if backend == "cpu" else frame_attention_naive
    return fn(q, k, v, tokens_per_frame=tokens_per_frame, window=window, dilation=dilation,
              q_start_frame=q_start_frame, k_start_frame=k_start_frame, num_history_frames=num_history_frames,
              causal=causal, scale=scale)


__all__ = ["frame_window_attention", "frame_window_mask"]
