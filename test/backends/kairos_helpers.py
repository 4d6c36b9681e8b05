"""Helpers for the backend tests: embodiments built in the test (independent of the bundled robots,
which change), observations with random frames."""
import numpy as np

from kairos_ros.core.action_space import ROBOTWIN_SLOTS  # noqa: F401 (re-exported for the fixtures)
from kairos_ros.core.embodiment import EmbodimentSpec
from kairos_ros.core.types import JointStateData, ObservationData


def make_spec(slots, name="robot"):
    """An embodiment whose joint k (j0, j1, ...) drives slot k one to one, limits +-1. Built directly
    (no URDF): only what the backends read."""
    n = len(slots)
    return EmbodimentSpec(name=name, description="test robot", joint_names=tuple(f"j{k}" for k in range(n)),
                          slot_names=tuple(slots), lower=-np.ones(n), upper=np.ones(n), max_velocity=2 * np.ones(n),
                          ignore_joints=(), controller_topic="/ctrl/joint_trajectory", control_period=0.01,
                          default_step_period=0.05, max_acceleration=10 * np.ones(n), slot_offset=np.zeros(n),
                          slot_scale=np.ones(n))


def obs(spec, t, size=(64, 80), q=None, instruction="pick up the cube"):
    q = np.zeros(len(spec.joint_names)) if q is None else np.asarray(q, float)
    js = JointStateData(t, list(spec.joint_names), q)
    frame = np.random.default_rng(int(t * 10)).integers(0, 255, size + (3,), dtype=np.uint8)
    return ObservationData(t, ["head"], [frame], js, instruction, composed=frame)
