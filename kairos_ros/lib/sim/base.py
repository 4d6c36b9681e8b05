"""The interface every simulated task scene and scripted expert implements.

A SimTask is one robot in one scene with a measurable success. Time advances only through
`step`, one control period at a time, so callers decide the real-time factor (the ROS driver) or
pause the simulation during inference (fast closed-loop evaluation). Joint names and units are
those the robot's adapter uses on /joint_states (urdf_adapters/<embodiment>/adapter.yaml), so the
same graph drives a simulated and a real robot.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

# Resolution of every simulated camera: what the sim node publishes by default, what kairos-sim
# record writes by default and what fast closed-loop evaluation renders, so that a model sees
# the same frames in training, in fast evaluation and in the live graph (perception then crops
# and resizes them as on a real robot).
CAMERA_SIZE = (320, 240)


@dataclass(frozen=True)
class TaskInfo:
    name: str  # registry name, e.g. "aloha_transfer_cube"
    embodiment: str  # adapter folder under urdf_adapters/ (aloha, franka_panda, shadow_hand)
    cameras: tuple  # camera names, in the order the bringup profile lists them
    control_period: float  # s between step() calls (the robot's controller rate)
    episode_length: float  # s: an episode ends unsuccessful after this long
    instruction: str  # the task's instruction for the model
    description: str = ""


class SimTask(ABC):
    info: TaskInfo
    joint_names: list  # every joint published on /joint_states, in order
    lower: np.ndarray  # (J,) position limits of joint_names (from the same model)
    upper: np.ndarray

    @abstractmethod
    def reset(self, seed: int) -> None:
        """Start a new episode; the same seed gives the same initial scene, bit for bit."""

    @abstractmethod
    def step(self, targets: np.ndarray) -> None:
        """Advance one control period with position targets for joint_names (J,) (followers of a
        mimic coupling are ignored: their leader's target drives them)."""

    @abstractmethod
    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions (J,), velocities (J,)) of joint_names now."""

    @abstractmethod
    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        """(height, width, 3) uint8 RGB from one of info.cameras (fast mode: no shadows, no MSAA)."""

    @abstractmethod
    def reward(self) -> float:
        """The task's own reward now (as the task package defines it, where it does)."""

    @abstractmethod
    def success(self) -> bool:
        """The task's success signal now."""

    @property
    @abstractmethod
    def time(self) -> float:
        """Simulated seconds since reset."""

    def close(self) -> None:
        """Release renderers (EGL prints tracebacks at exit otherwise)."""


class Expert(ABC):
    """A scripted demonstrator for one task: position targets from the scene's privileged state."""

    @abstractmethod
    def reset(self, task: SimTask, seed: int) -> None:
        """Plan for the episode that task.reset(seed) just started."""

    @abstractmethod
    def act(self, task: SimTask) -> np.ndarray:
        """Position targets (J,) for the next control period."""
