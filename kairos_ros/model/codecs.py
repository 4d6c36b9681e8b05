"""The pixel and text sides of the model, behind two small interfaces.

Latent codec (pixels <-> the 16-channel latents the video DiT denoises):
- `encode(frames)`: one frame per sample, (B, 3, H, W) or (B, 3, 1, H, W) in [-1, 1], H and W
  multiples of 16 -> (B, 16, 1, H/8, W/8), normalised per channel ((z - mean) / std).
- `decode(latents)`: (B, 16, F, h, w) -> (B, F', 3, 8h, 8w) in [-1, 1], F' = pixel_frames(F).
- `decode_future(last, future)`: pixel frames of the future latents (B, 16, Ff, h, w) that follow
  the clean latent frame `last` (B, 16, 1, h, w) -> (B, Ff x temporal_factor, 3, H, W).
- `temporal_factor`: pixel frames per latent frame after the first (1 per-frame, 4 for Wan2.1).
Implementations: `ConvCodec` (kairos-nano's small per-frame autoencoder, here) and
`WanVAECodec` (the Wan2.1 VAE through diffusers, model/wan_vae.py) for the 4B presets.

Text encoder: `encode(text) -> (1, L, text_dim)`. `HashTextEncoder` (here, kairos-nano: hashed
words -> embeddings) or `QwenTextEncoder` (model/qwen_text.py, the 4B presets' Qwen encoders).
Checkpoint files of the nano parts: model/nano_format.py.
"""
from __future__ import annotations

import hashlib

import torch
from torch import nn


def check_frame_size(h: int, w: int) -> None:
    if h % 16 or w % 16:
        raise ValueError(f"image size {w}x{h} (width x height) is not a multiple of 16: the model needs width {w} "
                         f"and height {h} both divisible by 16")


def single_frames(frames: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) or (B, 3, 1, H, W) -> (B, 3, H, W), size checked."""
    if frames.dim() == 5:
        if frames.shape[2] != 1:
            raise ValueError(f"encode takes one frame per sample, got {frames.shape[2]} frames {tuple(frames.shape)}")
        frames = frames[:, :, 0]
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"frames must be (B, 3, H, W) or (B, 3, 1, H, W), got {tuple(frames.shape)}")
    check_frame_size(*frames.shape[-2:])
    return frames


class LatentNorm(nn.Module):
    """Per-channel latent normalisation (fixed statistics, not parameters of the checkpoint)."""

    def __init__(self, mean=None, std=None, channels: int = 16):
        super().__init__()
        mean = torch.zeros(channels) if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        std = torch.ones(channels) if std is None else torch.as_tensor(std, dtype=torch.float32)
        if mean.shape != (channels,) or std.shape != (channels,) or not bool((std > 0).all()):
            raise ValueError(f"latents mean/std must be {channels} values each with std > 0, got shapes "
                             f"{tuple(mean.shape)} and {tuple(std.shape)}")
        self.register_buffer("mean", mean.view(1, -1, 1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1, 1), persistent=False)

    def normalize(self, z: torch.Tensor) -> torch.Tensor:
        return (z - self.mean.to(z.dtype)) / self.std.to(z.dtype)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std.to(z.dtype) + self.mean.to(z.dtype)


class ConvCodec(nn.Module):
    """8x spatial down/up-sampling to 16 latent channels, frame by frame (kairos-nano)."""

    temporal_factor = 1

    def __init__(self, channels: int = 16, width: int = 32, latents_mean=None, latents_std=None):
        super().__init__()
        self.channels, self.width = channels, width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1), nn.SiLU(), nn.Conv2d(width, 2 * width, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(2 * width, channels, 4, 2, 1))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(channels, 2 * width, 4, 2, 1), nn.SiLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.SiLU(), nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh())
        self.norm = LatentNorm(latents_mean, latents_std, channels)

    @staticmethod
    def pixel_frames(latent_frames: int) -> int:
        return latent_frames

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        x = single_frames(frames).to(self.encoder[0].weight.dtype)
        return self.norm.normalize(self.encoder(x)[:, :, None])  # (B, 16, 1, H/8, W/8)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = latents.shape
        z = self.norm.denormalize(latents.to(self.decoder[0].weight.dtype))
        x = z.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        return self.decoder(x).view(b, f, 3, h * 8, w * 8)

    def decode_future(self, last: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        return self.decode(future)  # frames are independent: the history frame is not needed


class HashTextEncoder(nn.Module):
    """Words hashed into a fixed vocabulary, embedded, plus position: a light instruction encoder."""

    def __init__(self, text_dim: int, vocab: int = 4096, max_tokens: int = 32):
        super().__init__()
        self.vocab, self.max_tokens = vocab, max_tokens
        self.embedding = nn.Embedding(vocab, text_dim)
        self.position = nn.Embedding(max_tokens, text_dim)

    @property
    def text_dim(self) -> int:
        return self.embedding.embedding_dim

    def tokens(self, text: str) -> torch.Tensor:
        words = text.lower().split()[: self.max_tokens] or [""]
        ids = [int.from_bytes(hashlib.blake2s(w.encode(), digest_size=4).digest(), "little") % self.vocab for w in words]
        return torch.tensor(ids, device=self.embedding.weight.device)

    def encode(self, text: str) -> torch.Tensor:
        ids = self.tokens(text)
        return (self.embedding(ids) + self.position(torch.arange(len(ids), device=ids.device)))[None]  # (1, L, D)
