"""Predicted future frames: flow-matching sampling of future video latents after the history.

Official temporal mode (`sample_official`): the released joint video+action loop. The latents are
[history frames (t = 0, re-imposed after every step) ; noisy future frames], and each step runs
`KairosWAM.joint_forward` once, giving the video velocity of every future token and (with
actions) the action velocity; video follows the sequence-length shift (`sampler.video_shift`),
actions the shift-5 schedule, over the same number of steps. With the distilled video schedule
(4 fixed levels, x0 and re-noise) the video is sampled alone (`with_action=False`).

Streaming temporal mode (`sample_streaming`): history frames attend only the past, so future
frames are generated the same way, one latent frame at a time: each is denoised through
`stream_step(..., commit=False)` on a snapshot of the world state, then absorbed (clean) into the
snapshot so the next frame attends it. The caller's world state is never changed.

A fact of the architecture, used by callers: video tokens never attend action tokens, and action
tokens attend only the history video, so the sampled video does not depend on the actions (and the
joint loop's actions equal action-mode actions drawn from the same noise).
"""
from __future__ import annotations

from typing import Callable

import torch

from kairos_ros.model.sampler import advance, distilled_sigmas, gaussian, shifted_sigmas, video_shift

SCHEDULES = ("euler", "distilled")


def video_sigmas(schedule: str, steps: int, tokens_per_frame: int, latent_frames: int) -> list[float]:
    """Noise levels from 1 (or the first distilled level) down to 0."""
    if schedule == "euler":
        return shifted_sigmas(steps, video_shift(tokens_per_frame, latent_frames)).tolist()
    if schedule == "distilled":
        return distilled_sigmas().tolist()
    raise ValueError(f"unknown video schedule '{schedule}' (one of {list(SCHEDULES)})")


def _noise(shape, generator, device) -> torch.Tensor:
    return gaussian(shape, generator).to(device)


def noise_shapes(schedule: str, steps: int, frame_shape, future_frames: int, streaming: bool) -> list[tuple]:
    """The shapes, in order, of the noise sample_official / sample_streaming (video only) draw
    from their generator: the starting noise, then the distilled schedule's re-noising at every
    level but the last. frame_shape = (B, C, H, W) of one latent frame. For a NoiseQueue."""
    b, c, h, w = frame_shape
    levels = len(distilled_sigmas()) - 1 if schedule == "distilled" else steps
    fresh = levels - 1 if schedule == "distilled" else 0
    one = (b, c, 1 if streaming else future_frames, h, w)
    return [one] * ((1 + fresh) * (future_frames if streaming else 1))


def sample_official(model, history: torch.Tensor, context, ctx_mask, future_frames: int, steps: int,
                    generator: torch.Generator | None = None, schedule: str = "euler", horizon: int = 0,
                    action_noise: torch.Tensor | None = None, stop: Callable[[], bool] | None = None):
    """history (B, C, Fh, H, W) clean latents -> (future latents (B, C, future_frames, H, W) float32,
    actions (B, horizon, action_dim) float32 normalised, or None when horizon is 0 or the schedule
    is distilled); (None, None) when `stop()` turned true between steps (abandoned)."""
    if future_frames < 1:
        raise ValueError(f"future_frames = {future_frames} must be >= 1")
    b, c, fh, h, w = history.shape
    pt, ph, pw = model.cfg.video.patch
    per_frame = (h // ph) * (w // pw)
    with_action = horizon > 0 and schedule == "euler"
    sig_v = video_sigmas(schedule, steps, per_frame, fh + future_frames)
    sig_a = shifted_sigmas(len(sig_v) - 1, 5.0).tolist()
    x = _noise((b, c, future_frames, h, w), generator, history.device)
    a = None
    if with_action:
        a = _noise((b, horizon, model.cfg.action.action_dim), generator, history.device) if action_noise is None \
            else action_noise.to(device=history.device, dtype=torch.float32)
    nh = fh * per_frame // pt  # history tokens (temporal patch 1)
    with torch.inference_mode():
        for i in range(len(sig_v) - 1):
            if stop is not None and stop():
                return None, None
            steps_tok = torch.zeros(b, (fh + future_frames) * per_frame // pt, device=history.device)
            steps_tok[:, nh:] = sig_v[i] * 1000.0
            out = model.joint_forward(torch.cat([history.to(x.dtype), x], dim=2), steps_tok, fh, a,
                                      torch.full((b,), sig_a[i] * 1000.0, device=history.device), context, ctx_mask,
                                      with_action=with_action)
            v = out["pred_video"][:, :, fh:].float()
            x = advance(x, v, sig_v[i], sig_v[i + 1], schedule, generator)
            if with_action:
                a = a + (sig_a[i + 1] - sig_a[i]) * out["pred_action"].float()
    return x, a


def sample_streaming(model, state, frame_shape, context, ctx_mask, future_frames: int, steps: int,
                     generator: torch.Generator | None = None, schedule: str = "euler",
                     stop: Callable[[], bool] | None = None) -> torch.Tensor | None:
    """Future latents (B, C, future_frames, H, W) float32 after the frames absorbed in `state` (a
    WorldState, left unchanged). frame_shape = (B, C, H, W) of one latent frame. None when
    `stop()` turned true between steps (abandoned)."""
    if future_frames < 1:
        raise ValueError(f"future_frames = {future_frames} must be >= 1")
    if state.frames == 0:
        raise ValueError("the world state holds no frame yet: nothing to predict from")
    b, c, h, w = frame_shape
    ph, pw = model.cfg.video.patch[1:]
    device = context.device
    sig = video_sigmas(schedule, steps, (h // ph) * (w // pw), 1 + future_frames)
    snapshot, frames = state.clone(), []
    with torch.inference_mode():
        for j in range(future_frames):
            x = _noise((b, c, 1, h, w), generator, device)
            for i in range(len(sig) - 1):
                if stop is not None and stop():
                    return None
                cache, outs = model.stream_step(x, context, ctx_mask, snapshot, t=sig[i] * 1000.0, commit=False)
                pre = cache.video_pre
                v = model.video_dit.unpatchify(outs[-1], pre.t, pre.grid).float()
                x = advance(x, v, sig[i], sig[i + 1], schedule, generator)
            frames.append(x)
            if j + 1 < future_frames:  # the next frame attends this one, as a clean observation
                model.stream_step(x, context, ctx_mask, snapshot, t=0.0, commit=True)
    return torch.cat(frames, dim=2)


def to_rgb8(frames: torch.Tensor) -> list:
    """(B=1, F, 3, H, W) in [-1, 1] -> F numpy (H, W, 3) uint8 frames."""
    x = ((frames[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return [f.permute(1, 2, 0).cpu().numpy() for f in x]
