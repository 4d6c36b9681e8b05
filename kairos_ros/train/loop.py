"""Training kairos-nano on synthetic episodes (data.py), in two stages.

1. Codec: the ConvCodec autoencoder learns to reconstruct composed frames (L1 + MSE); its
   per-channel latent statistics are then measured and stored with it (LatentNorm).
2. World-action model: with the codec frozen, KairosWAM is trained by flow matching in the
   official temporal mode, with the very forward the backend samples with (`joint_forward`):
   latents = [F clean history frames (t = 0) ; P noisy future frames], the noisy action chunk
   beside them. Loss = MSE of the video velocity on the future tokens + MSE of the action
   velocity (targets noise - x0). Noise levels: u ~ U(0, 1) mapped by the same shifts the
   samplers use (video: sampler.video_shift, actions: 5). Because action tokens attend only the
   history video, the action half trains exactly what action mode (encode_history +
   action_velocity) computes. The chunk is learnt as offsets from the robot state at the
   observation (`relative`, the checkpoint's kairos.action_reference = "state"): a first row
   that starts where the robot is matters to the adapter's start-jump gate, and an absolute
   chunk must reproduce the state through one proprio token. The state is z-scored globally.
   With state_velocity N the proprio token also gets the slot velocities fitted over the last N
   frames' states (what the backend fits over its observation history): one proprio token of
   positions says nothing about where the robot is heading, so without it the first rows of a
   chunk were no better than holding still. Offsets are z-scored per chunk row (`stepwise`,
   kairos.stats_scope) or with one scale per slot (`global`). On the demo bag, deterministic
   chunks (action_noise_scale 0), MAE at step 1 / over the chunk: positions only, global 0.032 /
   0.237; with velocities, global 0.030 / 0.191; with velocities, stepwise 0.015 / 0.199 (the
   bundled weights: the first rows are what the adapter's start-jump gate judges live).
The text encoder (HashTextEncoder) is trained with the model on the bags' instruction.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from kairos_ros.model.codecs import ConvCodec, HashTextEncoder
from kairos_ros.model.sampler import shift_levels, video_shift
from kairos_ros.model.wam import KairosWAM
from kairos_ros.train.data import Episode, sample_batch


@dataclass
class TrainConfig:
    history_frames: int = 4
    future_frames: int = 2
    horizon: int = 32
    step_period: float = 0.05
    batch: int = 8
    codec_steps: int = 600
    codec_lr: float = 2e-3
    steps: int = 3000
    lr: float = 3e-4
    warmup: int = 100
    video_weight: float = 1.0
    relative: bool = True  # actions as offsets from the state at the observation (kairos.action_reference)
    stepwise: bool = False  # actions z-scored per chunk row (kairos.stats_scope)
    state_velocity: int = 0  # N >= 2: proprio = state + velocity fitted over N frames (kairos.state_velocity)
    seed: int = 0
    log_every: int = 50


def to_pixels(frames: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float() / 127.5 - 1.0
    return x.movedim(-1, -3)


def _lr(step: int, cfg: TrainConfig, base: float, total: int) -> float:
    """Linear warm-up, then cosine decay to 10 %."""
    if step < cfg.warmup:
        return base * (step + 1) / cfg.warmup
    p = (step - cfg.warmup) / max(1, total - cfg.warmup)
    return base * (0.1 + 0.45 * (1 + np.cos(np.pi * min(p, 1.0))))


def train_codec(episodes: list[Episode], cfg: TrainConfig, log=print) -> ConvCodec:
    """Stage 1: returns the trained codec with its latent statistics set."""
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    codec = ConvCodec()
    opt = torch.optim.AdamW(codec.parameters(), lr=cfg.codec_lr, weight_decay=0.0)
    frames = [ep.frames for ep in episodes]
    for step in range(cfg.codec_steps):
        pick = [frames[int(rng.integers(len(frames)))] for _ in range(cfg.batch * 2)]
        x = to_pixels(np.stack([f[int(rng.integers(len(f)))] for f in pick]))
        for group in opt.param_groups:
            group["lr"] = _lr(step, cfg, cfg.codec_lr, cfg.codec_steps)
        z = codec.encoder(x)
        y = codec.decoder(z)
        loss = (y - x).abs().mean() + ((y - x) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % cfg.log_every == 0 or step == cfg.codec_steps - 1:
            log(f"codec step {step:5d}  loss {loss.item():.4f}")
    del gen
    with torch.no_grad():  # per-channel statistics of the raw latents, over a sample of frames
        sample = np.concatenate([f[rng.integers(len(f), size=64)] for f in frames])
        z = torch.cat([codec.encoder(to_pixels(sample[i:i + 64])) for i in range(0, len(sample), 64)])
        mean, std = z.mean(dim=(0, 2, 3)), z.std(dim=(0, 2, 3)).clamp_min(1e-4)
    trained = ConvCodec(codec.channels, codec.width, mean.tolist(), std.tolist())
    trained.load_state_dict(codec.state_dict())
    return trained.eval()


def encode_episodes(codec: ConvCodec, episodes: list[Episode]) -> list[torch.Tensor]:
    """Normalised latents of every frame, per episode: (N, C, H/8, W/8)."""
    out = []
    with torch.no_grad():
        for ep in episodes:
            parts = [codec.encode(to_pixels(ep.frames[i:i + 64]))[:, :, 0] for i in range(0, len(ep.frames), 64)]
            out.append(torch.cat(parts))
    return out


class _Latents:
    """Batches of latent windows, drawn like data.sample_batch but from the encoded frames."""

    def __init__(self, episodes, latents, stats, cfg: TrainConfig):
        self.episodes, self.latents, self.cfg = episodes, latents, cfg
        scope = {"state": "global", "action": "stepwise" if cfg.stepwise else "global"}
        self.norm = {w: (np.asarray(stats[f"{w}/default/{scope[w]}_mean"], np.float32),
                         np.asarray(stats[f"{w}/default/{scope[w]}_std"], np.float32) + 1e-8) for w in scope}

    def batch(self, rng):
        cfg = self.cfg
        b = sample_batch(self.episodes, rng, cfg.batch, cfg.history_frames, cfg.horizon, cfg.step_period,
                         future_frames=0, with_frames=False, state_velocity=cfg.state_velocity)
        lat = torch.stack([self.latents[e][n - cfg.history_frames + 1:n + 1 + cfg.future_frames]
                           for e, n in zip(b.episode, b.index)])  # (B, F + P, C, h, w)
        def z(v, which):  # z-score clamped to +-5, as core.action_space.Normalizer
            mean, std = self.norm[which]
            return torch.from_numpy(np.clip((v - mean) / std, -5, 5).astype(np.float32))

        actions = b.actions - b.state[:, None] if cfg.relative else b.actions
        proprio = np.concatenate([b.state, b.velocity], axis=1) if cfg.state_velocity else b.state
        return lat.movedim(1, 2), z(proprio, "state"), z(actions, "action")


def train_wam(model: KairosWAM, text: HashTextEncoder, episodes, latents, stats, instruction: str,
              cfg: TrainConfig, log=print) -> list[float]:
    """Stage 2 (in place). Returns the loss curve (one value per logged step)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    data = _Latents(episodes, latents, stats, cfg)
    params = list(model.parameters()) + list(text.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    fh, fp = cfg.history_frames, cfg.future_frames
    per_frame = None
    curve, start = [], time.perf_counter()
    model.train()
    for step in range(cfg.steps):
        lat, state, actions = data.batch(rng)  # (B, C, F+P, h, w), (B, D), (B, A, D)
        b = lat.shape[0]
        if per_frame is None:
            ph, pw = model.cfg.video.patch[1:]
            per_frame = (lat.shape[-2] // ph) * (lat.shape[-1] // pw)
            v_shift = video_shift(per_frame, fh + fp)
        sig_v = shift_levels(torch.rand(b, dtype=torch.float64), v_shift).float()  # (B,)
        sig_a = shift_levels(torch.rand(b, dtype=torch.float64), 5.0).float()
        noise_v = torch.randn_like(lat[:, :, fh:])
        x = lat.clone()
        x[:, :, fh:] = (1 - sig_v[:, None, None, None, None]) * lat[:, :, fh:] + sig_v[:, None, None, None, None] * noise_v
        t_tok = torch.zeros(b, (fh + fp) * per_frame)
        t_tok[:, fh * per_frame:] = sig_v[:, None] * 1000.0
        noise_a = torch.randn_like(actions)
        xa = (1 - sig_a[:, None, None]) * actions + sig_a[:, None, None] * noise_a
        words = text.encode(instruction).expand(b, -1, -1)
        ctx, cm = model.context(words, state)
        out = model.joint_forward(x, t_tok, fh, xa, sig_a * 1000.0, ctx, cm)
        loss_v = ((out["pred_video"][:, :, fh:] - (noise_v - lat[:, :, fh:])) ** 2).mean() if fp else x.new_zeros(())
        loss_a = ((out["pred_action"] - (noise_a - actions)) ** 2).mean()
        loss = loss_a + cfg.video_weight * loss_v
        for group in opt.param_groups:
            group["lr"] = _lr(step, cfg, cfg.lr, cfg.steps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            curve.append(float(loss.item()))
            log(f"wam step {step:5d}  action {loss_a.item():.4f}  video {loss_v.item():.4f}  "
                f"{(time.perf_counter() - start) / (step + 1):.2f} s/step")
    model.eval()
    text.eval()
    return curve
