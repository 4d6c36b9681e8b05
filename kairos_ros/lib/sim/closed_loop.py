"""Closed-loop evaluation in fast mode: a simulated task driven by a backend called directly.

The graph's own code does each step, without processes or DDS: the perception pipeline composes
the cameras as the profile says, the world model's observation history feeds the backend, the
adapter's ChunkPlanner (blending, safety gates, armed) turns each chunk into a trajectory and the
joint_trajectory_controller executor (core.jtc) plays it into the simulation. The simulation is
paused while the backend runs, so a slow model is judged on what it predicts, not on how long it
takes (the live mode, through the whole graph on sim time, judges both).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from kairos_ros.core.adapter import ChunkPlanner, planner_from_params
from kairos_ros.core.chunks import ChunkError
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.jtc import Trajectory, TrajectoryExecutor, TrajectoryPoint
from kairos_ros.core.joints import order_joint_state
from kairos_ros.core.observation import ObservationHistory
from kairos_ros.core.params import ParameterError
from kairos_ros.core.perception import PerceptionConfig, PerceptionPipeline
from kairos_ros.lib.sim.base import CAMERA_SIZE
from kairos_ros.lib.profile import Profile, load_profile, make_world_backend  # noqa: F401 (re-exported)

CLOCK_OFFSET = 1000.0  # s added to the sim clock: stamps never sit at zero (zero means "now" to a controller)


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    time_to_success: float | None
    duration: float
    max_reward: float
    chunks: int = 0
    trajectories: int = 0
    refusals: dict = field(default_factory=dict)  # gate (or "chunk") -> count
    rejected_by_controller: int = 0
    latencies: list = field(default_factory=list)  # s per backend call
    frames: list = field(default_factory=list)  # (H, W, 3) uint8 of the video camera, when asked


class FastEpisode:
    """One episode of one task under one backend (see the module docstring)."""

    def __init__(self, task, backend, profile: Profile, video_camera: str | None = None, video_size=(160, 120),
                 max_duration: float = 0.0):
        self.task = task
        self.backend = backend
        self.profile = profile
        self.spec = load_embodiment(task.info.embodiment)
        p, w = profile.perception, profile.world_model
        self.cameras = list(p["camera_names"]) or list(task.info.cameras)
        missing = [c for c in self.cameras if c not in task.info.cameras]
        if missing:
            raise ParameterError(f"profile '{profile.path}': cameras {missing} are not cameras of task "
                                 f"'{task.info.name}' ({list(task.info.cameras)})")
        self.capture = CAMERA_SIZE  # rendered as the sim node publishes, then cropped and resized by perception
        self.obs_period = 1.0 / float(p["rate_hz"])
        self.horizon = int(w["horizon"])
        self.step_period = float(w["step_period"] or self.spec.default_step_period)
        self.history_length = int(w["history_length"])
        self.video_camera = video_camera
        self.length = min(task.info.episode_length, max_duration) if max_duration > 0 else task.info.episode_length
        self.video_size = video_size
        self.controlled = list(self.spec.joint_names)
        index = {n: i for i, n in enumerate(task.joint_names)}
        self.to_task = [index[n] for n in self.controlled]
        lower = np.asarray(task.lower)[self.to_task]
        upper = np.asarray(task.upper)[self.to_task]
        self.executor_limits = (np.maximum(lower, self.spec.lower), np.minimum(upper, self.spec.upper))

    def _perception(self) -> PerceptionPipeline:
        p = self.profile.perception
        return PerceptionPipeline(PerceptionConfig(self.cameras, list(self.spec.joint_names), list(self.spec.ignore_joints),
                                                   p["layout"], int(p["tile_width"]), int(p["tile_height"]),
                                                   float(p["slop"]), int(p["queue_size"]),
                                                   camera_crops=list(p.get("camera_crops") or [])))

    def run(self, seed: int) -> EpisodeResult:
        task, spec = self.task, self.spec
        task.reset(seed)
        self.backend.reset()
        if hasattr(self.backend, "start_episode"):  # a privileged reference (lib/sim/oracle.py)
            self.backend.start_episode(seed)
        pipeline = self._perception()
        pipeline.instruction = self.profile.world_model["instruction"] or task.info.instruction
        history = ObservationHistory(self.history_length)
        planner = planner_from_params(spec, self.profile.adapter, armed=True)  # as the adapter node builds it
        lo, hi = self.executor_limits
        executor = TrajectoryExecutor(self.controlled, lo, hi, spec.max_velocity)
        positions, velocities = self._state()
        executor.reset(positions, CLOCK_OFFSET + task.time)
        result = EpisodeResult(seed, False, None, 0.0, 0.0)
        next_obs = 0.0
        full = np.zeros(len(task.joint_names))
        while task.time < self.length - 1e-9:
            now = CLOCK_OFFSET + task.time
            if task.time >= next_obs - 1e-9:
                next_obs += self.obs_period
                self._observe(pipeline, history, now, result)
                if history.latest is not None and history.latest.stamp == now:
                    self._control(history, planner, executor, now, result)
            full[:] = 0.0
            full[self.to_task] = executor.sample(now)
            task.step(full)
            reward = float(task.reward())
            result.max_reward = max(result.max_reward, reward)
            if task.success() and not result.success:
                result.success, result.time_to_success = True, task.time
        result.duration = task.time
        return result

    def _state(self):
        pos, vel = self.task.joint_state()
        return order_joint_state(list(self.task.joint_names), pos, vel, list(self.spec.joint_names),
                                 list(self.spec.ignore_joints))

    def _observe(self, pipeline, history, now: float, result: EpisodeResult) -> None:
        w, h = self.capture
        for cam in self.cameras:
            pipeline.add_rgb(cam, now, self.task.render(cam, w, h))
        pos, vel = self.task.joint_state()
        pipeline.add_joint_state(now, self.task.joint_names, pos, vel)
        obs = pipeline.poll()
        if obs is not None:
            history.add(obs)
        if self.video_camera:
            result.frames.append(self.task.render(self.video_camera, *self.video_size))

    def _control(self, history, planner: ChunkPlanner, executor: TrajectoryExecutor, now: float,
                 result: EpisodeResult) -> None:
        start = time.perf_counter()
        pred = self.backend.predict(history.snapshot(), self.horizon, self.step_period)
        result.latencies.append(time.perf_counter() - start)
        result.chunks += 1
        positions, _ = self._state()
        try:
            plan = planner.plan(pred.chunk, positions, now, now)
        except (ValueError, ChunkError) as exc:
            gate = getattr(exc, "gate", None) or "chunk"
            result.refusals[gate] = result.refusals.get(gate, 0) + 1
            return
        traj = Trajectory(self.controlled, now, [TrajectoryPoint(float(t), list(p), list(v))
                                                 for t, p, v in zip(plan.times, plan.positions, plan.velocities)])
        verdict = executor.submit(traj, now)
        if not verdict.accepted:
            result.rejected_by_controller += 1
            return
        planner.accept(pred.chunk, plan, now)
        result.trajectories += 1
