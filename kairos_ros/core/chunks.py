"""Validation of an action chunk against the embodiment it is meant for, and the bounds on every
count and duration of a chunk that can reach a message (rows, step period, total duration)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kairos_ros.core.types import ActionChunkData


class ChunkError(ValueError):
    """A chunk that must not be executed; the message names the reason."""


@dataclass(frozen=True)
class ChunkBounds:
    """Largest chunk a consumer accepts. The defaults cover every shipped profile many times over
    (32 rows x 0.05 s) and keep every time_from_start far inside the int32 seconds of a Duration."""
    max_rows: int = 1024
    max_step_period: float = 1.0  # s
    max_duration: float = 60.0  # s: rows x step period

    def __post_init__(self):
        if not (isinstance(self.max_rows, int) and 1 <= self.max_rows <= 1_000_000):
            raise ValueError(f"max_chunk_rows = {self.max_rows} must be an integer in [1, 1000000]")
        for name, top in (("max_step_period", 3600.0), ("max_duration", 86400.0)):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= top):
                raise ValueError(f"{name} = {value} must be in (0, {top}]")


DEFAULT_BOUNDS = ChunkBounds()


def check_declared_size(horizon: int, dim: int, bounds: ChunkBounds = DEFAULT_BOUNDS, max_dim: int = 4096) -> None:
    """Refuse a chunk's declared horizon and dimension before anything is allocated for them."""
    if not 1 <= horizon <= bounds.max_rows:
        raise ChunkError(f"chunk horizon {horizon} rows is outside [1, max_chunk_rows {bounds.max_rows}]")
    if not 1 <= dim <= max_dim:
        raise ChunkError(f"chunk dim {dim} is outside [1, {max_dim}]")


def validate_chunk(chunk: ActionChunkData, spec, bounds: ChunkBounds = DEFAULT_BOUNDS) -> None:
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
    if values.shape[0] > bounds.max_rows:
        raise ChunkError(f"chunk horizon {values.shape[0]} rows > max_chunk_rows {bounds.max_rows}")
    if chunk.step_period > bounds.max_step_period:
        raise ChunkError(f"chunk step_period {chunk.step_period:.6g} s > max_step_period {bounds.max_step_period} s")
    total = values.shape[0] * chunk.step_period
    if total > bounds.max_duration:
        raise ChunkError(f"chunk duration {values.shape[0]} rows x {chunk.step_period:.6g} s = {total:.6g} s > "
                         f"max_trajectory_duration {bounds.max_duration} s")
