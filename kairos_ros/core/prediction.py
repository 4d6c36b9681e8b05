"""What the world model checks in a backend's prediction before anything of it is published.

A control chunk must be a valid chunk for the node's embodiment (core.chunks.validate_chunk: slots,
dimension, finite values, step period) with exactly `horizon` rows; predicted frames must be
finite. A prediction that fails is refused with BadPrediction, whose message names the reason.
Pure logic.
"""
from __future__ import annotations

import numpy as np

from kairos_ros.core.chunks import ChunkBounds, ChunkError, validate_chunk

# Every chunk the world model's parameters allow (horizon <= 1024 rows, step_period <= 10 s): the
# node refuses malformed chunks here; the adapter applies its own, tighter bounds.
PREDICTION_BOUNDS = ChunkBounds(max_rows=1024, max_step_period=10.0, max_duration=1024 * 10.0)


class BadPrediction(ValueError):
    """A prediction the node refuses to publish (wrong shape, non-finite values or frames)."""


def check_prediction_chunk(chunk, spec, horizon: int, bounds: ChunkBounds = PREDICTION_BOUNDS) -> None:
    """Raise BadPrediction unless `chunk` is valid for `spec` and has `horizon` rows."""
    try:
        validate_chunk(chunk, spec, bounds)
    except ChunkError as exc:
        raise BadPrediction(str(exc)) from exc
    rows = np.asarray(chunk.values).shape[0]
    if rows != horizon:
        raise BadPrediction(f"chunk horizon {rows} rows != horizon {horizon}")


def check_frames(frames) -> None:
    """Raise BadPrediction when any predicted frame holds a non-finite value."""
    if any(not np.all(np.isfinite(np.asarray(f, dtype=np.float32))) for f in frames):
        raise BadPrediction("non-finite predicted frames")
