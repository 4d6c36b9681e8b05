"""`expert_replay`: a privileged reference backend for closed-loop evaluation, not a model.

It reads the scripted expert's plan for the episode being run (the simulator's own state, which
no camera shows) and returns the plan's next rows as the action chunk. Run through the same
adapter gates and controller as any backend, it shows what the closed loop itself allows: the
ceiling a learnt model is measured against, and a check that the loop (perception timing, chunk
timing, blending, gates, interpolation) does not break a policy that is known to work.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from kairos_ros.backends.base import Backend
from kairos_ros.core.embodiment import state_to_slots
from kairos_ros.core.types import ActionChunkData, ObservationData, PredictionData


class ExpertReplayBackend(Backend):
    name = "expert_replay"
    model = "scripted expert's plan (privileged simulator state: a reference, not a model)"

    def __init__(self, spec, task, expert, clock_offset: float):
        super().__init__(spec, 0)
        self.task, self.expert, self.clock_offset = task, expert, clock_offset
        index = {n: i for i, n in enumerate(task.joint_names)}
        self.columns = [index[n] for n in spec.joint_names]

    def start_episode(self, seed: int) -> None:
        """Plan for the episode task.reset(seed) just started."""
        self.expert.reset(self.task, seed)

    def predict(self, history: Sequence[ObservationData], horizon: int, step_period: float) -> PredictionData:
        last = history[-1]
        plan = self.expert.plan  # (steps, joints) targets per control period
        t0 = last.stamp - self.clock_offset
        period = self.task.info.control_period
        # The plan read at each row's own time (linear between its 50 Hz rows): rounding to whole steps
        # would alternate 2 and 3 steps per 0.05 s row, an acceleration that is not in the plan.
        u = np.clip((t0 + step_period * (np.arange(horizon) + 1)) / period, 0, len(plan) - 1)
        i = np.minimum(np.floor(u).astype(int), max(len(plan) - 2, 0))
        f = (u - i)[:, None]
        j = np.minimum(i + 1, len(plan) - 1)
        joints = (plan[i] + f * (plan[j] - plan[i]))[:, self.columns]
        values = np.stack([state_to_slots(self.spec, q) for q in joints]).astype(np.float32)
        chunk = ActionChunkData(last.stamp, self.spec.name, list(self.spec.slot_names), values, step_period,
                                self.name, self.model)
        return PredictionData(last.stamp, [], [], chunk)
