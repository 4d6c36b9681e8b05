"""Loading the three parts of the kairos backend's model, or random stand-ins when allowed.

- DiT (video DiT + action expert): `dit_checkpoint`, safetensors in the official key layout,
  built on the meta device and loaded strictly in the chosen dtype (no double allocation).
- Latent codec: `codec_checkpoint`; a kairos-nano ConvCodec file (nano_format.py) or a Wan2.1 VAE
  (a diffusers AutoencoderKLWan folder or Wan2.1_VAE.pth; wan_vae.py), kept in float32.
- Text encoder: `text_checkpoint`; a kairos-nano HashTextEncoder file or a local Qwen folder
  (qwen_text.py), in the model's dtype on CUDA.
A part without a path is refused, naming its parameter, unless allow_random_weights; then it is
randomly initialised (a random Wan VAE for the 4B presets' codec, a hashed-word encoder for text)
and named in `random_parts` so every status message can say so.

Integrity (check_digests, before any part is loaded): a file part is checked against its sidecar
`<file>.sha256` when there is one and against the `<part>_sha256` parameter when set (refused,
naming the file and both digests, on a mismatch). A folder part (diffusers / HF folder) cannot
match one digest: the parameter is refused for it, and every file in it that has a sidecar is
checked instead.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from kairos_ros.backends.kairos_setup import CHECKPOINTS
from kairos_ros.model.checkpoint import CheckpointError, SIDECAR, check_sha256, compare, load_checkpoint, read_header
from kairos_ros.model.codecs import ConvCodec, HashTextEncoder
from kairos_ros.model.nano_format import CODEC_FORMAT, TEXT_FORMAT, load_conv_codec, load_hash_text
from kairos_ros.model.qwen_text import load_qwen_text_encoder
from kairos_ros.model.wam import KairosWAM
from kairos_ros.model.wan_vae import WanVAECodec, load_wan_vae

PARTS = CHECKPOINTS


@dataclass
class Parts:
    net: KairosWAM
    codec: torch.nn.Module
    text: torch.nn.Module
    random_parts: list = field(default_factory=list)


def missing_parts(opts) -> list[str]:
    """The weight parameters left empty; refused unless random weights are allowed."""
    missing = [name for name in PARTS if not getattr(opts, name)]
    if missing and not opts.allow_random_weights:
        raise ValueError(f"parameter '{missing[0]}' is empty: the kairos backend needs trained weights "
                         f"(missing: {missing}; or allow_random_weights:=true, for testing only)")
    return missing


def _kairos_format(path: str) -> str | None:
    if os.path.isfile(path) and path.endswith(".safetensors"):
        return read_header(path).metadata.get("kairos.format")
    return None


def dit_shapes(cfg) -> dict:
    """{key: shape} of the model `cfg` builds (on the meta device: nothing allocated)."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in KairosWAM(cfg).state_dict().items()}


def dit_problems(cfg, header) -> list[str]:
    """The strict key/shape comparison of a DiT checkpoint against the model `cfg` ([] = fits);
    shared by the backend and `kairos-checkpoint verify`."""
    return compare(header, dit_shapes(cfg))


def check_dit(cfg, header) -> None:
    """The strict key/shape check, on the meta device, before anything else is decided or loaded."""
    problems = dit_problems(cfg, header)
    if problems:
        raise CheckpointError(f"parameter 'dit_checkpoint' = '{header.path}' does not fit the model '{cfg.name}': "
                              + "; ".join(problems))


def check_digests(opts) -> None:
    """Every given part against its sidecar and its `<part>_sha256` parameter (module docstring)."""
    for part in PARTS:
        path, expected = getattr(opts, part), getattr(opts, f"{part}_sha256", "")
        if not path:
            continue
        if os.path.isdir(path):
            if expected:
                raise CheckpointError(f"parameter '{part}_sha256' is set but '{part}' = '{path}' is a folder: a "
                                      f"digest checks one file; put '<file>{SIDECAR}' sidecars next to its files "
                                      "(kairos-checkpoint hash --write-sidecar) and clear the parameter")
            for root, _, files in os.walk(path):
                for name in sorted(files):
                    if not name.endswith(SIDECAR) and name + SIDECAR in files:
                        check_sha256(os.path.join(root, name))
        elif os.path.isfile(path):
            check_sha256(path, expected, f"parameter '{part}_sha256'")


def load_dit(cfg, path: str, device, dtype, seed: int) -> KairosWAM:
    if path:
        with torch.device("meta"):
            net = KairosWAM(cfg)
        load_checkpoint(net, path, dtype=dtype, device=device)
        return net.eval()
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # built in its dtype: a random 4B model never exists in float32
    try:
        with torch.device(device):
            net = KairosWAM(cfg)
    finally:
        torch.set_default_dtype(default)
    return net.eval()


def load_codec(cfg, path: str, device, official: bool):
    if not path:
        if official:
            from diffusers import AutoencoderKLWan  # optional: only a random official-size codec needs it

            return WanVAECodec(AutoencoderKLWan().eval().to(device))  # random, Wan2.1-sized
        codec = ConvCodec(cfg.video.in_channels).eval().to(device)
    elif _kairos_format(path) == CODEC_FORMAT:
        codec = load_conv_codec(path, device)
    else:
        codec = load_wan_vae(path, device, torch.float32)
    if codec.channels != cfg.video.in_channels:
        raise ValueError(f"parameter 'codec_checkpoint' = '{path}': {codec.channels} latent channels, the model "
                         f"takes {cfg.video.in_channels}")
    return codec


def load_text(cfg, opts, device, dtype):
    path = opts.text_checkpoint
    if not path:
        return HashTextEncoder(cfg.video.text_dim).eval().to(device)
    if _kairos_format(path) == TEXT_FORMAT or (os.path.isfile(path) and path.endswith(".safetensors")):
        return load_hash_text(path, cfg.video.text_dim, device)
    text = load_qwen_text_encoder(path, device, dtype if device.type == "cuda" else torch.float32,
                                  opts.text_drop_tokens, opts.text_system_prompt)
    if text.text_dim != cfg.video.text_dim:
        raise ValueError(f"parameter 'text_checkpoint' = '{path}': hidden size {text.text_dim}, but "
                         f"'{cfg.name}' takes text of width {cfg.video.text_dim}")
    return text


def load_parts(cfg, opts, device, dtype, missing: list[str], official: bool) -> Parts:
    check_digests(opts)
    net = load_dit(cfg, opts.dit_checkpoint, device, dtype, opts.seed)
    codec = load_codec(cfg, opts.codec_checkpoint, device, official)
    text = load_text(cfg, opts, device, dtype)
    return Parts(net, codec, text, list(missing))
