"""Honest baselines. They stay forever as evaluation references for the learned model.

- hold: nothing moves. Every predicted frame is the last observed frame and every action row is
  the current state.
- extrapolate: constant-velocity joint extrapolation. The velocity is the least-squares slope of
  the last `fit_window` observed states against their stamps (robust to one noisy sample), or the
  newest observation's reported joint velocities when only one state is known. Frames are the
  last frame repeated (no image model).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from kairos_ros.backends.base import Backend, _check_history
from kairos_ros.core.embodiment import slots_to_joints, state_to_slots
from kairos_ros.core.joints import fit_velocity
from kairos_ros.core.types import ActionChunkData, ObservationData, PredictionData


def observed_slots(spec, obs: ObservationData) -> np.ndarray:
    """The observation's joint state as the embodiment's slot values (float64)."""
    names = list(obs.joint_state.names)
    q = np.array([obs.joint_state.positions[names.index(j)] for j in spec.joint_names])
    return state_to_slots(spec, q).astype(np.float64)


def slot_velocity(spec, history: Sequence[ObservationData], fit_window: int) -> np.ndarray:
    """Slot velocities (slot units/s) at the newest observation: the least-squares slope of the
    last `fit_window` observed states against their stamps; with one state (or equal stamps), the
    newest joint state's reported velocities, else zeros."""
    recent = list(history)[-fit_window:]
    v = fit_velocity([o.stamp for o in recent], np.stack([observed_slots(spec, o) for o in recent]))
    if v is not None:
        return v
    js = recent[-1].joint_state
    if js.velocities is not None and len(js.velocities) and np.all(np.isfinite(js.velocities)):
        names = list(js.names)
        vel = np.array([js.velocities[names.index(j)] for j in spec.joint_names], dtype=np.float64)
        return vel / spec.slot_scale  # joint units/s -> slot units/s (grippers map 0..1)
    return np.zeros(len(spec.slot_names))


class HoldBackend(Backend):
    name = "hold"
    model = "baseline:hold (no learned model)"

    def predict(self, history: Sequence[ObservationData], horizon: int, step_period: float) -> PredictionData:
        _check_history(history)
        last = history[-1]
        self.world_state_frames = len(history)
        values = np.tile(observed_slots(self.spec, last), (horizon, 1)).astype(np.float32)
        frames, times = self._frame_plan(last, horizon, step_period)
        chunk = ActionChunkData(last.stamp, self.spec.name, list(self.spec.slot_names), values, step_period,
                                self.name, self.model)
        return PredictionData(last.stamp, frames, times, chunk)


class ExtrapolateBackend(Backend):
    name = "extrapolate"
    model = "baseline:constant-velocity extrapolation (no learned model)"

    def __init__(self, spec, num_predicted_frames: int = 4, fit_window: int = 3):
        super().__init__(spec, num_predicted_frames)
        if fit_window < 2:
            raise ValueError(f"fit_window {fit_window} must be >= 2")
        self.fit_window = fit_window

    def velocity(self, history: Sequence[ObservationData]) -> np.ndarray:
        return slot_velocity(self.spec, history, self.fit_window)

    def predict(self, history: Sequence[ObservationData], horizon: int, step_period: float) -> PredictionData:
        _check_history(history)
        last = history[-1]
        self.world_state_frames = len(history)
        q0 = observed_slots(self.spec, last)
        steps = (np.arange(horizon) + 1.0)[:, None] * step_period
        joints = slots_to_joints(self.spec, q0 + steps * self.velocity(history))
        values = state_to_slots(self.spec, np.clip(joints, self.spec.lower, self.spec.upper))
        frames, times = self._frame_plan(last, horizon, step_period)
        chunk = ActionChunkData(last.stamp, self.spec.name, list(self.spec.slot_names),
                                values.astype(np.float32), step_period, self.name, self.model)
        return PredictionData(last.stamp, frames, times, chunk)
