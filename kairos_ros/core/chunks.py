"""Validation of an action chunk against the embodiment it is meant for."""
from __future__ import annotations

import numpy as np

from kairos_ros.core.types import ActionChunkData


class ChunkError(ValueError):
    """A chunk that must not be executed; the message names the reason."""


def validate_chunk(chunk: ActionChunkData, spec) -> None:
    if chunk.embodiment != spec.name and chunk.embodiment not in getattr(spec, "aliases", ()):
        raise ChunkError(f"chunk embodiment '{chunk.embodiment}' != adapter embodiment '{spec.name}'")
    values = np.asarray(chunk.values)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ChunkError(f"chunk values must be (horizon >= 1, dim), got shape {values.shape}")
    if values.shape[1] != len(spec.slot_names):
        raise ChunkError(f"chunk dimension {values.shape[1]} != {len(spec.slot_names)} slots of '{spec.name}'")
    if list(chunk.slot_names) != list(spec.slot_names):
        if len(chunk.slot_names) != len(spec.slot_names):
            raise ChunkError(f"chunk names {len(chunk.slot_names)} slots, '{spec.name}' has {len(spec.slot_names)}")
        k = next(i for i, (a, b) in enumerate(zip(chunk.slot_names, spec.slot_names)) if a != b)
        raise ChunkError(f"chunk slot {k} is '{chunk.slot_names[k]}', expected '{spec.slot_names[k]}'")
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, col = bad[0]
        raise ChunkError(f"chunk has {len(bad)} non-finite values (first: row {row}, slot '{spec.slot_names[col]}')")
    if not (np.isfinite(chunk.step_period) and chunk.step_period > 0):
        raise ChunkError(f"chunk step_period {chunk.step_period} must be finite and > 0")
