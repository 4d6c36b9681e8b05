"""Model configuration: frozen dataclasses with named presets (docs/architecture.md, convention 4).

`get_preset(name)` returns one of PRESETS:
- kairos-4b-wam          the released RoboTwin 2.0 world-action model (text 2048, action/state 14)
- kairos-4b-wam-libero   the LIBERO-plus fine-tune (text 3584, action 7, state 8)
- kairos-parity          the tiny configuration of the official parity fixtures
- kairos-nano            same architecture, small enough for a 10-step action chunk on 2 CPU cores
- kairos-test            tiny, for unit tests
Temporal modes (official / streaming) are run-time choices, not architecture: see memory.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

VIDEO_LAYER_TYPES = ("SWA", "DSWA", "GATED")


def _positive(obj, names) -> None:
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{type(obj).__name__}.{name} = {value!r} must be a positive int")


@dataclass(frozen=True)
class VideoDiTConfig:
    dim: int = 2560  # also the self-attention width: heads x head_dim
    ffn_dim: int = 10240
    num_heads: int = 20
    num_layers: int = 32
    layers: tuple = ("SWA", "SWA", "DSWA", "GATED")  # pattern repeated to num_layers
    freq_dim: int = 256  # sinusoidal timestep width
    text_dim: int = 2048  # context width (text encoder; the proprio token is projected to it)
    in_channels: int = 16
    out_channels: int = 16
    patch: tuple = (1, 2, 2)  # (frames, rows, columns)
    eps: float = 1e-6
    window: int = 3  # SWA: |df| < window; DSWA: df in {0, +-dilation, ..., +-(window-1) dilation}
    dilation: int = 4
    rope_split: tuple = (44, 42, 42)  # frame / row / column dims of one head
    rope_theta: float = 10000.0
    rope_len: int = 1024  # positions per axis (the official table length)
    gdn_head_dim: int = 256  # GatedDeltaNet q/k width per head (fla's default; Kairos passes none)
    gdn_expand_v: int = 2  # value (and output gate) width = expand_v x gdn_head_dim per head
    gdn_conv: int = 4  # causal short-convolution kernel

    def __post_init__(self):
        _positive(self, ("dim", "ffn_dim", "num_heads", "num_layers", "freq_dim", "text_dim", "in_channels",
                         "out_channels", "window", "dilation", "rope_len", "gdn_head_dim", "gdn_expand_v",
                         "gdn_conv"))
        if self.dim % self.num_heads:
            raise ValueError(f"video dim {self.dim} is not divisible by num_heads {self.num_heads}")
        hd = self.dim // self.num_heads
        if hd % 2 or len(self.rope_split) != 3 or sum(self.rope_split) != hd or any(d <= 0 or d % 2
                                                                                  for d in self.rope_split):
            raise ValueError(f"rope_split {tuple(self.rope_split)} must be three positive even parts summing "
                             f"to head_dim {hd} (dim {self.dim} / num_heads {self.num_heads})")
        bad = [t for t in self.layers if t not in VIDEO_LAYER_TYPES]
        if bad or not self.layers:
            raise ValueError(f"unknown video layer types {bad} in {tuple(self.layers)} (known: {VIDEO_LAYER_TYPES})")
        if self.num_layers % len(self.layers):
            raise ValueError(f"num_layers {self.num_layers} is not a multiple of the pattern {tuple(self.layers)}")
        if len(self.patch) != 3 or any(not isinstance(p, int) or p <= 0 for p in self.patch):
            raise ValueError(f"patch {self.patch!r} must be three positive ints (frames, rows, columns)")
        if self.rope_split[0] and self.max_history_span >= self.rope_len:
            raise ValueError(f"window {self.window} x dilation {self.dilation} spans {self.max_history_span + 1} "
                             f"frames, more than rope_len {self.rope_len}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def attn_dim(self) -> int:
        return self.dim

    @property
    def max_history_span(self) -> int:
        """Frames back the widest window reaches (DSWA: (window - 1) x dilation)."""
        return (self.window - 1) * (self.dilation if "DSWA" in self.layers else 1)

    def layer_types(self) -> list[str]:
        return list(self.layers) * (self.num_layers // len(self.layers))


@dataclass(frozen=True)
class ActionExpertConfig:
    dim: int = 1024
    ffn_dim: int = 4096
    num_layers: int = 32  # one per video layer (the experts run layer by layer)
    attn_dim: int = 2560  # q/k/v width: equals the video attention width so K/V can be shared
    num_heads: int = 20
    action_dim: int = 14
    state_dim: int = 14
    freq_dim: int = 256
    eps: float = 1e-6
    rope_len: int = 1024  # action tokens (1D RoPE over the whole head)

    def __post_init__(self):
        _positive(self, ("dim", "ffn_dim", "num_layers", "attn_dim", "num_heads", "action_dim", "state_dim",
                         "freq_dim", "rope_len"))
        if self.attn_dim % self.num_heads or (self.attn_dim // self.num_heads) % 2:
            raise ValueError(f"action attn_dim {self.attn_dim} must split into {self.num_heads} heads of even width")


@dataclass(frozen=True)
class KairosConfig:
    name: str
    video: VideoDiTConfig = field(default_factory=VideoDiTConfig)
    action: ActionExpertConfig = field(default_factory=ActionExpertConfig)

    def __post_init__(self):
        v, a = self.video, self.action
        if a.num_layers != v.num_layers:
            raise ValueError(f"action num_layers {a.num_layers} != video num_layers {v.num_layers}: "
                             "the experts run layer by layer")
        if (a.attn_dim, a.num_heads) != (v.attn_dim, v.num_heads):
            raise ValueError(f"action attention {a.num_heads} heads x {a.attn_dim} must equal the video's "
                             f"{v.num_heads} heads x {v.attn_dim}: action queries attend video keys")


def _preset(name, video: dict, action: dict) -> KairosConfig:
    return KairosConfig(name, VideoDiTConfig(**video), ActionExpertConfig(**action))


_4B = KairosConfig("kairos-4b-wam")
PRESETS = {
    "kairos-4b-wam": _4B,
    "kairos-4b-wam-libero": replace(_4B, name="kairos-4b-wam-libero", video=replace(_4B.video, text_dim=3584),
                                    action=replace(_4B.action, action_dim=7, state_dim=8)),
    # manifest.json of test/fixtures/kairos_parity (GatedDeltaNet keeps fla's head_dim 256).
    "kairos-parity": _preset("kairos-parity", dict(dim=256, ffn_dim=512, num_heads=2, num_layers=4, text_dim=64),
                             dict(dim=128, ffn_dim=512, num_layers=4, attn_dim=256, num_heads=2)),
    # Same architecture at one pattern repeat: on 2 CPU cores the eager per-op cost (~0.45 ms per
    # action layer) rules out 8 layers for a 10-step chunk under 50 ms (measured; see README).
    "kairos-nano": _preset("kairos-nano", dict(dim=256, ffn_dim=1024, num_heads=2, num_layers=4, text_dim=128,
                                               gdn_head_dim=128),
                           dict(dim=128, ffn_dim=512, num_layers=4, attn_dim=256, num_heads=2)),
    "kairos-test": _preset("kairos-test", dict(dim=64, ffn_dim=128, num_heads=2, num_layers=4, text_dim=16,
                                               rope_split=(12, 10, 10), gdn_head_dim=16),
                           dict(dim=32, ffn_dim=64, num_layers=4, attn_dim=64, num_heads=2, action_dim=6,
                                state_dim=6)),
}


def get_preset(name: str) -> KairosConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset '{name}' (known: {sorted(PRESETS)})")
    return PRESETS[name]
