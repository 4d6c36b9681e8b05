"""Checkpoint files of a kairos-nano model (what a training job writes, what the backend loads).

Three safetensors files, one per part (docs/kairos-nano-checkpoint.md has the full description):

dit_checkpoint    keys `video_dit.*`, `action_dit.*` (the official layout, checkpoint.py), shapes of
                  the preset with action_dim / state_dim = the lengths of the two slot lists.
                  metadata: kairos.format = kairos-dit/1, kairos.preset, kairos.action_slots and
                  kairos.state_slots (JSON lists of unified slot names, the model's layout order),
                  optionally kairos.stats (JSON: a Kairos stats dict, `{state|action}/default/
                  global_{mean,std,min,max}` in layout order), kairos.normalization (zscore|minmax)
                  and kairos.trained_for (JSON: the settings the weights were trained for, which the
                  backend then requires: temporal_mode, history_frames, image_width, image_height,
                  frame_period) and kairos.action_reference ("absolute", the default and Kairos'
                  own, or "state": each action is the offset from the robot state's value of the
                  same slot at the observation, and the action statistics describe those offsets) and
                  kairos.stats_scope ("global", the default, or "stepwise": the action statistics are
                  the stats dict's `action/default/stepwise_*`, one row per chunk row) and
                  kairos.state_velocity (an integer N >= 2; absent or 0: none): the proprio input is
                  the state slots followed by their velocities (slot units/s), the least-squares
                  slope of the last N observed states against their stamps; state_dim is then twice
                  the number of state slots and the state statistics cover both halves.
codec_checkpoint  ConvCodec: keys `encoder.*`, `decoder.*`; metadata kairos.format = kairos-conv-codec/1,
                  kairos.channels, kairos.width, optionally kairos.latents_mean / kairos.latents_std
                  (JSON lists, per channel). (A Wan-style AutoencoderKLWan folder works too: wan_vae.py.)
text_checkpoint   HashTextEncoder: keys `embedding.weight` (vocab, text_dim), `position.weight`
                  (max_tokens, text_dim); metadata kairos.format = kairos-hash-text/1.
All metadata values are strings (a safetensors rule). Files without kairos.* metadata (the official
4B checkpoints) load too; their layout comes from the preset.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from kairos_ros.model.checkpoint import CheckpointError, Header, load_checkpoint, read_header, save_checkpoint
from kairos_ros.model.codecs import ConvCodec, HashTextEncoder

ACTION_REFERENCES = ("absolute", "state")
STATS_SCOPES = ("global", "stepwise")  # Kairos stats JSON: {action}/default/{global,stepwise}_*
DIT_FORMAT, CODEC_FORMAT, TEXT_FORMAT = "kairos-dit/1", "kairos-conv-codec/1", "kairos-hash-text/1"


@dataclass
class DitInfo:
    """What a DiT checkpoint says about itself (None where it says nothing)."""

    action_dim: int
    state_dim: int
    preset: str | None = None
    action_slots: list | None = None
    state_slots: list | None = None
    stats: dict | None = None
    normalization: str | None = None
    trained_for: dict | None = None  # e.g. {"temporal_mode": "official", "history_frames": 4, "image_width": 128}
    action_reference: str = "absolute"  # or "state": actions are offsets from the current state
    stats_scope: str = "global"  # or "stepwise": action statistics per chunk row, (horizon, action_dim)
    state_velocity: int = 0  # N >= 2: the state input also carries slot velocities fitted over N observations

    @property
    def state_width(self) -> int:
        """Proprio values per state slot: 1, or 2 with velocities."""
        return 2 if self.state_velocity else 1


def _json(header: Header, key: str, kind):
    raw = header.metadata.get(key)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"'{header.path}': metadata {key} is not JSON ({exc})") from exc
    if not isinstance(value, kind):
        raise CheckpointError(f"'{header.path}': metadata {key} must be a JSON {kind.__name__}, got {raw[:80]!r}")
    return value


def dit_info(header: Header) -> DitInfo:
    shapes = {k: v[0] for k, v in header.tensors.items()}
    try:
        action_dim = shapes["action_dit.action_encoder.weight"][1]
        state_dim = shapes["action_dit.proprio_encoder.0.weight"][1]
    except (KeyError, IndexError) as exc:
        raise CheckpointError(f"'{header.path}' is not a Kairos DiT checkpoint: no tensor {exc}") from exc
    info = DitInfo(action_dim, state_dim, header.metadata.get("kairos.preset"),
                   _json(header, "kairos.action_slots", list), _json(header, "kairos.state_slots", list),
                   _json(header, "kairos.stats", dict), header.metadata.get("kairos.normalization"),
                   _json(header, "kairos.trained_for", dict), header.metadata.get("kairos.action_reference", "absolute"),
                   header.metadata.get("kairos.stats_scope", "global"))
    raw = header.metadata.get("kairos.state_velocity", "0")
    try:
        info.state_velocity = int(raw)
    except ValueError:
        info.state_velocity = -1
    if not valid_state_velocity(info.state_velocity):
        raise CheckpointError(f"'{header.path}': metadata kairos.state_velocity = {raw!r} must be an integer >= 2 "
                              "(or 0: no velocities)")
    if info.stats_scope not in STATS_SCOPES:
        raise CheckpointError(f"'{header.path}': metadata kairos.stats_scope = {info.stats_scope!r} must be one of "
                              f"{list(STATS_SCOPES)}")
    if info.action_reference not in ACTION_REFERENCES:
        raise CheckpointError(f"'{header.path}': metadata kairos.action_reference = {info.action_reference!r} must be one "
                              f"of {list(ACTION_REFERENCES)}")
    for name, slots, dim, per in (("action", info.action_slots, action_dim, 1),
                                  ("state", info.state_slots, state_dim, info.state_width)):
        if slots is not None and len(slots) * per != dim:
            extra = " (positions and velocities)" if per == 2 else ""
            raise CheckpointError(f"'{header.path}': kairos.{name}_slots lists {len(slots)} slots{extra} but the "
                                  f"weights take {dim} {name} values")
    return info


def valid_state_velocity(n: int) -> bool:
    """The rule for kairos.state_velocity: 0 (positions only) or a fit over N >= 2 observations
    (a line through one point has no slope)."""
    return n == 0 or n >= 2


def save_dit(model, path: str, action_slots, state_slots, stats: dict | None = None,
             normalization: str | None = None, trained_for: dict | None = None,
             action_reference: str = "absolute", stats_scope: str = "global", state_velocity: int = 0) -> None:
    if stats_scope not in STATS_SCOPES:
        raise ValueError(f"stats_scope {stats_scope!r} must be one of {list(STATS_SCOPES)}")
    if action_reference not in ACTION_REFERENCES:
        raise ValueError(f"action_reference {action_reference!r} must be one of {list(ACTION_REFERENCES)}")
    if not valid_state_velocity(state_velocity):
        raise ValueError(f"state_velocity {state_velocity} must be >= 2 (or 0: no velocities)")
    cfg = model.cfg
    per = 2 if state_velocity else 1
    if len(action_slots) != cfg.action.action_dim or len(state_slots) * per != cfg.action.state_dim:
        raise ValueError(f"{len(action_slots)} action / {len(state_slots)} state slots (x{per}) for a model of "
                         f"action_dim {cfg.action.action_dim} / state_dim {cfg.action.state_dim}")
    meta = {"kairos.format": DIT_FORMAT, "kairos.preset": cfg.name, "kairos.action_slots": json.dumps(list(action_slots)),
            "kairos.state_slots": json.dumps(list(state_slots))}
    if stats is not None:
        meta["kairos.stats"] = json.dumps(stats)
    if normalization is not None:
        meta["kairos.normalization"] = normalization
    if trained_for is not None:
        meta["kairos.trained_for"] = json.dumps(trained_for, sort_keys=True)
    if action_reference != "absolute":
        meta["kairos.action_reference"] = action_reference
    if stats_scope != "global":
        meta["kairos.stats_scope"] = stats_scope
    if state_velocity:
        meta["kairos.state_velocity"] = str(int(state_velocity))
    save_checkpoint(model.state_dict(), path, meta)


def save_conv_codec(codec: ConvCodec, path: str) -> None:
    meta = {"kairos.format": CODEC_FORMAT, "kairos.channels": codec.channels, "kairos.width": codec.width,
            "kairos.latents_mean": json.dumps(codec.norm.mean.flatten().tolist()),
            "kairos.latents_std": json.dumps(codec.norm.std.flatten().tolist())}
    save_checkpoint(codec.state_dict(), path, meta)


def conv_codec_for(header: Header) -> ConvCodec:
    """The (untrained) ConvCodec a kairos-conv-codec/1 file describes in its metadata: what
    load_conv_codec loads into and what `kairos-checkpoint verify` checks it against."""
    try:
        channels = int(header.metadata.get("kairos.channels", 16))
        width = int(header.metadata.get("kairos.width", 32))
    except ValueError as exc:
        raise CheckpointError(f"'{header.path}': bad kairos.channels / kairos.width metadata ({exc})") from exc
    if not (0 < channels <= 1024 and 0 < width <= 1024):
        raise CheckpointError(f"'{header.path}': kairos.channels = {channels} / kairos.width = {width} out of range")
    return ConvCodec(channels, width, _json(header, "kairos.latents_mean", list),
                     _json(header, "kairos.latents_std", list))


def load_conv_codec(path: str, device="cpu") -> ConvCodec:
    codec = conv_codec_for(read_header(path))
    load_checkpoint(codec, path)
    return codec.eval().to(device)


def save_hash_text(encoder: HashTextEncoder, path: str) -> None:
    save_checkpoint(encoder.state_dict(), path, {"kairos.format": TEXT_FORMAT})


def hash_text_for(header: Header, text_dim: int) -> HashTextEncoder:
    """The (untrained) HashTextEncoder a kairos-hash-text/1 file describes (vocab and max_tokens from
    its shapes), refused unless its width is the model's `text_dim`."""
    path = header.path
    shapes = {k: v[0] for k, v in header.tensors.items()}
    if len(shapes.get("embedding.weight", ())) != 2 or len(shapes.get("position.weight", ())) != 2:
        raise CheckpointError(f"'{path}' is not a kairos-nano text encoder (needs 2-D embedding.weight and "
                              f"position.weight; has {sorted(shapes)[:6]})")
    vocab, dim = shapes["embedding.weight"]
    if dim != text_dim:
        raise CheckpointError(f"'{path}': text width {dim} but the model's text_dim is {text_dim}")
    return HashTextEncoder(text_dim, vocab, shapes["position.weight"][0])


def load_hash_text(path: str, text_dim: int, device="cpu") -> HashTextEncoder:
    encoder = hash_text_for(read_header(path), text_dim)
    load_checkpoint(encoder, path)
    return encoder.eval().to(device)
