"""Attention masks of the mixture of experts (True = may attend), element level.

Video tokens are frame-major with P tokens per frame; "history" tokens are those of the first
`history` frames. video->video: windowed by frame (SWA |df| < w; DSWA df a multiple of d with
|df/d| < w), a history query never sees a non-history key, and with causal=True (the streaming
mode) no query sees a later frame. action->action: all. action->video: history tokens only.
video->action: never.
"""
from __future__ import annotations

import torch

from kairos_ros.ops.frame_attention.naive import frame_visible


def frame_visibility(fq: torch.Tensor, fk: torch.Tensor, kind: str, window: int, dilation: int,
                     history: int | None, causal: bool = False) -> torch.Tensor:
    if kind not in ("SWA", "DSWA"):
        raise ValueError(f"no frame window for layer type '{kind}'")
    return frame_visible(fq, fk, window, dilation if kind == "DSWA" else 1, history, causal)


def video_mask(frames: int, per_frame: int, kind: str, window: int, dilation: int, history: int,
               causal: bool = False) -> torch.Tensor:
    f = torch.arange(frames).repeat_interleave(per_frame)
    return frame_visibility(f, f, kind, window, dilation, history, causal)


def mixed_mask(frames: int, per_frame: int, n_action: int, kind: str, window: int, dilation: int,
               history: int, causal: bool = False) -> torch.Tensor:
    """[video ; action] x [video ; action] for a joint forward."""
    nv = frames * per_frame
    m = torch.zeros(nv + n_action, nv + n_action, dtype=torch.bool)
    m[:nv, :nv] = video_mask(frames, per_frame, kind, window, dilation, history, causal)
    m[nv:, :history * per_frame] = True
    m[nv:, nv:] = True
    return m


def action_with_cache_mask(video_tokens: int, history_tokens: int, n_action: int) -> torch.Tensor:
    """Action queries over [cached video ; action] keys."""
    m = torch.zeros(n_action, video_tokens + n_action, dtype=torch.bool)
    m[:, :history_tokens] = True
    m[:, video_tokens:] = True
    return m
