"""Model configuration: dataclasses with named presets (design.md convention 4)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

LAYER_TYPES = ("SWA", "DSWA", "GATED", "FA")


@dataclass(frozen=True)
class VideoDiTConfig:
    dim: int = 2560
    ffn_dim: int = 10240
    num_heads: int = 20
    head_dim: int = 128
    num_layers: int = 32
    layers: tuple = ("SWA", "SWA", "DSWA", "GATED")  # repeated to num_layers
    freq_dim: int = 256
    text_dim: int = 2048
    in_channels: int = 16
    out_channels: int = 16
    patch: tuple = (1, 2, 2)
    eps: float = 1e-6
    window: int = 3  # SWA: |df| < window; DSWA: df in {0, +-d, ..., +-(window-1)d}
    dilation: int = 4
    rope_split: tuple = (44, 42, 42)  # frame / row / column dims of a head
    rope_theta: float = 10000.0
    rope_len: int = 1024
    gdn_head_dim: int = 256  # q/k width per GatedDeltaNet head
    gdn_expand_v: int = 2
    gdn_conv: int = 4

    def __post_init__(self):
        if self.num_heads * self.head_dim <= 0:
            raise ValueError(f"num_heads {self.num_heads} x head_dim {self.head_dim} must be positive")
        if sum(self.rope_split) != self.head_dim or any(d % 2 for d in self.rope_split):
            raise ValueError(f"rope_split {self.rope_split} must be even parts summing to head_dim {self.head_dim}")
        if self.num_layers % len(self.layers):
            raise ValueError(f"num_layers {self.num_layers} is not a multiple of the pattern {self.layers}")
        bad = [t for t in self.layers if t not in ("SWA", "DSWA", "GATED")]
        if bad:
            raise ValueError(f"unknown video layer types {bad} (SWA, DSWA, GATED)")
        if self.window < 1 or self.dilation < 1:
            raise ValueError(f"window {self.window} and dilation {self.dilation} must be >= 1")

    @property
    def attn_dim(self) -> int:
        return self.num_heads * self.head_dim

    def layer_types(self) -> list[str]:
        return list(self.layers) * (self.num_layers // len(self.layers))


@dataclass(frozen=True)
class ActionExpertConfig:
    dim: int = 1024
    ffn_dim: int = 4096
    num_layers: int = 32
    action_dim: int = 14
    state_dim: int = 14
    freq_dim: int = 256
    eps: float = 1e-6
    rope_len: int = 1024

    def __post_init__(self):
        for name in ("dim", "ffn_dim", "num_layers", "action_dim", "state_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} = {getattr(self, name)} must be positive")


@dataclass(frozen=True)
class KairosConfig:
    name: str
    video: VideoDiTConfig = field(default_factory=VideoDiTConfig)
    action: ActionExpertConfig = field(default_factory=ActionExpertConfig)

    def __post_init__(self):
        if self.action.num_layers != self.video.num_layers:
            raise ValueError(f"action layers {self.action.num_layers} != video layers {self.video.num_layers}: "
                             "the experts run layer by layer")


_4B = KairosConfig("kairos-4b-wam")
PRESETS = {
    "kairos-4b-wam": _4B,
    "kairos-4b-wam-libero": replace(_4B, name="kairos-4b-wam-libero", video=replace(_4B.video, text_dim=3584),
                                    action=replace(_4B.action, action_dim=7, state_dim=8)),
    # The tiny configuration of the official parity fixtures (test/fixtures/kairos_parity).
    "kairos-parity": KairosConfig("kairos-parity",
                                  VideoDiTConfig(dim=256, ffn_dim=512, num_heads=2, num_layers=4, text_dim=64),
                                  ActionExpertConfig(dim=128, ffn_dim=512, num_layers=4)),
    # The embedded default: same architecture, small enough for real time on a laptop CPU.
    "kairos-nano": KairosConfig("kairos-nano",
                                VideoDiTConfig(dim=256, ffn_dim=768, num_heads=2, num_layers=8, text_dim=128,
                                               gdn_head_dim=128),
                                ActionExpertConfig(dim=128, ffn_dim=384, num_layers=8)),
    "kairos-test": KairosConfig("kairos-test",
                                VideoDiTConfig(dim=64, ffn_dim=128, num_heads=2, head_dim=32, num_layers=4,
                                               text_dim=16, rope_split=(12, 10, 10), gdn_head_dim=16),
                                ActionExpertConfig(dim=32, ffn_dim=64, num_layers=4, action_dim=6, state_dim=6)),
}


def get_preset(name: str) -> KairosConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset '{name}' (known: {sorted(PRESETS)})")
    return PRESETS[name]
