"""The Wan2.1 VAE (the 4B presets' latent codec) through diffusers' AutoencoderKLWan, from local files.

Accepted paths (nothing is downloaded: local_files_only):
- a diffusers model folder (config.json + weights), or a folder whose `vae/` subfolder is one;
- a single weights file: `Wan2.1_VAE.pth` in the original layout (diffusers converts it) or a
  diffusers-layout .safetensors. Its config is the config.json beside it when there is one, else
  AutoencoderKLWan's defaults, which are the Wan2.1 VAE's (z_dim 16, base_dim 96, dim_mult
  [1, 2, 4, 4], temporal downsampling [False, True, True], the published latents_mean/std).

Latents are normalised per channel with the config's latents_mean / latents_std, as the Kairos
pipeline does. The VAE is causal in time: latent frame 0 is one pixel frame, each later latent
frame four, so a single observation frame encodes to one latent frame (temporal_factor 4).
"""
from __future__ import annotations

import json
import os
import tempfile

import torch
from torch import nn

from kairos_ros.model.codecs import LatentNorm, single_frames


class WanVAECodec(nn.Module):
    """A loaded AutoencoderKLWan behind the latent-codec interface of model/codecs.py."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae
        cfg = vae.config
        self.channels = int(cfg.z_dim)
        self.temporal_factor = int(getattr(cfg, "scale_factor_temporal", None) or 4)
        self.norm = LatentNorm(cfg.latents_mean, cfg.latents_std, self.channels)

    def pixel_frames(self, latent_frames: int) -> int:
        return 1 + self.temporal_factor * (latent_frames - 1) if latent_frames else 0

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        x = single_frames(frames)[:, :, None].to(self.vae.dtype)  # (B, 3, 1, H, W)
        z = self.vae.encode(x).latent_dist.mode()  # the mean: deterministic, as the pipeline encodes
        return self.norm.normalize(z.float())  # (B, 16, 1, H/8, W/8)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        z = self.norm.denormalize(latents.float()).to(self.vae.dtype)
        video = self.vae.decode(z).sample.clamp(-1, 1)  # (B, 3, F', H, W)
        return video.permute(0, 2, 1, 3, 4).float()

    def decode_future(self, last: torch.Tensor, future: torch.Tensor) -> torch.Tensor:
        """Decoded after the clean history latent (the causal decoder needs it), which is dropped."""
        return self.decode(torch.cat([last.to(future.dtype), future], dim=2))[:, 1:]


def _weights_file(folder: str) -> bool:
    return any(n.endswith((".safetensors", ".bin", ".pth")) for n in os.listdir(folder))


def load_wan_vae(path: str, device="cpu", dtype: torch.dtype = torch.float32, param: str = "codec_checkpoint"):
    """A WanVAECodec from a local folder or file; ValueError naming `param` and the path otherwise."""
    from diffusers import AutoencoderKLWan

    if not path or not os.path.exists(path):
        raise ValueError(f"parameter '{param}' = '{path}': no such file or folder (a Wan2.1 VAE: a diffusers "
                         "AutoencoderKLWan folder or Wan2.1_VAE.pth)")
    try:
        if os.path.isdir(path):
            sub = "vae" if not os.path.isfile(os.path.join(path, "config.json")) and os.path.isfile(
                os.path.join(path, "vae", "config.json")) else None
            if sub is None and not os.path.isfile(os.path.join(path, "config.json")):
                raise ValueError("the folder has no config.json (nor vae/config.json)")
            if not _weights_file(os.path.join(path, sub) if sub else path):
                raise ValueError("the folder has no weights file")
            vae = AutoencoderKLWan.from_pretrained(path, subfolder=sub, local_files_only=True, torch_dtype=dtype)
        else:
            folder = os.path.dirname(os.path.abspath(path))
            with tempfile.TemporaryDirectory() as tmp:
                if not os.path.isfile(os.path.join(folder, "config.json")):
                    with open(os.path.join(tmp, "config.json"), "w") as f:
                        json.dump({"_class_name": "AutoencoderKLWan"}, f)  # the class defaults: Wan2.1
                    folder = tmp
                vae = AutoencoderKLWan.from_single_file(path, config=folder, local_files_only=True, torch_dtype=dtype)
    except ValueError as exc:
        raise ValueError(f"parameter '{param}' = '{path}': not a loadable Wan VAE: {exc}") from exc
    except (OSError, RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(f"parameter '{param}' = '{path}': not a loadable Wan VAE ({type(exc).__name__}: {exc})") from exc
    return WanVAECodec(vae.eval().to(device))
