"""Everything the `kairos` backend decides before its first prediction, each refusal naming the
parameter: device and dtype, the preset's size against the device, the action and state layouts
against the embodiment's unified slots, the normalisation statistics, and the weights.

Layouts. The model predicts actions (and reads the robot state) in its own order of unified slots:
the official 4B RoboTwin model in ROBOTWIN_SLOTS (14 values), the LIBERO model in LIBERO_*_SLOTS.
A kairos-nano checkpoint names its layout in its metadata (model/nano_format.py); without one the
embodiment's own slots are the layout. `action_layout` / `state_layout` override all of these.
The embodiment must carry every layout slot and the action layout every embodiment slot (nothing
is left unpredicted); otherwise start-up is refused with the slots named.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from kairos_ros.core.action_space import (LIBERO_ACTION_SLOTS, LIBERO_STATE_SLOTS, ROBOTWIN_SLOTS, Normalizer,
                                          load_stats)
from kairos_ros.backends.kairos_options import CHECKPOINTS, KairosOptions  # noqa: F401  (re-exported)
from kairos_ros.model.config import KairosConfig, get_preset
from kairos_ros.model.wam import KairosWAM

# Presets whose dimensions are those of released weights (not resized to an embodiment).
PRESET_LAYOUTS = {"kairos-4b-wam": (ROBOTWIN_SLOTS, ROBOTWIN_SLOTS),
                  "kairos-4b-wam-libero": (LIBERO_ACTION_SLOTS, LIBERO_STATE_SLOTS)}
CPU_PARAM_LIMIT = 200_000_000  # above this a preset is refused on the CPU unless forced
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"parameter 'device' = '{name}' must be one of ['auto', 'cpu', 'cuda']")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("parameter 'device' = 'cuda' but torch sees no CUDA device on this machine "
                         "(use 'auto' or 'cpu')")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32  # bf16: the released pipeline's dtype
    if name not in DTYPES:
        raise ValueError(f"parameter 'dtype' = '{name}' must be one of {['auto', *DTYPES]}")
    if device.type == "cpu" and name == "float16":
        raise ValueError("parameter 'dtype' = 'float16' on the CPU: half precision is emulated there (slower than "
                         "float32, no memory win that matters); use float32 or bfloat16")
    if device.type == "cuda" and name == "bfloat16" and not torch.cuda.is_bf16_supported():
        raise ValueError(f"parameter 'dtype' = 'bfloat16' but {torch.cuda.get_device_name()} has no bfloat16 "
                         "support; use float16 or float32")
    return DTYPES[name]


def count_parameters(cfg: KairosConfig) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in KairosWAM(cfg).parameters())


def check_size(cfg: KairosConfig, device: torch.device, forced: bool) -> int:
    n = count_parameters(cfg)
    if device.type == "cpu" and n > CPU_PARAM_LIMIT and not forced:
        raise ValueError(f"parameter 'model_preset' = '{cfg.name}' has {n / 1e9:.2f}B parameters: refused on the CPU "
                         f"(about {n * 4 / 2**30:.0f} GiB in float32, minutes per action chunk); run it on a CUDA "
                         "device, or set allow_large_preset_on_cpu:=true to force it")
    return n


def check_fit(spec, action_slots, state_slots) -> None:
    """Refuse layouts the embodiment cannot feed or whose actions leave embodiment slots unset."""
    have = set(spec.slot_names)
    for name, slots in (("action", action_slots), ("state", state_slots)):
        missing = [s for s in slots if s not in have]
        if missing:
            raise ValueError(f"the model's {name} layout needs slots {missing} that embodiment '{spec.name}' does "
                             f"not have (its slots: {list(spec.slot_names)}); set {name}_layout, or use a model "
                             "trained for this embodiment")
        dupes = sorted({s for s in slots if list(slots).count(s) > 1})
        if dupes:
            raise ValueError(f"the model's {name} layout repeats slots {dupes}")
    unset = [s for s in spec.slot_names if s not in set(action_slots)]
    if unset:
        raise ValueError(f"embodiment '{spec.name}' slots {unset} are not in the model's action layout "
                         f"{list(action_slots)}: they would never be commanded")


def layouts(spec, opts: KairosOptions, info) -> tuple[list, list]:
    """(action slots, state slots) in the model's order; see the module docstring."""
    preset = PRESET_LAYOUTS.get(opts.model_preset)
    action = list(opts.action_layout) or (info.action_slots if info and info.action_slots else None) \
        or (list(preset[0]) if preset else list(spec.slot_names))
    state = list(opts.state_layout) or (info.state_slots if info and info.state_slots else None) \
        or (list(preset[1]) if preset else list(action))
    check_fit(spec, action, state)
    return action, state


def model_config(opts: KairosOptions, action_slots, state_slots, info) -> KairosConfig:
    cfg = get_preset(opts.model_preset)
    if info and info.preset and info.preset != cfg.name:
        raise ValueError(f"parameter 'dit_checkpoint' = '{opts.dit_checkpoint}' holds a '{info.preset}' model but "
                         f"model_preset is '{cfg.name}'")
    dims = (len(action_slots), len(state_slots) * (info.state_width if info else 1))
    if opts.model_preset in PRESET_LAYOUTS:
        want = (cfg.action.action_dim, cfg.action.state_dim)
        if dims != want:
            raise ValueError(f"'{cfg.name}' takes {want[0]} action / {want[1]} state values, but the layouts have "
                             f"{dims[0]} / {dims[1]} slots (action_layout / state_layout)")
        return cfg
    if info and (info.action_dim, info.state_dim) != dims:
        raise ValueError(f"parameter 'dit_checkpoint' = '{opts.dit_checkpoint}' takes {info.action_dim} action / "
                         f"{info.state_dim} state values, but the layouts give {dims[0]} / {dims[1]}")
    return replace(cfg, action=replace(cfg.action, action_dim=dims[0], state_dim=dims[1]))


def checkpoint_config(preset: str, path: str, info) -> KairosConfig:
    """The model a DiT checkpoint must fit under `preset` by its own metadata (`info`: its
    nano_format.dit_info, None when it has none): what the backend builds from it when no
    action_layout / state_layout overrides it (model_config on the checkpoint's slot lists, so
    kairos.state_velocity doubles the state width here exactly as there). Where the layout would
    come from the embodiment (no slot lists, a resized preset) the weights' own widths stand in."""
    opts = KairosOptions(model_preset=preset, dit_checkpoint=path)
    if info is None:
        return get_preset(preset)
    fixed = PRESET_LAYOUTS.get(preset)
    action = info.action_slots or (list(fixed[0]) if fixed else [None] * info.action_dim)
    state = info.state_slots or (list(fixed[1]) if fixed else list(action) if info.action_slots
                                 else [None] * (info.state_dim // info.state_width))
    return model_config(opts, action, state, info)


def normalizers(opts: KairosOptions, info, action_slots, state_slots, trained: bool):
    """(action Normalizer, state Normalizer), or (None, None): identity, only with random weights."""
    kind = opts.normalization
    if opts.action_stats:
        try:
            pair = load_stats(opts.action_stats, kind, "action"), load_stats(opts.action_stats, kind, "state")
        except (OSError, ValueError) as exc:
            raise ValueError(f"parameter 'action_stats' = '{opts.action_stats}': {exc}") from exc
    elif info and info.stats:
        kind = info.normalization or kind
        pair = _from_stats(info.stats, kind, "action", info.stats_scope), _from_stats(info.stats, kind, "state")
    elif trained:
        raise ValueError("parameter 'action_stats' is empty and the DiT checkpoint carries no statistics: the model's "
                         "actions are normalised, so a Kairos stats JSON is needed to denormalise them")
    else:
        return None, None
    width = info.state_width if info else 1  # state values per slot (2: position and velocity)
    for (name, norm), n in zip((("action", pair[0]), ("state", pair[1])), (len(action_slots), len(state_slots) * width)):
        if norm.a.shape[-1:] != (n,) or norm.a.ndim > (2 if name == "action" else 1):
            raise ValueError(f"{name} statistics have {norm.a.shape[-1] if norm.a.ndim else 1} values but the model's "
                             f"{name} input has {n}")
    return pair


def _from_stats(stats: dict, kind: str, which: str, scope: str = "global") -> Normalizer:
    """A Normalizer from a Kairos stats dict embedded in a checkpoint (keys as in the stats JSON);
    stepwise statistics are (horizon, dim): one row per chunk row."""
    keys = [f"{which}/default/{scope}_{k}" for k in (("mean", "std") if kind == "zscore" else ("min", "max"))]
    missing = [k for k in keys if k not in stats]
    if missing:
        raise ValueError(f"the DiT checkpoint's kairos.stats lacks {missing} (has {sorted(stats)[:8]})")
    return Normalizer(kind, stats[keys[0]], stats[keys[1]])


def identity(values: np.ndarray, norm: Normalizer | None, inverse: bool = False) -> np.ndarray:
    if norm is None:
        return np.asarray(values, np.float64)
    return norm.denormalize(values) if inverse else norm.normalize(values)
