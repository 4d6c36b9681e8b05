"""The kairos backend's options: the one place their names and defaults are written.

The world model node's parameter schema (nodes/world_model_params.py) documents and validates each
option; which validated parameters reach the backend is derived from these fields
(`KAIROS_KEYS`), and a test checks that every option has a schema entry with the same default.
No torch here, so the schema and the docs import it cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from kairos_ros.core.digest import valid_sha256

CHECKPOINTS = ("dit_checkpoint", "codec_checkpoint", "text_checkpoint")  # each with an optional <name>_sha256


@dataclass
class KairosOptions:
    """The kairos backend's parameters (world_model_params.py documents each)."""

    model_preset: str = "kairos-nano"
    device: str = "auto"
    dtype: str = "auto"
    allow_large_preset_on_cpu: bool = False
    dit_checkpoint: str = ""
    codec_checkpoint: str = ""
    text_checkpoint: str = ""
    dit_checkpoint_sha256: str = ""  # '' = not checked (a `<file>.sha256` sidecar still is)
    codec_checkpoint_sha256: str = ""
    text_checkpoint_sha256: str = ""
    text_drop_tokens: int = 97
    text_system_prompt: str = ""
    allow_random_weights: bool = False
    action_stats: str = ""
    normalization: str = "zscore"
    action_layout: list = field(default_factory=list)
    state_layout: list = field(default_factory=list)
    temporal_mode: str = "streaming"
    history_frames: int = 1
    flow_steps: int = 10
    video_steps: int = 0
    video_schedule: str = "euler"
    video_every: int = 1
    frame_period: float = 0.0
    image_width: int = 0
    image_height: int = 0
    max_frames_per_step: int = 1
    seed: int = 0
    action_noise_scale: float = 1.0
    threads: int = 1  # intra-op threads per inference thread (0: torch's default)

    def __post_init__(self):
        for part in CHECKPOINTS:
            digest = getattr(self, f"{part}_sha256")
            if digest and not valid_sha256(digest):
                raise ValueError(f"parameter '{part}_sha256' = {digest!r} must be a sha256 digest, 64 hexadecimal "
                                 "digits (or '': not checked)")
            if digest and not getattr(self, part):
                raise ValueError(f"parameter '{part}_sha256' is set but '{part}' is empty: nothing to check it against")


KAIROS_KEYS = tuple(f.name for f in fields(KairosOptions))
