"""Streaming world state: what the video DiT keeps between frames so that each new frame costs the
same however long the robot has been running.

Semantics (`streaming` temporal mode). Frames arrive one at a time, each at timestep t (0 = a clean
observation). A frame attends only the past: at SWA layers frames n-2..n, at DSWA layers n-8, n-4, n
(causal windows; window 3, dilation 4), and the GATED layers continue one causal scan over all
tokens ever seen. Feeding frames 0..F-1 one by one therefore equals one causal forward over all F
frames (`encode_history(..., causal=True)`), which test_streaming checks.

Per layer the state holds
- SWA/DSWA: K (post-RMSNorm, post-RoPE) and V of the last `keep` frames, keep = the frames back
  the window reaches ((window - 1), or (window - 1) x dilation at DSWA), or action_frames - 1 if
  larger; older frames are dropped (K/V eviction);
- GATED: the GatedDeltaNet recurrent state (B, H, K, V) and the short-convolution tails.

Frame counter and RoPE. `frames` counts frames since the last reset (unbounded). Frame n is rotated
at RoPE frame position n - origin. Video attention depends only on frame differences, so the
origin is free: when a position would reach the table length (rope_len, 1024), the origin slides
forward by (position - widest keep) and every cached K is re-rotated once by that shift, so
positions stay inside [0, rope_len) forever and outputs do not change (beyond float rounding).

What the action expert sees (the VideoCache a step returns). At every SWA/DSWA layer: all tokens of
the newest `action_frames` frames (default 1), K re-rotated so the oldest of them sits at frame
position 0 -- exactly how the official action mode presents a history of that many frames (the
RoboTwin setting is one frame at position 0). At GATED layers the action attends only itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from kairos_ros.model.layers import apply_rope
from kairos_ros.model.video_stack import VideoCache, run_layers


@dataclass
class WorldState:
    action_frames: int = 1  # newest frames the action expert attends at each SWA/DSWA layer
    frames: int = 0  # frames absorbed since the last reset (= the next frame's index)
    origin: int = 0  # frame n has RoPE frame position n - origin
    kv: dict = field(default_factory=dict)  # layer -> (first frame index, K (B, n P, W), V (B, n P, W))
    gdn: dict = field(default_factory=dict)  # layer -> GatedDeltaNet state dict
    tokens_per_frame: int | None = None

    def __post_init__(self):
        if not isinstance(self.action_frames, int) or self.action_frames < 1:
            raise ValueError(f"action_frames = {self.action_frames!r} must be an int >= 1")

    def reset(self) -> None:
        self.frames, self.origin, self.tokens_per_frame = 0, 0, None
        self.kv.clear()
        self.gdn.clear()

    def clone(self) -> "WorldState":
        """A snapshot: tensors are never modified in place, so sharing them is safe."""
        return replace(self, kv=dict(self.kv), gdn=dict(self.gdn))


def keep_frames(kind: str, window: int, dilation: int, action_frames: int = 1) -> int:
    """Past frames a SWA/DSWA layer must keep after a step."""
    return max((window - 1) * (dilation if kind == "DSWA" else 1), action_frames - 1)


def shift_frames(k: torch.Tensor, shift: int, model) -> torch.Tensor:
    """Move video keys (B, N, W) `shift` frame positions (exact in float64: RoPE is a rotation)."""
    if shift == 0:
        return k
    n_heads = model.cfg.video.num_heads
    factor = model.video_dit.rope.frame_shift(shift, k.device)[None]  # (1, hd/2)
    return apply_rope(k.unflatten(-1, (n_heads, -1)).double(), factor).flatten(2).to(k.dtype)  # one rounding


def _rebase(model, state: WorldState, shift: int) -> None:
    for i, (first, k, v) in state.kv.items():
        state.kv[i] = (first, shift_frames(k, -shift, model), v)
    state.origin += shift


def stream_step(model, frame_latents, context, ctx_mask, state: WorldState, t: float = 0.0, commit: bool = True):
    """Absorb one latent frame (B, C, 1, H, W) at timestep t. commit=False computes the same outputs
    without changing the state (e.g. a noisy frame being denoised). Returns (VideoCache for the
    action expert, per-layer outputs (B, P, D) of this frame)."""
    cv = model.cfg.video
    if frame_latents.dim() != 5 or frame_latents.shape[2] != cv.patch[0]:
        raise ValueError(f"stream_step takes one latent frame (B, C, {cv.patch[0]}, H, W), "
                         f"got {tuple(frame_latents.shape)}")
    if not commit:  # work on a snapshot: the caller's state stays as it was (a rebase included)
        state = state.clone()
    blocks = model.video_dit.blocks
    widest = max(keep_frames(b.kind, cv.window, cv.dilation, state.action_frames) for b in blocks)
    if widest >= cv.rope_len:
        raise ValueError(f"action_frames {state.action_frames} needs {widest + 1} frame positions, "
                         f"more than rope_len {cv.rope_len}")
    n = state.frames
    if n - state.origin >= cv.rope_len:  # slide the origin so the newest position is `widest`
        _rebase(model, state, n - state.origin - widest)
    pos = n - state.origin
    b = frame_latents.shape[0]
    steps = torch.full((b,), float(t), device=frame_latents.device)  # float32 even for bf16 latents
    pre = model.video_dit.embed(frame_latents, steps, context, pos)
    per_frame = pre.grid[1] * pre.grid[2]
    if state.tokens_per_frame not in (None, per_frame):
        raise ValueError(f"frame of {per_frame} tokens; the world state holds frames of {state.tokens_per_frame} "
                         "(reset it to change the image size)")
    seen = min(state.action_frames, n + 1)  # frames the action expert sees
    past = {i: (first - state.origin, k, v) for i, (first, k, v) in state.kv.items()}
    res = run_layers(model.video_dit, pre, ctx_mask, past=past, gdn=state.gdn, q_start=pos, causal=True)
    cache, new_kv = [], {}
    tail = seen * per_frame
    oldest = n - seen + 1 - state.origin  # RoPE position of the oldest frame the action sees
    for i, kv in enumerate(res.kv):
        if kv is None:  # GATED: its scan state is carried instead
            cache.append(None)
            continue
        kk, vv = kv  # frames first..n
        first = state.kv[i][0] if i in state.kv else n
        cache.append((shift_frames(kk[:, -tail:], -oldest, model), vv[:, -tail:]))
        blk = model.video_dit.blocks[i]
        drop = max(0, n + 1 - first - keep_frames(blk.kind, cv.window, cv.dilation, state.action_frames))
        new_kv[i] = (first + drop, kk[:, drop * per_frame:], vv[:, drop * per_frame:])
    state.kv.update(new_kv)
    state.gdn.update(res.gdn)
    state.frames, state.tokens_per_frame = n + 1, per_frame
    return VideoCache(cache, seen, per_frame, pre), res.outs
