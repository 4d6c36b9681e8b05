"""The scripted ALOHA experts' joint plans are feasible for the robot: within 0.8 x the embodiment's
velocity and acceleration limits (finite differences at the plan's 50 Hz, fingers included),
starting at the reset state, and executable through the closed loop's adapter gates."""
from pathlib import Path

import numpy as np
import pytest

from kairos_ros.lib.sim.render import ensure_gl

ensure_gl()  # before mujoco is imported

from kairos_ros.core.embodiment import load_embodiment, state_to_slots  # noqa: E402
from kairos_ros.core.types import ActionChunkData, PredictionData  # noqa: E402
from kairos_ros.lib.sim.aloha import FOLLOWERS, JOINT_NAMES  # noqa: E402
from kairos_ros.lib.sim.aloha_expert import limit_ratios, retime  # noqa: E402
from kairos_ros.lib.sim.closed_loop import CLOCK_OFFSET, FastEpisode, load_profile  # noqa: E402
from kairos_ros.lib.sim.oracle import ExpertReplayBackend  # noqa: E402
from kairos_ros.lib.sim.registry import make_expert, make_task  # noqa: E402

PROFILE = Path(__file__).resolve().parents[2] / "config" / "aloha.yaml"
MARGIN = 0.8


def _limits(spec):
    """(velocity, acceleration) limits per task joint (a follower finger takes its leader's)."""
    index = {n: i for i, n in enumerate(spec.joint_names)}
    names = list(JOINT_NAMES)
    for follower, leader in FOLLOWERS.items():
        names[follower] = names[leader]
    cols = [index[n] for n in names]
    return np.asarray(spec.max_velocity)[cols], np.asarray(spec.max_acceleration)[cols]


@pytest.mark.parametrize("task_name", ["aloha_transfer_cube", "aloha_insertion"])
def test_plan_within_limits_and_starts_at_reset(task_name):
    task, expert = make_task(task_name), make_expert(task_name)
    spec = load_embodiment(task.info.embodiment)
    vmax, amax = _limits(spec)
    try:
        for seed in (0, 7):
            task.reset(seed)
            reset_state = task.joint_state()[0]
            expert.reset(task, seed)
            plan = expert.plan
            assert plan.shape == (task.max_steps, 16) and np.all(np.isfinite(plan))
            assert expert.plan_length <= task.max_steps, "the retimed motion is cut short by the episode's end"
            # the first target is where the robot is: nothing to snap to
            assert np.abs(plan[0] - reset_state).max() < 0.05
            # from the reset state through the whole plan (the first step included)
            v, a = limit_ratios(np.vstack([reset_state[None], plan]), vmax, amax, task.info.control_period)
            assert v.max() <= MARGIN, f"seed {seed}: {JOINT_NAMES[int(v.argmax())]} at {v.max():.2f} x max_velocity"
            assert a.max() <= MARGIN, f"seed {seed}: {JOINT_NAMES[int(a.argmax())]} at {a.max():.2f} x max_acceleration"
            assert np.all(plan >= task.lower - 1e-6) and np.all(plan <= task.upper + 1e-6)
            assert np.allclose(plan[:, 7], -plan[:, 6]) and np.allclose(plan[:, 15], -plan[:, 14])
    finally:
        task.close()


def test_retime_bounds_a_fast_path_and_keeps_its_positions():
    """A path that jumps a radian in a few steps comes out slower, within the limits, through the
    same positions in the same order, from the same start to the same end."""
    t = np.linspace(0.0, 1.0, 20)
    path = np.stack([t, -2 * t, np.zeros_like(t)], axis=1)
    vmax, amax = np.array([1.0, 1.0, 1.0]), np.array([5.0, 5.0, 5.0])
    out = retime(path, vmax, amax, 0.02)
    v, a = limit_ratios(out, vmax, amax, 0.02)
    assert v.max() <= 1.0 and a.max() <= 1.0
    assert len(out) > len(path)
    assert np.allclose(out[0], path[0]) and np.allclose(out[-1], path[-1], atol=1e-9)
    assert np.all(np.diff(out[:, 0]) >= -1e-12)  # monotone: never goes back along the path
    assert np.allclose(out[:, 1], -2 * out[:, 0])  # the joints stay coordinated


def _episode(backend_class, task_name="aloha_transfer_cube"):
    task = make_task(task_name)
    spec = load_embodiment(task.info.embodiment)
    profile = load_profile(str(PROFILE), "hold", spec.name, {"num_predicted_frames": 0})
    backend = backend_class(spec, task, make_expert(task_name), CLOCK_OFFSET)
    return task, FastEpisode(task, backend, profile)


class InterpolatingReplay(ExpertReplayBackend):
    """expert_replay reading the plan at the chunk's own times (linear between the 50 Hz rows)."""

    def predict(self, history, horizon, step_period):
        last = history[-1]
        plan = self.expert.plan
        period = self.task.info.control_period
        u = np.clip((last.stamp - self.clock_offset + step_period * (np.arange(horizon) + 1)) / period,
                    0, len(plan) - 1)
        i = np.minimum(np.floor(u).astype(int), len(plan) - 2)
        f = (u - i)[:, None]
        joints = (plan[i] + f * (plan[i + 1] - plan[i]))[:, self.columns]
        values = np.stack([state_to_slots(self.spec, q) for q in joints]).astype(np.float32)
        chunk = ActionChunkData(last.stamp, self.spec.name, list(self.spec.slot_names), values, step_period,
                                self.name, self.model)
        return PredictionData(last.stamp, [], [], chunk)


def test_plan_passes_the_adapter_gates_in_closed_loop():
    """About 4 s: one transfer-cube episode, the plan sent as 32-row chunks at 10 Hz through the
    armed adapter's gates and the controller executor; every chunk is executed and the cube is
    transferred."""
    task, episode = _episode(InterpolatingReplay)
    try:
        result = episode.run(1)
    finally:
        task.close()
    assert result.refusals == {} and result.rejected_by_controller == 0
    assert result.trajectories == result.chunks > 0
    assert result.success and result.max_reward == 4


def test_expert_replay_succeeds_in_closed_loop():
    """About 4 s: the project's own expert_replay backend through FastEpisode."""
    task, episode = _episode(ExpertReplayBackend)
    try:
        result = episode.run(1)
    finally:
        task.close()
    assert result.refusals == {}
    assert result.success
