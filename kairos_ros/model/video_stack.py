"""The video DiT's layers: the one implementation every video forward runs (as gpt-fast runs prefill
and decode through one attention path over one KV cache).

One video layer (blocks.Block, adaLN in Kairos' order): modulate, then self-attention over
frame-windowed keys (SWA / DSWA) or the GatedDeltaNet scan (GATED), then cross-attention to the
context and the FFN. Where the keys come from is the only difference between the forwards:

- a full forward (`encode_history`, the video half of `joint_forward`): the frames' own K/V; the
  first `history` frames never see the later ones, `causal` hides all later frames;
- a streaming step (`world_state.stream_step`): [K/V the world state kept of earlier frames ;
  the new frame's], the new frame at RoPE frame position `q_start`, the kept ones from
  `past[i][0]`, causal; GATED layers continue from the carried scan state.

`run_layers` runs the stack over embedded tokens (`experts.Prepared`) and returns per layer the
output, the K/V the layer attended (past and new, K after RMSNorm and RoPE, (B, n, W)) and the
GatedDeltaNet state. With `kv_only` it stops as soon as the last K/V the action expert reads exists
(what comes after it changes no action: the action expert reads only SWA/DSWA K/V), which the
official temporal mode's per-observation history encode uses.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import torch

from kairos_ros.model.experts import Prepared
from kairos_ros.model.layers import apply_rope, heads, merge_heads
from kairos_ros.ops.frame_attention import frame_window_attention


_pause = threading.local()


def pause_between_layers(fn: Callable[[], None] | None) -> None:
    """This thread's pause hook (None: none), called before each video layer's self-attention and
    before its cross-attention + FFN. A background worker (the predicted frames) waits there while
    the control path runs, so the two compete for at most one such piece."""
    _pause.fn = fn


def _pause_point() -> None:
    fn = getattr(_pause, "fn", None)
    if fn is not None:
        fn()


@dataclass
class VideoCache:
    """What the action expert reads from the video DiT: per video layer the K/V (B, n, W) of the
    history tokens it attends (K post-RMSNorm, post-RoPE), None at GATED layers. It also keeps
    the sampler's per-context inputs and attention buffers, so one cache serves one sampler at a
    time (sample from two threads with two caches)."""

    kv: list
    frames: int  # history frames covered
    tokens_per_frame: int
    video_pre: Prepared | None = None  # the video embeddings (inspection, parity)
    _memo: dict = field(default_factory=dict, repr=False)  # per-context action-expert inputs


@dataclass
class LayerOutputs:
    outs: list  # per layer (B, N, D); shorter than the stack with kv_only
    kv: list  # per layer (K, V) (B, n, W) attended (past + new), None at GATED layers
    gdn: dict  # GATED layer -> its GatedDeltaNet state after these tokens


def last_kv_layer(blocks) -> int:
    """Index of the last SWA/DSWA layer (-1: none), the last one whose K/V the action expert reads."""
    return max((i for i, b in enumerate(blocks) if b.kind != "GATED"), default=-1)


def video_layer(blk, cfg, x, pre: Prepared, ctx_kv, ctx_mask, *, past=None, gdn_state=None, q_start: int = 0,
                history: int | None = None, causal: bool = False, kv_only: bool = False):
    """One video layer over x (B, N, D), whole frames. past: (first frame position, K, V) of earlier
    frames this layer attends (streaming) or None. Returns (x, (K, V) attended or None, GDN state
    or None); with kv_only, x is None (only the K/V are computed)."""
    _pause_point()
    c = blk.chunks(pre.t_mod)
    h = blk.modulated(x, c)
    if blk.kind == "GATED":
        out, state = blk.gated_delta(h, gdn_state)
        _pause_point()
        return blk.finish(x, out, c, ctx_kv, ctx_mask), None, state
    if kv_only:  # the same K and V as blk.qkv, without the queries nothing reads
        sa = blk.self_attn
        k = apply_rope(sa.norm_k(sa.k(h)).unflatten(-1, (blk.heads, -1)), pre.rope).flatten(2)
        v = sa.v(h)
        if past is not None:
            k, v = torch.cat([past[1], k], 1), torch.cat([past[2], v], 1)
        return None, (k, v), None
    q, k, v = blk.qkv(h, pre.rope)  # (B, N, H, hd)
    k, v = k.flatten(2), v.flatten(2)  # (B, N, W)
    k_start = q_start
    if past is not None:
        k_start, k, v = past[0], torch.cat([past[1], k], 1), torch.cat([past[2], v], 1)
    a = frame_window_attention(q.transpose(1, 2), heads(k, blk.heads), heads(v, blk.heads),
                               tokens_per_frame=pre.grid[1] * pre.grid[2], window=cfg.window,
                               dilation=cfg.dilation if blk.kind == "DSWA" else 1, q_start_frame=q_start,
                               k_start_frame=k_start, num_history_frames=history, causal=causal)
    _pause_point()
    return blk.finish(x, blk.self_attn.o(merge_heads(a)), c, ctx_kv, ctx_mask), (k, v), None


def run_layers(video_dit, pre: Prepared, ctx_mask, *, past: dict | None = None, gdn: dict | None = None,
               q_start: int = 0, history: int | None = None, causal: bool = False,
               kv_only: bool = False) -> LayerOutputs:
    """The video stack over `pre` (video_dit.embed). past: layer -> (first frame position, K, V)
    and gdn: layer -> GatedDeltaNet state, of earlier frames (streaming); q_start: the RoPE frame
    position of pre's first frame."""
    blocks = video_dit.blocks
    stop = last_kv_layer(blocks) if kv_only else len(blocks) - 1
    res, x = LayerOutputs([], [], {}), pre.x
    for i, blk in enumerate(blocks[:stop + 1]):
        only = kv_only and i == stop
        x, kv, state = video_layer(blk, video_dit.cfg, x, pre, blk.context_kv(pre.context), ctx_mask,
                                   past=(past or {}).get(i), gdn_state=(gdn or {}).get(i), q_start=q_start,
                                   history=history, causal=causal, kv_only=only)
        res.kv.append(kv)
        if state is not None:
            res.gdn[i] = state
        if not only:
            res.outs.append(x)
    res.kv.extend([None] * (len(blocks) - len(res.kv)))  # layers after the last K/V: nothing the action reads
    return res
