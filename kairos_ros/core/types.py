"""Plain data types passed between the core logic, the backends and the nodes.

They mirror the kairos_msgs interfaces without importing ROS, so the offline evaluator and the
tests use exactly the code the nodes run. Times are float seconds (ROS time as sec + nanosec/1e9).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class JointStateData:
    stamp: float
    names: list[str]
    positions: np.ndarray  # (J,) float64
    velocities: np.ndarray | None = None  # (J,) float64 or None when not reported


@dataclass
class ObservationData:
    """One synchronised observation: per-camera RGB frames plus the robot state."""

    stamp: float
    camera_names: list[str]
    images: list[np.ndarray]  # each (H, W, 3) uint8 RGB, already resized to its layout tile
    joint_state: JointStateData
    instruction: str = ""
    composed: np.ndarray | None = None  # (H, W, 3) uint8: the model's input layout
    image_stamps: list[float] = field(default_factory=list)  # capture stamp of each camera frame


@dataclass
class ActionChunkData:
    """A chunk of future actions in the unified action space of one embodiment."""

    stamp: float  # stamp of the observation it was predicted from
    embodiment: str
    slot_names: list[str]
    values: np.ndarray  # (horizon, dim) float32, row-major
    step_period: float  # seconds between consecutive rows; row k stands for stamp + (k+1) * period
    backend: str = ""
    model: str = ""

    @property
    def horizon(self) -> int:
        return int(self.values.shape[0])

    @property
    def dim(self) -> int:
        return int(self.values.shape[1])


@dataclass
class PredictionData:
    """What a backend returns for one control step."""

    stamp: float
    frames: list[np.ndarray]  # predicted composed frames, (H, W, 3) uint8 RGB
    frame_times: list[float]  # seconds after stamp that each frame stands for
    chunk: ActionChunkData
    latency: float = 0.0  # seconds spent in the backend
    extras: dict = field(default_factory=dict)
