"""Backend 'official': the action chunk from a running official Kairos inference service (/infer).

Each prediction sends the newest observation (its robot state in `official_state_layout`, its
composed image, its instruction) and maps the returned (horizon, D) float32 actions, in
`official_action_layout`, onto the embodiment's unified slots. The service keeps whatever history
it keeps; this backend keeps none (reset() only clears the counter). Predicted frames: none (the
service's 'video' mode writes a video file on its own machine, which is not readable from here).

The protocol is pickle: the backend refuses to start unless `official_allow_pickle` is true, and
decodes replies only with the restricted unpickler (kairos_ros/remote/official_client.py).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from kairos_ros.backends.base import Backend, _check_history
from kairos_ros.backends.baselines import observed_slots
from kairos_ros.core.action_space import from_layout, to_layout
from kairos_ros.core.types import ActionChunkData, ObservationData, PredictionData
from kairos_ros.remote.official_client import PICKLE_REFUSAL, OfficialClient


class OfficialBackend(Backend):
    name = "official"

    def __init__(self, spec, num_predicted_frames: int = 0, official_url: str = "http://127.0.0.1:8000",
                 official_allow_pickle: bool = False, official_timeout: float = 5.0,
                 official_max_reply_bytes: int = 16 * 1024 * 1024, official_steps: int = 20,
                 official_state_layout: Sequence[str] = (), official_action_layout: Sequence[str] = (),
                 official_ca_file: str = ""):
        super().__init__(spec, 0)  # no predicted frames: see the module docstring
        if official_allow_pickle is not True:
            raise ValueError(f"backend 'official' refused to start: {PICKLE_REFUSAL}")
        if not 1 <= int(official_steps) <= 1000:
            raise ValueError(f"official_steps {official_steps} must be in [1, 1000]")
        self.state_layout = tuple(official_state_layout) or tuple(spec.slot_names)
        self.action_layout = tuple(official_action_layout) or tuple(spec.slot_names)
        to_layout(np.zeros(len(spec.slot_names)), spec.slot_names, self.state_layout)  # ValueError names unknown slots
        uncovered = [s for s in spec.slot_names if s not in self.action_layout]
        if uncovered or len(set(self.action_layout)) != len(self.action_layout):
            raise ValueError(f"official_action_layout {list(self.action_layout)} must name each of the embodiment's "
                             f"slots once (missing: {uncovered})")
        from_layout(np.zeros((1, len(self.action_layout))), self.action_layout, spec.slot_names)
        self.steps = int(official_steps)
        self.client = OfficialClient(official_url, allow_pickle=official_allow_pickle, timeout=official_timeout,
                                     max_reply_bytes=official_max_reply_bytes, ca_file=official_ca_file)
        self.model = f"official Kairos service at {official_url}"
        self.last_latency = 0.0

    def check_observation(self, obs: ObservationData) -> None:
        if obs.composed is None:
            raise ValueError("observation without a composed image")
        if obs.composed.dtype != np.uint8 or obs.composed.ndim != 3 or obs.composed.shape[2] != 3:
            raise ValueError(f"composed image {obs.composed.dtype} {obs.composed.shape} is not (H, W, 3) uint8")

    def predict(self, history: Sequence[ObservationData], horizon: int, step_period: float) -> PredictionData:
        _check_history(history)
        last = history[-1]
        self.check_observation(last)
        state = to_layout(observed_slots(self.spec, last), self.spec.slot_names, self.state_layout)
        reply = self.client.infer(state, horizon, last.composed, last.instruction or "",
                                  action_dim=len(self.action_layout), num_inference_steps=self.steps)
        values = from_layout(reply.action, self.action_layout, self.spec.slot_names).astype(np.float32)
        self.last_latency = reply.latency
        self.world_state_frames = len(history)
        chunk = ActionChunkData(last.stamp, self.spec.name, list(self.spec.slot_names), values, step_period,
                                self.name, self.model)
        return PredictionData(last.stamp, [], [], chunk, latency=reply.latency)


def make_official(spec, **params) -> OfficialBackend:
    """The registry's factory (backends/__init__.py): an unknown parameter becomes a ValueError naming it."""
    try:
        return OfficialBackend(spec, **params)
    except TypeError as exc:
        raise ValueError(f"backend 'official': bad parameters {sorted(params)}: {exc}") from exc
