"""Element-level attention masks of the mixture of experts (True = may attend), as the official
mask builder makes them (the parity fixtures hold them). The forwards do not build these dense
masks: windowed video attention goes through ops.frame_attention and the action rows through
plain attention over [history video ; actions]; the masks document and test the rules.

Video tokens are frame-major with P per frame; "history" = the first `history` frames.
video->video: SWA |df| < window; DSWA df a multiple of dilation with |df / dilation| < window;
a history query never sees a non-history key; causal=True (streaming) also hides later frames.
action->action: all. action->video: history tokens only. video->action: never.
"""
from __future__ import annotations

import torch

from kairos_ros.ops.frame_attention import frame_window_mask


def video_mask(frames: int, per_frame: int, kind: str, window: int, dilation: int, history: int | None,
               causal: bool = False) -> torch.Tensor:
    """(N, N) video -> video, N = frames x per_frame."""
    if kind not in ("SWA", "DSWA"):
        raise ValueError(f"no frame window for layer type '{kind}'")
    return frame_window_mask(frames, frames, per_frame, window=window, dilation=dilation if kind == "DSWA" else 1,
                             num_history_frames=history, causal=causal)


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
