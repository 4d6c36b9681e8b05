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
import torch.distributed as dist

from kairos_ros.model.codecs import ConvCodec, HashTextEncoder
from kairos_ros.model.sampler import shift_levels, video_shift
from kairos_ros.model.wam import KairosWAM
from kairos_ros.train.data import Episode, sample_batch, window


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
    start_fraction: float = 0.0  # windows from an episode's start, history padded at rest (data.sample_batch)
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
    # a Python float: it lands in the optimiser state, which checkpoint.pt must hold without numpy
    # objects (torch.load(weights_only=True) refuses them, so --resume failed after the warm-up)
    return float(base * (0.1 + 0.45 * (1 + np.cos(np.pi * min(p, 1.0)))))


class Stopped(Exception):
    """Raised by train_codec / train_wam when the hook asks to stop (the hook saved the state)."""


class Parallel:
    """Data parallelism over torch.distributed: every rank draws the same global batch and noise
    (same seeds), computes its shard of the rows, and the gradients (each the rank's share of the
    loss: per-sample losses summed over its rows / the global batch) are summed over the ranks in
    one all-reduce, so a step equals the single-process step on the whole batch. world 1: no-op."""

    def __init__(self, rank: int = 0, world: int = 1, device: str = "cpu"):
        self.rank, self.world, self.device = rank, world, torch.device(device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's rows of a global batch of n (contiguous, sizes differing by at most one)."""
        base, extra = divmod(n, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def reduce(self, params, *values: torch.Tensor) -> list[float]:
        """Sum the gradients of `params` and the scalar `values` over the ranks (one all-reduce);
        returns the summed values."""
        if self.world == 1:
            return [float(v.detach()) for v in values]

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1).float() for g in grads] +
                         [v.detach().reshape(1).float().to(grads[0].device) for v in values])
        dist.all_reduce(flat)
        i = 0
        for p, g in zip(params, grads):
            n = g.numel()
            p.grad = flat[i:i + n].view_as(g).to(g.dtype)
            i += n
        return [float(x) for x in flat[i:].cpu()]

    def any(self, flag: bool) -> bool:
        if self.world == 1:
            return bool(flag)

        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t)
        return bool(t.item() > 0)

    def broadcast(self, module: torch.nn.Module) -> None:
        """Rank 0's parameters and buffers on every rank."""
        if self.world == 1:
            return

        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, 0)


def codec_step(codec: ConvCodec, opt, frames: list, rng: np.random.Generator, cfg: TrainConfig, step: int,
               par: Parallel) -> float:
    """One codec step on 2 * batch frames drawn with rng (this rank's shard of them). Returns the loss."""
    n = cfg.batch * 2
    pick = [frames[int(rng.integers(len(frames)))] for _ in range(n)]
    idx = [int(rng.integers(len(f))) for f in pick]
    rows = range(n)[par.shard(n)]
    x = to_pixels(np.stack([pick[i][idx[i]] for i in rows])).to(par.device)
    for group in opt.param_groups:
        group["lr"] = _lr(step, cfg, cfg.codec_lr, cfg.codec_steps)
    y = codec.decoder(codec.encoder(x))
    d = y - x
    loss = (d.abs().mean(dim=(1, 2, 3)) + (d * d).mean(dim=(1, 2, 3))).sum() / n  # this rank's share of the mean
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = list(codec.parameters())
    (total,) = par.reduce(params, loss)
    opt.step()
    return total


def codec_statistics(codec: ConvCodec, episodes, rng: np.random.Generator, device="cpu") -> ConvCodec:
    """The codec with its per-channel latent statistics measured over a sample of frames."""
    frames = [ep.frames for ep in episodes]
    with torch.no_grad():  # per-channel statistics of the raw latents, over a sample of frames
        sample = np.concatenate([f[rng.integers(len(f), size=64)] for f in frames])
        z = torch.cat([codec.encoder(to_pixels(sample[i:i + 64]).to(device)).cpu() for i in range(0, len(sample), 64)])
        mean, std = z.mean(dim=(0, 2, 3)), z.std(dim=(0, 2, 3)).clamp_min(1e-4)
    trained = ConvCodec(codec.channels, codec.width, mean.tolist(), std.tolist())
    trained.load_state_dict({k: v.cpu() for k, v in codec.state_dict().items()})
    return trained.eval()


def train_codec(episodes: list[Episode], cfg: TrainConfig, log=print, par: Parallel | None = None,
                resume: dict | None = None, hook=None) -> ConvCodec:
    """Stage 1: returns the trained codec (on the CPU) with its latent statistics set.

    resume: a state from hook's `state()` (codec, optimiser, rng, step) to continue from.
    hook(step, loss, state) after every step (state() gives the resumable state); a true return
    value stops: Stopped is raised."""
    par = par or Parallel()
    rng = np.random.default_rng(cfg.seed)
    codec = ConvCodec().to(par.device)
    par.broadcast(codec)
    opt = torch.optim.AdamW(codec.parameters(), lr=cfg.codec_lr, weight_decay=0.0)
    first = 0
    if resume is not None:
        codec.load_state_dict(resume["codec"])
        opt.load_state_dict(resume["opt"])
        rng.bit_generator.state = resume["rng"]
        first = int(resume["step"])
    frames = [ep.frames for ep in episodes]

    def state(step):
        return lambda: {"codec": {k: v.detach().cpu().clone() for k, v in codec.state_dict().items()},
                        "opt": opt.state_dict(), "rng": rng.bit_generator.state, "step": step}

    for step in range(first, cfg.codec_steps):
        loss = codec_step(codec, opt, frames, rng, cfg, step, par)
        if step % cfg.log_every == 0 or step == cfg.codec_steps - 1:
            log(f"codec step {step:5d}  loss {loss:.4f}")
        if hook is not None and hook(step + 1, {"loss": loss, "lr": opt.param_groups[0]["lr"]}, state(step + 1)):
            raise Stopped(step + 1)
    return codec_statistics(codec, episodes, rng, par.device)


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

    def batch(self, rng, rows: slice | None = None):
        """The global batch's windows are drawn with rng (every rank draws the same); only `rows`
        of them are returned: latents (b, C, F+P, h, w), z-scored proprio (b, S), actions (b, A, D),
        and the episode index of each row."""
        cfg = self.cfg
        b = sample_batch(self.episodes, rng, cfg.batch, cfg.history_frames, cfg.horizon, cfg.step_period,
                         future_frames=0, with_frames=False, state_velocity=cfg.state_velocity,
                         start_fraction=cfg.start_fraction)
        rows = rows or slice(None)
        eps, idx = b.episode[rows], b.index[rows]
        lat = torch.stack([torch.cat([window(self.latents[e], n, cfg.history_frames),
                                      self.latents[e][n + 1:n + 1 + cfg.future_frames]])
                           for e, n in zip(eps, idx)])  # (b, F + P, C, h, w)

        def z(v, which):  # z-score clamped to +-5, as core.action_space.Normalizer
            mean, std = self.norm[which]
            return torch.from_numpy(np.clip((v - mean) / std, -5, 5).astype(np.float32))

        actions = b.actions - b.state[:, None] if cfg.relative else b.actions
        proprio = np.concatenate([b.state, b.velocity], axis=1) if cfg.state_velocity else b.state
        return lat.movedim(1, 2), z(proprio[rows], "state"), z(actions[rows], "action"), eps


def instruction_tokens(text: HashTextEncoder, instructions: list[str]):
    """Text tokens (b, L, D) and mask (b, L) (None when every row has the same instruction)."""
    if len(set(instructions)) == 1:
        return text.encode(instructions[0]).expand(len(instructions), -1, -1), None
    enc = {t: text.encode(t)[0] for t in set(instructions)}
    width = max(e.shape[0] for e in enc.values())
    words = torch.zeros(len(instructions), width, text.text_dim, dtype=next(iter(enc.values())).dtype,
                        device=next(iter(enc.values())).device)
    mask = torch.zeros(len(instructions), width, dtype=torch.bool, device=words.device)
    for i, t in enumerate(instructions):
        words[i, :enc[t].shape[0]] = enc[t]
        mask[i, :enc[t].shape[0]] = True
    return words, mask


def wam_step(model: KairosWAM, text: HashTextEncoder, opt, data: _Latents, rng: np.random.Generator,
             instructions: list[str], cfg: TrainConfig, step: int, par: Parallel, v_shift: float,
             per_frame: int) -> dict:
    """One flow-matching step on the global batch (this rank's shard of it). The noise levels and
    noises are drawn for the whole batch from torch's global generator on every rank, then sharded,
    so the step does not depend on the number of ranks. Returns the summed losses."""
    fh, fp, big_b = cfg.history_frames, cfg.future_frames, cfg.batch
    rows = par.shard(big_b)
    lat, state, actions, eps = data.batch(rng, rows)  # (b, C, F+P, h, w), (b, S), (b, A, D)
    full = (big_b,) + tuple(lat.shape[1:])
    sig_v = shift_levels(torch.rand(big_b, dtype=torch.float64), v_shift).float()[rows]  # (b,)
    sig_a = shift_levels(torch.rand(big_b, dtype=torch.float64), 5.0).float()[rows]
    noise_v = torch.randn(full[:2] + (fp,) + full[3:])[rows]
    noise_a = torch.randn((big_b,) + tuple(actions.shape[1:]))[rows]
    dev = par.device
    lat, state, actions, sig_v, sig_a, noise_v, noise_a = (t.to(dev) for t in (lat, state, actions, sig_v, sig_a,
                                                                              noise_v, noise_a))
    b = lat.shape[0]
    x = lat.clone()
    x[:, :, fh:] = (1 - sig_v[:, None, None, None, None]) * lat[:, :, fh:] + sig_v[:, None, None, None, None] * noise_v
    t_tok = torch.zeros(b, (fh + fp) * per_frame, device=dev)
    t_tok[:, fh * per_frame:] = sig_v[:, None] * 1000.0
    xa = (1 - sig_a[:, None, None]) * actions + sig_a[:, None, None] * noise_a
    words, mask = instruction_tokens(text, [instructions[e] for e in eps])
    ctx, cm = model.context(words, state, mask)
    out = model.joint_forward(x, t_tok, fh, xa, sig_a * 1000.0, ctx, cm)
    if fp:
        loss_v = ((out["pred_video"][:, :, fh:] - (noise_v - lat[:, :, fh:])) ** 2).flatten(1).mean(1).sum() / big_b
    else:
        loss_v = x.new_zeros(())
    loss_a = ((out["pred_action"] - (noise_a - actions)) ** 2).flatten(1).mean(1).sum() / big_b
    loss = loss_a + cfg.video_weight * loss_v
    for group in opt.param_groups:
        group["lr"] = _lr(step, cfg, cfg.lr, cfg.steps)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for g in opt.param_groups for p in g["params"]]
    total_a, total_v = par.reduce(params, loss_a, loss_v)
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return {"loss": total_a + cfg.video_weight * total_v, "action": total_a, "video": total_v,
            "lr": opt.param_groups[0]["lr"]}


def video_tokens(model: KairosWAM, latents: list[torch.Tensor], cfg: TrainConfig) -> tuple[int, float]:
    """(tokens per latent frame, the samplers' video noise shift) for these latents."""
    ph, pw = model.cfg.video.patch[1:]
    per_frame = (latents[0].shape[-2] // ph) * (latents[0].shape[-1] // pw)
    return per_frame, video_shift(per_frame, cfg.history_frames + cfg.future_frames)


def train_wam(model: KairosWAM, text: HashTextEncoder, episodes, latents, stats, instruction,
              cfg: TrainConfig, log=print, par: Parallel | None = None, resume: dict | None = None,
              hook=None) -> list[float]:
    """Stage 2 (in place). Returns the loss curve (one value per logged step).

    instruction: one text for every episode, or a list (one per episode; "" = the first non-empty).
    resume / hook: as train_codec (the state also holds torch's global RNG state)."""
    par = par or Parallel()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    data = _Latents(episodes, latents, stats, cfg)
    instructions = [instruction] * len(episodes) if isinstance(instruction, str) else list(instruction)
    model.to(par.device)
    text.to(par.device)
    par.broadcast(model)
    par.broadcast(text)
    params = list(model.parameters()) + list(text.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    first = 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        text.load_state_dict(resume["text"])
        opt.load_state_dict(resume["opt"])
        rng.bit_generator.state = resume["rng"]
        torch.set_rng_state(resume["torch_rng"])
        first = int(resume["step"])
    per_frame, v_shift = video_tokens(model, latents, cfg)
    curve = list(resume.get("curve", [])) if resume else []
    start = time.perf_counter()

    def state(step):
        return lambda: {"model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                        "text": {k: v.detach().cpu().clone() for k, v in text.state_dict().items()},
                        "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(), "step": step, "curve": list(curve)}

    model.train()
    for step in range(first, cfg.steps):
        out = wam_step(model, text, opt, data, rng, instructions, cfg, step, par, v_shift, per_frame)
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            curve.append(out["loss"])
            log(f"wam step {step:5d}  action {out['action']:.4f}  video {out['video']:.4f}  "
                f"{(time.perf_counter() - start) / (step + 1 - first):.2f} s/step")
        if hook is not None and hook(step + 1, out, state(step + 1)):
            raise Stopped(step + 1)
    model.eval()
    text.eval()
    model.cpu()
    text.cpu()
    return curve
