"""The world-action model (Mixture-of-Transformers): video DiT + action expert, run layer by layer.

Forward modes (B batch, F latent frames, P tokens per frame, N = F P video tokens, A action tokens):
- action mode: `encode_history` runs the video DiT once at t = 0 over the history frames and
  returns a VideoCache with each SWA/DSWA layer's K (after RMSNorm and RoPE) and V; then
  `action_velocity(noisy_action, t, cache, context)` as often as the sampler needs. Action
  tokens attend [history video K/V ; action K/V] at SWA/DSWA layers and only themselves at
  GATED layers. The context-dependent parts are computed once per cache and context.
- joint mode: `joint_forward` denoises video and actions in one pass. Video never attends
  actions, so the video half is the video-only windowed attention and the action half attends
  [history video ; actions]: two attentions, no dense mixed mask needed (masks.py has the masks).
- video mode: `video_forward`.
- streaming mode: `stream_step` absorbs one frame into a WorldState (see world_state.py).
State-dict keys are exactly the official ones (`video_dit.*`, `action_dit.*`), parameters only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from kairos_ros.model import action_path
from kairos_ros.model.config import KairosConfig
from kairos_ros.model.experts import ActionExpert, Prepared, VideoDiT
from kairos_ros.model.layers import attend, heads, merge_heads
from kairos_ros.ops.frame_attention import frame_window_attention


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


class KairosWAM(nn.Module):
    def __init__(self, cfg: KairosConfig):
        super().__init__()
        self.cfg = cfg
        self.video_dit = VideoDiT(cfg.video)
        self.action_dit = ActionExpert(cfg.action, cfg.video.text_dim)

    def context(self, text: torch.Tensor, robot_state: torch.Tensor, text_mask: torch.Tensor | None = None):
        """[text tokens ; one proprio token] (B, L+1, text_dim) and its mask (B, L+1) bool (True = valid).
        text (B, L, text_dim); robot_state (B, state_dim), normalised."""
        enc = self.action_dit.proprio_encoder
        proprio = enc(robot_state.to(enc[0].weight.dtype))[:, None]
        text = text.to(proprio.dtype)
        b, n = text.shape[:2]
        tm = text.new_ones(b, n, dtype=torch.bool) if text_mask is None else text_mask.bool()
        return torch.cat([text, proprio], dim=1), torch.cat([tm, tm.new_ones(b, 1)], dim=1)

    # -- video stack --------------------------------------------------------------------------
    def video_layer(self, i: int, x, pre: Prepared, ctx_kv, ctx_mask, history: int | None, causal: bool = False):
        """Video layer i over whole frames. Returns (x, (K, V) (B, N, W) or None, GDN state or None)."""
        blk = self.video_dit.blocks[i]
        c = blk.chunks(pre.t_mod)
        h = blk.modulated(x, c)
        if blk.kind == "GATED":
            out, state = blk.gated_delta(h)
            return blk.finish(x, out, c, ctx_kv, ctx_mask), None, state
        q, k, v = blk.qkv(h, pre.rope)  # (B, N, H, hd)
        cv = self.cfg.video
        a = frame_window_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                   tokens_per_frame=pre.grid[1] * pre.grid[2], window=cv.window,
                                   dilation=cv.dilation if blk.kind == "DSWA" else 1,
                                   num_history_frames=history, causal=causal)
        x = blk.finish(x, blk.self_attn.o(merge_heads(a)), c, ctx_kv, ctx_mask)
        return x, (k.flatten(2), v.flatten(2)), None

    def encode_history(self, latents, context, ctx_mask=None, *, causal: bool = False, frame_offset: int = 0):
        """Video DiT at t = 0 over history latents (B, C, F, H, W): every frame is history, so the
        windows are bidirectional (official) unless causal (the streaming reference).
        Returns (VideoCache, per-layer outputs [(B, N, D)])."""
        b = latents.shape[0]
        pre = self.video_dit.embed(latents, torch.zeros(b, device=latents.device), context, frame_offset)
        f, hg, wg = pre.grid
        cache, outs, x = [], [], pre.x
        for i, blk in enumerate(self.video_dit.blocks):
            x, kv, _ = self.video_layer(i, x, pre, blk.context_kv(pre.context), ctx_mask, f, causal)
            cache.append(kv)
            outs.append(x)
        return VideoCache(cache, f, hg * wg, pre), outs

    def stream_step(self, frame_latents, context, ctx_mask, state, t: float = 0.0, commit: bool = True):
        """Streaming mode: absorb one latent frame (B, C, 1, H, W) into `state` (a WorldState).
        Returns (VideoCache for the action expert, per-layer outputs of the frame)."""
        from kairos_ros.model.world_state import stream_step

        return stream_step(self, frame_latents, context, ctx_mask, state, t, commit)

    # -- action expert ------------------------------------------------------------------------
    def action_velocity(self, noisy_action, timestep, cache: VideoCache, context, ctx_mask=None,
                        return_layers: bool = False):
        """Flow-matching velocity for the action chunk (B, A, action_dim) at timestep (B,) or scalar,
        attending the cached history video K/V. Returns (B, A, action_dim) (or with the per-layer
        outputs and the action embeddings when return_layers)."""
        a = self.action_dit
        inp = action_path.prepare(self, cache, context, ctx_mask)
        rope = action_path.rope_factors(self, inp, noisy_action.shape[1], noisy_action.device)
        t, t_mod = a.embed_time(torch.as_tensor(timestep, dtype=torch.float32, device=noisy_action.device))
        tokens = a.action_encoder(noisy_action.to(a.action_encoder.weight.dtype))  # (B, A, Da); samplers keep fp32
        outs = action_path.action_layers(self, inp, tokens, t_mod, rope)
        pred = a.head(outs[-1])
        return (pred, outs, Prepared(tokens, t, t_mod, inp.ctx_emb, rope[0])) if return_layers else pred

    # -- joint and video-only forwards --------------------------------------------------------
    def joint_forward(self, latents, timesteps, history_frames: int, noisy_action, action_t, context,
                      ctx_mask=None, with_action: bool = True) -> dict:
        """Video (and action) denoising in one pass. latents (B, C, F, H, W) = history frames then
        noisy frames; timesteps (B,) or (B, N) per video token (0 on history tokens)."""
        pre_v = self.video_dit.embed(latents, timesteps, context)
        nh = history_frames * pre_v.grid[1] * pre_v.grid[2]  # history video tokens
        xv, xa, v_outs, a_outs = pre_v.x, None, [], []
        if with_action:
            action_t = torch.as_tensor(action_t, dtype=torch.float32, device=latents.device)
            pre_a = self.action_dit.embed(noisy_action, action_t, context)
            xa = pre_a.x
        for i, vblk in enumerate(self.video_dit.blocks):
            xv_next, kv, _ = self.video_layer(i, xv, pre_v, vblk.context_kv(pre_v.context), ctx_mask,
                                              history_frames)
            if with_action:
                ablk = self.action_dit.blocks[i]
                ca = ablk.chunks(pre_a.t_mod)
                q, k, v = (y.transpose(1, 2) for y in ablk.qkv(ablk.modulated(xa, ca), pre_a.rope))
                if kv is not None:  # action rows of the mixed mask: history video tokens + all actions
                    n_heads = ablk.heads
                    k = torch.cat([heads(kv[0][:, :nh], n_heads), k], 2)
                    v = torch.cat([heads(kv[1][:, :nh], n_heads), v], 2)
                out_a = ablk.self_attn.o(merge_heads(attend(q, k, v)))
                xa = ablk.finish(xa, out_a, ca, ablk.context_kv(pre_a.context), ctx_mask)
                a_outs.append(xa)
            xv = xv_next
            v_outs.append(xv)
        pred_video = self.video_dit.unpatchify(xv, pre_v.t, pre_v.grid)
        pred_action = self.action_dit.head(xa) if with_action else None
        return {"pred_video": pred_video, "pred_action": pred_action, "video_layers": v_outs,
                "action_layers": a_outs, "video_pre": pre_v, "action_pre": pre_a if with_action else None}

    def video_forward(self, latents, timesteps, history_frames: int, context, ctx_mask=None) -> torch.Tensor:
        """Video-only denoising (video mode, or the unconditional branch): (B, C, F, H, W)."""
        return self.joint_forward(latents, timesteps, history_frames, None, None, context, ctx_mask,
                                  with_action=False)["pred_video"]
