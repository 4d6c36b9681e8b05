"""Writing what kairos-train produced: the three nano checkpoint files (float16) and train.json."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from kairos_ros.model.nano_format import save_conv_codec, save_dit, save_hash_text

FILES = ("dit.safetensors", "codec.safetensors", "text.safetensors", "train.json")


def _half(module: torch.nn.Module) -> torch.nn.Module:
    """A float16 copy: half the size on disk; the backend loads it into its own dtype."""
    return copy.deepcopy(module).to(torch.float16)


def save_all(out: Path, model, codec, text, spec, stats: dict, record: dict) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    slots = list(spec.slot_names)
    trained_for = {k: record[k] for k in ("temporal_mode", "history_frames", "image_width", "image_height",
                                         "frame_period")}
    save_dit(_half(model), str(out / FILES[0]), slots, slots, stats, "zscore", trained_for,
             record["action_reference"], record["stats_scope"], record.get("state_velocity", 0))
    half_codec = _half(codec)
    half_codec.norm = codec.norm  # the latent statistics stay float32 metadata
    save_conv_codec(half_codec, str(out / FILES[1]))
    save_hash_text(_half(text), str(out / FILES[2]))
    (out / FILES[3]).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return [out / f for f in FILES]
