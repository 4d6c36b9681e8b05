"""Streaming world state: what the video DiT keeps between control steps so that each new frame
costs the same however long the robot has been running.

In `streaming` mode a frame attends only the past (causal frame windows). Per layer the state
holds the K/V of the frames still inside the layer's window (SWA: the last window - 1 frames;
DSWA: the last (window - 1) * dilation frames, of which only every dilation-th is visible) and,
for GatedDeltaNet layers, the recurrent state plus the short convolution's last inputs. RoPE is
relative and computed on the fly in float64, so the absolute frame counter has no table limit.

The action expert, at each windowed layer, attends the K/V of the frames the newest frame attends
there (its causal window, the newest frame included); at GatedDeltaNet layers it attends itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class WorldState:
    frames: int = 0  # frames absorbed since the last reset (the next frame's index)
    kv: dict = field(default_factory=dict)  # layer -> (first frame index, K (B, n, W), V (B, n, W))
    gdn: dict = field(default_factory=dict)  # layer -> recurrent/conv state

    def reset(self) -> None:
        self.frames = 0
        self.kv.clear()
        self.gdn.clear()


def keep_frames(kind: str, window: int, dilation: int) -> int:
    """Past frames a layer must remember (besides the current one)."""
    return (window - 1) * (dilation if kind == "DSWA" else 1)


def append_kv(state: WorldState, layer: int, frame: int, k: torch.Tensor, v: torch.Tensor, per_frame: int,
              keep: int):
    """Add one frame's K/V (B, P, W) and drop frames that left the window; returns (start, K, V)."""
    if layer in state.kv:
        start, kk, vv = state.kv[layer]
        kk, vv = torch.cat([kk, k], 1), torch.cat([vv, v], 1)
    else:
        start, kk, vv = frame, k, v
    excess = (frame - start) - keep
    if excess > 0:
        kk, vv, start = kk[:, excess * per_frame:], vv[:, excess * per_frame:], start + excess
    state.kv[layer] = (start, kk, vv)
    return start, kk, vv
