"""The world-action model (Mixture-of-Transformers): video DiT + action expert, run layer by layer.

Forward modes (B batch, F latent frames, P tokens per frame, N = F P video tokens, A action tokens):
- action mode: `encode_history` runs the video DiT once at t = 0 over the history frames and
  returns a VideoCache with each SWA/DSWA layer's K (after RMSNorm and RoPE) and V; then
  `action_velocity(noisy_action, t, cache, context)` as often as the sampler needs. Action
  tokens attend [history video K/V ; action K/V] at SWA/DSWA layers and only themselves at
  GATED layers. The context-dependent parts are computed once per cache and context.
- joint mode: `joint_forward` denoises video and actions in one pass. Video never attends
  actions, so the video half is the video-only windowed attention and the action half attends
  [history video ; actions]: exactly action mode over the history tokens' K/V, so it runs the
  action expert's one implementation (action_path.py); no dense mixed mask (masks.py has the masks).
- video mode: `video_forward`.
- streaming mode: `stream_step` absorbs one frame into a WorldState (see world_state.py).
Every video forward runs the same layers (video_stack.run_layers); only where the keys come from
differs (the frames' own, or the world state's kept K/V plus the new frame's).
State-dict keys are exactly the official ones (`video_dit.*`, `action_dit.*`), parameters only.
"""
from __future__ import annotations

import torch
from torch import nn

from kairos_ros.model import action_path, world_state
from kairos_ros.model.config import KairosConfig
from kairos_ros.model.experts import ActionExpert, Prepared, VideoDiT
from kairos_ros.model.video_stack import VideoCache, run_layers

__all__ = ["KairosWAM", "VideoCache"]  # VideoCache lives in video_stack.py; re-exported for callers


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

    # -- video stack (video_stack.run_layers: one layer implementation for every forward) -------
    def encode_history(self, latents, context, ctx_mask=None, *, causal: bool = False, frame_offset: int = 0,
                       kv_only: bool = False):
        """Video DiT at t = 0 over history latents (B, C, F, H, W): every frame is history, so the
        windows are bidirectional (official) unless causal (the streaming reference).
        Returns (VideoCache, per-layer outputs [(B, N, D)]); kv_only computes only what the cache
        holds (the outputs list is then partial) -- the same cache, bit for bit."""
        b = latents.shape[0]
        pre = self.video_dit.embed(latents, torch.zeros(b, device=latents.device), context, frame_offset)
        f, hg, wg = pre.grid
        res = run_layers(self.video_dit, pre, ctx_mask, history=f, causal=causal, kv_only=kv_only)
        return VideoCache(res.kv, f, hg * wg, pre), res.outs

    def stream_step(self, frame_latents, context, ctx_mask, state, t: float = 0.0, commit: bool = True):
        """Streaming mode: absorb one latent frame (B, C, 1, H, W) into `state` (a WorldState).
        Returns (VideoCache for the action expert, per-layer outputs of the frame)."""
        return world_state.stream_step(self, frame_latents, context, ctx_mask, state, t, commit)

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
        per_frame = pre_v.grid[1] * pre_v.grid[2]
        video = run_layers(self.video_dit, pre_v, ctx_mask, history=history_frames)
        pred_video = self.video_dit.unpatchify(video.outs[-1], pre_v.t, pre_v.grid)
        pred_action, a_outs, pre_a = None, [], None
        if with_action:  # action rows of the mixed mask: [history video ; actions], i.e. action mode
            nh = history_frames * per_frame  # history video tokens
            cache = VideoCache([None if kv is None else (kv[0][:, :nh], kv[1][:, :nh]) for kv in video.kv],
                               history_frames, per_frame)
            action_t = torch.as_tensor(action_t, dtype=torch.float32, device=latents.device)
            pred_action, a_outs, pre_a = self.action_velocity(noisy_action, action_t, cache, context, ctx_mask,
                                                              return_layers=True)
        return {"pred_video": pred_video, "pred_action": pred_action, "video_layers": video.outs,
                "action_layers": a_outs, "video_pre": pre_v, "action_pre": pre_a}

    def video_forward(self, latents, timesteps, history_frames: int, context, ctx_mask=None) -> torch.Tensor:
        """Video-only denoising (video mode, or the unconditional branch): (B, C, F, H, W)."""
        return self.joint_forward(latents, timesteps, history_frames, None, None, context, ctx_mask,
                                  with_action=False)["pred_video"]
