"""The world-action model (Mixture-of-Transformers): video DiT + action expert, run layer by layer.

Modes (B = batch, F latent frames, P tokens per frame, A action tokens):
- action mode: `encode_history` runs the video DiT once at t = 0 on the history frames and caches
  each SWA/DSWA layer's K (after RMSNorm and RoPE) and V; `action_velocity` then runs the action
  expert as often as the sampler needs, attending that cache (not the GATED layers').
- joint mode: `joint_forward` denoises video and actions together; video never attends actions.
- video mode: `video_forward`.
State-dict keys are exactly the official ones (`video_dit.*`, `action_dit.*`); RoPE tables are
computed on the fly, so the state dict holds parameters only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from kairos_ros.model import masks
from kairos_ros.model.blocks import Block
from kairos_ros.model.config import KairosConfig
from kairos_ros.model.layers import attention, layer_norm, mlp_embedding, rope_angles, sinusoid, video_rope_angles
from kairos_ros.ops.frame_attention import frame_window_attention


class VideoHead(nn.Module):
    def __init__(self, dim: int, out: int):
        super().__init__()
        self.head = nn.Linear(dim, out)
        self.modulation = nn.Parameter(torch.zeros(1, 2, dim))


class VideoDiT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.patch_embedding = nn.Conv3d(cfg.in_channels, d, kernel_size=cfg.patch, stride=cfg.patch)
        self.text_embedding = mlp_embedding(cfg.text_dim, d)
        self.time_embedding = mlp_embedding(cfg.freq_dim, d)
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        gdn = dict(heads=cfg.num_heads, head_k=cfg.gdn_head_dim, expand_v=cfg.gdn_expand_v, conv=cfg.gdn_conv,
                   eps=cfg.eps)
        self.blocks = nn.ModuleList(Block(kind, d, cfg.attn_dim, cfg.num_heads, cfg.ffn_dim, cfg.eps, gdn)
                                    for kind in cfg.layer_types())
        p = cfg.patch
        self.head = VideoHead(d, cfg.out_channels * p[0] * p[1] * p[2])


class ActionExpert(nn.Module):
    def __init__(self, cfg, video_cfg):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.action_encoder = nn.Linear(cfg.action_dim, d)
        self.proprio_encoder = mlp_embedding(cfg.state_dim, video_cfg.text_dim)
        self.proprio_encoder[0] = nn.Linear(cfg.state_dim, video_cfg.text_dim)
        self.text_embedding = mlp_embedding(video_cfg.text_dim, d)
        self.time_embedding = mlp_embedding(cfg.freq_dim, d)
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList(Block("FA", d, video_cfg.attn_dim, video_cfg.num_heads, cfg.ffn_dim, cfg.eps)
                                    for _ in range(cfg.num_layers))
        self.head = nn.Linear(d, cfg.action_dim)


@dataclass
class Prepared:
    """Per-expert inputs after the embeddings (kept for inspection and parity checks)."""

    x: torch.Tensor
    t: torch.Tensor
    t_mod: torch.Tensor
    context: torch.Tensor
    angles: torch.Tensor


class KairosWAM(nn.Module):
    def __init__(self, cfg: KairosConfig):
        super().__init__()
        self.cfg = cfg
        self.video_dit = VideoDiT(cfg.video)
        self.action_dit = ActionExpert(cfg.action, cfg.video)

    # -- inputs -------------------------------------------------------------------------------
    def context(self, text: torch.Tensor, robot_state: torch.Tensor, text_mask: torch.Tensor | None = None):
        """[text tokens ; one proprio token] (B, L+1, text_dim) and its mask (B, L+1) bool."""
        proprio = self.action_dit.proprio_encoder(robot_state)[:, None]
        ctx = torch.cat([text, proprio], dim=1)
        b, n = text.shape[:2]
        tm = torch.ones(b, n, dtype=torch.bool) if text_mask is None else text_mask.bool()
        return ctx, torch.cat([tm, torch.ones(b, 1, dtype=torch.bool)], dim=1)

    def prepare_video(self, latents: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor,
                      frame_offset: int = 0) -> Prepared:
        """latents (B, C, F, H, W); timesteps (B, N) per token (history tokens 0)."""
        v = self.video_dit
        x = v.patch_embedding(latents)  # (B, D, F, Hg, Wg)
        b, _, f, hg, wg = x.shape
        x = x.flatten(2).transpose(1, 2)  # (B, N, D) frame-major, rows, columns
        t = v.time_embedding(sinusoid(timesteps, self.cfg.video.freq_dim))
        t_mod = v.time_projection(t).unflatten(-1, (6, -1))
        grid = torch.stack(torch.meshgrid(torch.arange(f) + frame_offset, torch.arange(hg), torch.arange(wg),
                                          indexing="ij"), dim=-1).reshape(-1, 3)
        cv = self.cfg.video
        angles = video_rope_angles(grid[:, 0], grid[:, 1], grid[:, 2], cv.rope_split, cv.rope_theta)
        return Prepared(x, t, t_mod, v.text_embedding(context), angles)

    def prepare_action(self, noisy_action: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor) -> Prepared:
        a = self.action_dit
        t = a.time_embedding(sinusoid(timestep.reshape(-1), self.cfg.action.freq_dim))  # (B, Da)
        t_mod = a.time_projection(t).unflatten(-1, (6, -1))
        angles = rope_angles(torch.arange(noisy_action.shape[1]), self.cfg.video.head_dim)
        return Prepared(a.action_encoder(noisy_action), t, t_mod, a.text_embedding(context), angles)

    # -- video stack --------------------------------------------------------------------------
    def _windowed(self, kind, q, k, v, per_frame, history, causal=False):
        """Frame-windowed self-attention of video tokens through ops (cost linear in frames)."""
        cv = self.cfg.video
        out = frame_window_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                     tokens_per_frame=per_frame, window=cv.window,
                                     dilation=cv.dilation if kind == "DSWA" else 1, num_history_frames=history,
                                     causal=causal)
        return out.transpose(1, 2)

    def _video_layer(self, i, x, pre, ctx_mask, per_frame, history, causal=False, layer_state=None):
        """One video layer; returns (x, (k, v) or None, new GDN state)."""
        blk = self.video_dit.blocks[i]
        c = blk.chunks(pre.t_mod)
        h = blk.modulated(x, c)
        if blk.kind == "GATED":
            out, state = blk.gated_delta(h, layer_state)
            return blk.finish(x, out, c, pre.context, ctx_mask), None, state
        q, k, v = blk.qkv(h, pre.angles)
        out = blk.self_attn.o(self._windowed(blk.kind, q, k, v, per_frame, history, causal).flatten(2))
        return blk.finish(x, out, c, pre.context, ctx_mask), (k.flatten(2), v.flatten(2)), None

    def encode_history(self, latents, context, ctx_mask, causal: bool = False):
        """Video DiT at t = 0 over history frames. Returns (per-layer K/V cache, per-layer outputs)."""
        b, _, f = latents.shape[:3]
        pre = self.prepare_video(latents, torch.zeros(b, self._tokens(latents)), context)
        per_frame = pre.x.shape[1] // f
        cache, outs, x = [], [], pre.x
        for i in range(len(self.video_dit.blocks)):
            x, kv, _ = self._video_layer(i, x, pre, ctx_mask, per_frame, f, causal)
            cache.append(kv)
            outs.append(x)
        return {"kv": cache, "history_tokens": pre.x.shape[1], "video_pre": pre}, outs

    def _tokens(self, latents) -> int:
        p = self.cfg.video.patch
        return (latents.shape[2] // p[0]) * (latents.shape[3] // p[1]) * (latents.shape[4] // p[2])

    # -- streaming ----------------------------------------------------------------------------
    def stream_step(self, frame_latents, context, ctx_mask, state):
        """Absorb one latent frame (B, C, 1, H, W) into `state` (a WorldState). Returns the K/V
        cache the action expert attends for this step, and the per-layer outputs of the frame."""
        from kairos_ros.model.world_state import append_kv, keep_frames

        n = state.frames
        b = frame_latents.shape[0]
        pre = self.prepare_video(frame_latents, torch.zeros(b, self._tokens(frame_latents)), context, frame_offset=n)
        per_frame = pre.x.shape[1]
        cv = self.cfg.video
        x, cache, outs = pre.x, [], []
        for i, blk in enumerate(self.video_dit.blocks):
            c = blk.chunks(pre.t_mod)
            h = blk.modulated(x, c)
            if blk.kind == "GATED":
                out, state.gdn[i] = blk.gated_delta(h, state.gdn.get(i))
                cache.append(None)
            else:
                q, k, v = blk.qkv(h, pre.angles)
                keep = keep_frames(blk.kind, cv.window, cv.dilation)
                start, kk, vv = append_kv(state, i, n, k.flatten(2), v.flatten(2), per_frame, keep)
                heads = blk.heads
                a = frame_window_attention(q.transpose(1, 2), kk.view(b, -1, heads, q.shape[-1]).transpose(1, 2),
                                           vv.view(b, -1, heads, q.shape[-1]).transpose(1, 2),
                                           tokens_per_frame=per_frame, window=cv.window,
                                           dilation=cv.dilation if blk.kind == "DSWA" else 1, q_start_frame=n,
                                           k_start_frame=start, causal=True).transpose(1, 2)
                out = blk.self_attn.o(a.flatten(2))
                # The action expert sees the frames this frame attends (its causal window).
                fk = torch.arange(start, n + 1)
                d = cv.dilation if blk.kind == "DSWA" else 1
                visible = ((n - fk) % d == 0).repeat_interleave(per_frame)
                cache.append((kk[:, visible], vv[:, visible]))
            x = blk.finish(x, out, c, pre.context, ctx_mask)
            outs.append(x)
        state.frames = n + 1
        tokens = cache[0][0].shape[1] if cache and cache[0] is not None else per_frame
        return {"kv": cache, "history_tokens": None, "video_pre": pre, "tokens": tokens}, outs

    # -- action expert ------------------------------------------------------------------------
    def action_velocity(self, noisy_action, timestep, cache, context, ctx_mask, return_layers: bool = False):
        """Flow-matching prediction for the action chunk, attending the cached video K/V."""
        pre = self.prepare_action(noisy_action, timestep, context)
        x, outs = pre.x, []
        n_act = x.shape[1]
        for i, blk in enumerate(self.action_dit.blocks):
            c = blk.chunks(pre.t_mod)
            q, k, v = blk.qkv(blk.modulated(x, c), pre.angles)
            kv = cache["kv"][i]
            if kv is None:  # GATED video layer: the action expert attends itself only
                a = attention(q, k, v, None)
            else:
                b, nv = kv[0].shape[:2]
                vk, vv = kv[0].view(b, nv, blk.heads, -1), kv[1].view(b, nv, blk.heads, -1)
                history = nv if cache["history_tokens"] is None else cache["history_tokens"]
                mask = masks.action_with_cache_mask(nv, history, n_act)
                a = attention(q, torch.cat([vk, k], 1), torch.cat([vv, v], 1), mask)
            x = blk.finish(x, blk.self_attn.o(a.flatten(2)), c, pre.context, ctx_mask)
            outs.append(x)
        pred = self.action_dit.head(x)
        return (pred, outs, pre) if return_layers else pred

    # -- joint and video-only forwards --------------------------------------------------------
    def video_head(self, x, t, grid):
        v = self.video_dit
        shift, scale = (v.head.modulation[0, j] + t for j in (0, 1))
        y = v.head.head(layer_norm(x, self.cfg.video.eps) * (1 + scale) + shift)
        return self._unpatchify(y, grid)

    def _unpatchify(self, y, grid):
        b = y.shape[0]
        f, hg, wg = grid
        pf, ph, pw = self.cfg.video.patch
        c = self.cfg.video.out_channels
        y = y.view(b, f, hg, wg, pf, ph, pw, c)  # features ordered (frame, row, column offsets, channel)
        return y.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(b, c, f * pf, hg * ph, wg * pw)

    def joint_forward(self, latents, timesteps, history_frames, noisy_action, action_t, context, ctx_mask,
                      with_action: bool = True):
        """Video (and action) denoising in one pass. timesteps (B, N) per video token."""
        cv = self.cfg.video
        pre_v = self.prepare_video(latents, timesteps, context)
        b, _, f, h, w = latents.shape
        grid = (f // cv.patch[0], h // cv.patch[1], w // cv.patch[2])
        per_frame = grid[1] * grid[2]
        nv = pre_v.x.shape[1]
        xv = pre_v.x
        pre_a = self.prepare_action(noisy_action, action_t, context) if with_action else None
        xa = pre_a.x if with_action else None
        v_outs, a_outs = [], []
        for i, vblk in enumerate(self.video_dit.blocks):
            cvm = vblk.chunks(pre_v.t_mod)
            hv = vblk.modulated(xv, cvm)
            if with_action:
                ablk = self.action_dit.blocks[i]
                ca = ablk.chunks(pre_a.t_mod)
                qa, ka, va = ablk.qkv(ablk.modulated(xa, ca), pre_a.angles)
            if vblk.kind == "GATED":
                out_v, _ = vblk.gated_delta(hv)
                if with_action:
                    out_a = attention(qa, ka, va, None)
            else:
                qv, kv, vv = vblk.qkv(hv, pre_v.angles)
                if with_action:
                    mask = masks.mixed_mask(f, per_frame, xa.shape[1], vblk.kind, cv.window, cv.dilation, history_frames)
                    o = attention(torch.cat([qv, qa], 1), torch.cat([kv, ka], 1), torch.cat([vv, va], 1), mask)
                    out_v, out_a = o[:, :nv], o[:, nv:]
                else:
                    out_v = self._windowed(vblk.kind, qv, kv, vv, per_frame, history_frames)
                out_v = vblk.self_attn.o(out_v.flatten(2))
            xv = vblk.finish(xv, out_v, cvm, pre_v.context, ctx_mask)
            v_outs.append(xv)
            if with_action:
                xa = ablk.finish(xa, ablk.self_attn.o(out_a.flatten(2)), ca, pre_a.context, ctx_mask)
                a_outs.append(xa)
        pred_video = self.video_head(xv, pre_v.t, grid)
        pred_action = self.action_dit.head(xa) if with_action else None
        return {"pred_video": pred_video, "pred_action": pred_action, "video_layers": v_outs,
                "action_layers": a_outs, "video_pre": pre_v, "action_pre": pre_a}

    def video_forward(self, latents, timesteps, history_frames, context, ctx_mask):
        return self.joint_forward(latents, timesteps, history_frames, None, None, context, ctx_mask,
                                  with_action=False)["pred_video"]
