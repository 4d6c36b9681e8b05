"""Training data for kairos-nano: synthetic episodes drawn exactly as the project's bags are.

An episode is what `kairos-make-bag --seed S` records for an embodiment: every joint follows the
smooth motion of lib/synthetic.py, and each camera renders the scene of lib/synthetic.py at
the bag's camera resolution and rate. Frames then go through the perception code (resize_rgb to
the layout's tiles, Layout.compose), so the model sees what the perception node publishes.
Episodes are pure functions of their seed; training seeds are kept apart from the seeds of the
bundled bags (EVAL_SEEDS) so that evaluating on those bags measures generalisation. Episodes
decoded from recorded bags (lib/dataset.py RecordedEpisode) share the base class and are used
the same way.

A sample at camera frame index n: the composed frames n-F+1..n (history, oldest first), the
robot state (slots) at frame n's time, its velocity as the backend estimates it (the least-squares
slope over the states of the last N camera frames, backends.baselines.slot_velocity), and the slot values at that time + k * step_period for
k = 1..H (what the action chunk should be; trained as offsets from the state), plus the next P
composed frames for video training. The chunk rows come from the episode's action series when it
has one (a bag decoded with an action topic: the commanded positions), else from its joint states.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kairos_ros.core.image import make_layout, resize_rgb
from kairos_ros.lib.dataset import Episode as BaseEpisode
from kairos_ros.lib.dataset import EpisodeConfig, RecordedEpisode  # noqa: F401  (re-exported)
from kairos_ros.lib.synthetic_bag import synthetic_robot

EVAL_SEEDS = frozenset(range(0, 100))  # the bundled demo and fixture bags use seeds below 100


class Episode(BaseEpisode):
    """Composed frames on the camera grid and the joint motion of one synthetic recording."""

    def __init__(self, spec, cfg: EpisodeConfig, seed: int):
        self.spec, self.cfg, self.seed = spec, cfg, seed
        self.source = f"synthetic seed {seed}"
        self.motion, scenes = synthetic_robot(spec, seed, cfg.camera_names, cfg.camera_width, cfg.camera_height)
        layout = make_layout(cfg.layout, list(cfg.camera_names), cfg.tile_width, cfg.tile_height)
        self.times = np.arange(int(cfg.duration * cfg.camera_rate)) / cfg.camera_rate  # (N,)
        u = self.motion.normalised(self.times)  # (N, J)
        frames = []
        for n in range(len(self.times)):
            tiles = [resize_rgb(s.render(u[n]), *layout.tile_size(k)) for k, s in enumerate(scenes)]
            frames.append(layout.compose(tiles))
        self.frames = np.stack(frames)  # (N, H, W, 3) uint8

    def joints(self, t) -> np.ndarray:
        return self.motion.positions(np.atleast_1d(np.asarray(t, dtype=np.float64)))


@dataclass
class Batch:
    episode: list  # (B,) episode indices
    index: list  # (B,) newest history frame index in its episode
    state: np.ndarray  # (B, D) float32 slots at the newest history frame
    actions: np.ndarray  # (B, A, D) float32 slots at t + k * step_period, k = 1..A
    velocity: np.ndarray | None = None  # (B, D) float32 fitted slot velocities (state_velocity > 0)
    history: np.ndarray | None = None  # (B, F, H, W, 3) uint8, oldest first (with_frames)
    future: np.ndarray | None = None  # (B, P, H, W, 3) uint8 (with_frames)


def window(frames, n: int, history: int):
    """frames n-history+1 .. n of an episode (oldest first); before its start the first frame is
    repeated, as the backend pads a short history (the robot at rest: KairosBackend.at_rest)."""
    first = n - history + 1
    if first >= 0:
        return frames[first:n + 1]
    return frames[[0] * -first + list(range(n + 1))]  # numpy arrays and torch tensors alike


def sample_batch(episodes: list[Episode], rng: np.random.Generator, batch: int, history: int, horizon: int,
                 step_period: float, future_frames: int = 0, with_frames: bool = True,
                 state_velocity: int = 0, start_fraction: float = 0.0) -> Batch:
    """Random windows from random episodes (each window, future included, fits in its episode).

    start_fraction: the share of windows drawn from an episode's first `history` frames, their
    history padded with the first frame (what the robot presents at rest when an episode starts;
    the state velocity is then fitted over the held first state, i.e. zero). Other windows start
    where a full history and velocity fit exist, as before."""
    eps, idx, state, actions, velocity = [], [], [], [], []
    for _ in range(batch):
        e = int(rng.integers(len(episodes)))
        ep = episodes[e]
        reach = max(future_frames, int(np.ceil(horizon * step_period * ep.cfg.camera_rate)))
        if len(ep.times) - reach <= history - 1:
            raise ValueError(f"episode of {len(ep.times)} frames is too short for {history} history frames and "
                             f"{reach} frames of future")
        if start_fraction > 0 and rng.random() < start_fraction:
            n = int(rng.integers(0, history))
        else:
            n = int(rng.integers(max(history, state_velocity) - 1, len(ep.times) - reach))
        t = ep.times[n]
        eps.append(e)
        idx.append(n)
        state.append(ep.slots([t])[0])
        actions.append(ep.action_slots(t + step_period * np.arange(1, horizon + 1)))
        if state_velocity:
            velocity.append(ep.slot_velocity(t, state_velocity))
    out = Batch(eps, idx, np.stack(state), np.stack(actions), np.stack(velocity) if velocity else None)
    if with_frames:
        out.history = np.stack([window(episodes[e].frames, n, history) for e, n in zip(eps, idx)])
        out.future = np.stack([episodes[e].frames[n + 1:n + 1 + future_frames] for e, n in zip(eps, idx)])
    return out


def slot_statistics(episodes: list[Episode], horizon: int, step_period: float, relative: bool = True,
                    samples: int = 500, seed: int = 0, state_velocity: int = 0) -> dict:
    """Per-slot mean/std/min/max in the Kairos stats JSON layout (`{state|action}/default/
    global_{mean,std,min,max}`, and `action/default/stepwise_*` with one row per chunk row): the
    state over the episodes (followed by the fitted velocities when state_velocity > 0), and the
    chunk rows (slots at t + k step_period, k = 1..horizon), minus the state at t when relative."""
    rng = np.random.default_rng(seed)
    states, actions = [], []
    for ep in episodes:
        t = rng.uniform(0, max(ep.times[-1] - horizon * step_period, 0.0), size=samples)
        rows = t[:, None] + step_period * np.arange(1, horizon + 1)  # (S, A)
        s = ep.slots(t)  # (S, D)
        a = ep.action_slots(rows.reshape(-1)).reshape(samples, horizon, -1)
        if state_velocity:
            states.append(np.concatenate([s, np.stack([ep.slot_velocity(x, state_velocity) for x in t])], axis=1))
        else:
            states.append(s)
        actions.append((a - s[:, None] if relative else a).reshape(-1, s.shape[-1]))
    stats = {}
    rows = np.concatenate(actions).reshape(-1, horizon, actions[0].shape[-1])  # (S, A, D)
    for which, values in (("state", np.concatenate(states)), ("action", rows.reshape(-1, rows.shape[-1]))):
        for key, fn in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)):
            stats[f"{which}/default/global_{key}"] = [float(v) for v in fn(values, axis=0)]
    for key, fn in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max)):  # per chunk row
        stats[f"action/default/stepwise_{key}"] = [[float(v) for v in row] for row in fn(rows, axis=0)]
    return stats
