"""Observation history kept by the world model: a bounded window that resets on time jumps."""
from __future__ import annotations

from collections import deque

from kairos_ros.core.image import make_layout
from kairos_ros.core.types import ObservationData


def infer_tile(layout: str, images) -> tuple[int, int]:
    """(tile_width, tile_height) of a layout from its per-camera frames (robotwin: the wrists)."""
    ref = images[1] if layout == "robotwin" and len(images) > 1 else images[0]
    return int(ref.shape[1]), int(ref.shape[0])


def compose(layout: str, camera_names: list[str], images) -> "object":
    """Compose per-camera tiles (as carried by an Observation message) into the model input."""
    tile_w, tile_h = infer_tile(layout, images)
    return make_layout(layout, list(camera_names), tile_w, tile_h).compose(list(images))


class ObservationHistory:
    """The last `maxlen` observations, oldest first. A stamp that goes backwards clears it."""

    def __init__(self, maxlen: int):
        if maxlen < 1:
            raise ValueError(f"history length must be >= 1, got {maxlen}")
        self._items: deque[ObservationData] = deque(maxlen=maxlen)

    def add(self, obs: ObservationData) -> bool:
        """Append; returns True when the stamp went backwards and the history was reset first.

        An observation with the same stamp as the newest one replaces it (a re-sent duplicate).
        """
        if self._items and obs.stamp == self._items[-1].stamp:
            self._items[-1] = obs
            return False
        reset = bool(self._items) and obs.stamp < self._items[-1].stamp
        if reset:
            self._items.clear()
        self._items.append(obs)
        return reset

    def clear(self) -> None:
        self._items.clear()

    def snapshot(self) -> list[ObservationData]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def latest(self) -> ObservationData | None:
        return self._items[-1] if self._items else None
