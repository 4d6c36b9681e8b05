"""The pixel and text sides of the model, behind small interfaces.

- Pixels <-> latents: `LatentCodec.encode(frames (B, 3, H, W) in [-1, 1]) -> (B, 16, 1, H/8, W/8)` and
  `decode`. The 4B presets use the Wan2.1 VAE (diffusers' AutoencoderKLWan, loaded from a local
  path); kairos-nano uses `ConvCodec`, a small convolutional autoencoder of the same latent shape.
- Text: `encode(text) -> (1, L, text_dim)`. The 4B presets use a Qwen encoder through
  transformers from a local path; kairos-nano uses `HashTextEncoder` (hashed words -> embeddings).
Weights for both nano parts are trained separately; without them the backend refuses to start
unless random weights are explicitly allowed.
"""
from __future__ import annotations

import hashlib

import torch
from torch import nn


class ConvCodec(nn.Module):
    """8x spatial down/up-sampling to 16 latent channels (kairos-nano's VAE stand-in interface)."""

    def __init__(self, channels: int = 16, width: int = 32):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1), nn.SiLU(), nn.Conv2d(width, 2 * width, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(2 * width, channels, 4, 2, 1))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(channels, 2 * width, 4, 2, 1), nn.SiLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.SiLU(), nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh())

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        h, w = frames.shape[-2:]
        if h % 16 or w % 16:
            raise ValueError(f"image size {w}x{h} is not a multiple of 16 (the model needs H and W divisible by 16)")
        return self.encoder(frames)[:, :, None]  # (B, 16, 1, H/8, W/8)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = latents.shape
        x = latents.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        return self.decoder(x).view(b, f, 3, h * 8, w * 8)


class HashTextEncoder(nn.Module):
    """Words hashed into a fixed vocabulary, embedded, plus position: a light instruction encoder."""

    def __init__(self, text_dim: int, vocab: int = 4096, max_tokens: int = 32):
        super().__init__()
        self.vocab, self.max_tokens = vocab, max_tokens
        self.embedding = nn.Embedding(vocab, text_dim)
        self.position = nn.Embedding(max_tokens, text_dim)

    def tokens(self, text: str) -> torch.Tensor:
        words = text.lower().split()[: self.max_tokens] or [""]
        ids = [int.from_bytes(hashlib.blake2s(w.encode(), digest_size=4).digest(), "little") % self.vocab for w in words]
        return torch.tensor(ids)

    def encode(self, text: str) -> torch.Tensor:
        ids = self.tokens(text)
        return (self.embedding(ids) + self.position(torch.arange(len(ids))))[None]  # (1, L, text_dim)
