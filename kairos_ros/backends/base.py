"""The backend interface the world-model node and the evaluators call."""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Sequence

from kairos_ros.core.types import ActionChunkData, ObservationData, PredictionData


@dataclass
class FrameJob:
    """The predicted frames of one prediction, made by `run()` -> (frames, frame_times), which a
    caller may run later on another thread (it works on snapshots, never on the backend's live
    state). `pending` is False when the frames are already made (or there are none): running it
    costs nothing. `stages`: seconds per stage of the chunk's path (backend-specific names).
    Setting `cancel` makes a running job give up between steps (it then returns no frames);
    `run(pause)` calls pause() between layers (a worker waits there while control runs)."""

    stamp: float
    chunk: ActionChunkData
    run: Callable[..., tuple]
    pending: bool = False
    stages: dict | None = None
    cancel: threading.Event = field(default_factory=threading.Event)


class Backend(ABC):
    """Turns an observation history (oldest first) into a PredictionData.

    Implementations keep whatever world state they need between calls and drop it in reset().
    They are called from one thread at a time.
    """

    name: str = ""
    model: str = ""

    def __init__(self, spec, num_predicted_frames: int = 4):
        if num_predicted_frames < 0:
            raise ValueError(f"num_predicted_frames {num_predicted_frames} must be >= 0")
        self.spec = spec
        self.num_predicted_frames = int(num_predicted_frames)
        self.world_state_frames = 0

    def reset(self) -> None:
        self.world_state_frames = 0

    def check_observation(self, obs: ObservationData) -> None:
        """Raise ValueError (naming the problem) for an observation this backend cannot take, so the
        node refuses it on intake. The baselines take any."""

    @abstractmethod
    def predict(self, history: Sequence[ObservationData], horizon: int, step_period: float) -> PredictionData:
        """Future frames and an action chunk of `horizon` rows for the newest observation."""

    def predict_staged(self, history: Sequence[ObservationData], horizon: int, step_period: float,
                       on_chunk: Callable[[ActionChunkData], None]) -> PredictionData:
        """predict(), calling on_chunk(chunk) as soon as the action chunk exists, before any slow
        part (predicted frames) is computed, so a caller can send the chunk to the robot at once.
        Backends that make the chunk last (the baselines: everything is fast) call it at the end."""
        pred = self.predict(history, horizon, step_period)
        on_chunk(pred.chunk)
        return pred

    def predict_deferred(self, history: Sequence[ObservationData], horizon: int, step_period: float,
                         on_chunk: Callable[[ActionChunkData], None]) -> FrameJob:
        """on_chunk(chunk) as soon as the chunk exists, then return the FrameJob that makes the
        predicted frames, so a caller can run it off the control path. Backends whose frames come
        with the chunk (the baselines, a remote server) return them already made."""
        pred = self.predict_staged(history, horizon, step_period, on_chunk)
        return FrameJob(pred.stamp, pred.chunk, lambda pause=None: (pred.frames, pred.frame_times))

    def imagine(self, history: Sequence[ObservationData], candidate: ActionChunkData) -> PredictionData:
        """The future if `candidate` were executed (the baselines only repeat the last frame)."""
        _check_history(history)
        last = history[-1]
        frames, times = self._frame_plan(last, candidate.horizon, candidate.step_period)
        chunk = ActionChunkData(last.stamp, candidate.embodiment, list(candidate.slot_names),
                                candidate.values.copy(), candidate.step_period, self.name, self.model)
        return PredictionData(last.stamp, frames, times, chunk)

    def _frame_plan(self, last: ObservationData, horizon: int, step_period: float):
        """The last frame repeated num_predicted_frames times, spread evenly over the horizon."""
        n = self.num_predicted_frames
        if last.composed is None or n == 0:
            return [], []
        span = horizon * step_period
        times = [span * (i + 1) / n for i in range(n)]
        return [last.composed] * n, times


def _check_history(history) -> None:
    if not history:
        raise ValueError("empty observation history: nothing to predict from")
