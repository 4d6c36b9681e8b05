"""The `kairos` backend: the world-action model behind the world-model node.

Per observation: the composed frame is encoded to one latent frame and added to the temporal
memory (`streaming`: absorbed once into the world state, constant cost per frame; `official`:
the last `history_frames` latents re-encoded together, the released semantics). The robot state
(unified slots -> the model's state layout -> normalised) becomes the proprio token next to the
instruction's text tokens. The action chunk is sampled with flow-matching Euler steps (shift 5)
and denormalised back into the embodiment's slots.

Predicted frames (num_predicted_frames > 0, every `video_every`-th prediction): future latent
frames are sampled (model/future.py) and decoded through the codec into rgb8 frames of the input
size. The chunk never waits for them: it comes from action mode (in this architecture the joint
video+action loop's actions are action mode's, to float rounding), and `predict_deferred` returns
the frames as a FrameJob over snapshots (history latents or a world-state clone, the noise drawn
ahead from the same generator in the same order), which the node runs on a worker of its own;
`predict` runs it at once. Nothing is faked: a prediction without frames publishes none.

Speed on the control path (same outputs): in the official mode the history is encoded only as
far as the action expert reads (encode_history kv_only), each frame is encoded by the codec once
(its latent is kept), what does not change between flow steps is prepared once (action_path),
and each inference thread runs `threads` intra-op threads (1 by default: on two shared cores an
OpenMP team waits for a preempted worker at every small op; the frame worker takes the other
core). Seconds per stage of the last chunk are in `stages`.

Imagine: Kairos' video tokens never attend action tokens (MoT masks), so the predicted video does
NOT depend on a candidate chunk. `imagine` therefore returns the model's predicted future frames
for the history, the candidate unchanged, and a measure of how consistent the candidate is with
the model (model/scoring.py: its flow-matching denoising error under the action expert, with the
model's own chunk's error and the distance to it for reference), all stated in the message.

Bad input: a composed image whose size is not a multiple of 16 (or not image_width x image_height)
raises in `check_observation`, which the node calls on intake; a non-finite robot state, latent,
action or frame raises, so the node drops the prediction, counts it and resets the world state.
"""
from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from typing import Sequence

import numpy as np
import torch

from kairos_ros.backends.base import Backend, FrameJob, _check_history
from kairos_ros.backends.baselines import observed_slots, slot_velocity
from kairos_ros.backends.kairos_loading import check_digests, check_dit, load_parts, missing_parts
from kairos_ros.backends.kairos_setup import (PRESET_LAYOUTS, KairosOptions, check_size, identity, layouts, model_config,
                                              normalizers, resolve_device, resolve_dtype)
from kairos_ros.core.action_space import from_layout, to_layout
from kairos_ros.core.paths import resolve_resource
from kairos_ros.core.types import ActionChunkData, ObservationData, PredictionData
from kairos_ros.model.checkpoint import read_header
from kairos_ros.model.codecs import check_frame_size
from kairos_ros.model.config import get_preset
from kairos_ros.model.future import SCHEDULES, noise_shapes, sample_official, sample_streaming, to_rgb8
from kairos_ros.model.memory import TEMPORAL_MODES, WorldMemory
from kairos_ros.model.nano_format import dit_info
from kairos_ros.model.sampler import NoiseQueue, sample_actions
from kairos_ros.model.video_stack import pause_between_layers
from kairos_ros.model.scoring import SCORE_SIGMAS, denoising_error

RANDOM_WEIGHTS_WARNING = ("kairos backend running with RANDOM WEIGHTS (allow_random_weights): its predictions "
                          "are meaningless; for testing the plumbing only, never for a robot")
IMAGINE_NOTE = ("in Kairos video tokens never attend action tokens, so these frames are the model's future for the "
                "history and do not depend on the candidate")


def _check_options(o: KairosOptions) -> None:
    checks = [("temporal_mode", o.temporal_mode in TEMPORAL_MODES, f"one of {list(TEMPORAL_MODES)}"),
              ("video_schedule", o.video_schedule in SCHEDULES, f"one of {list(SCHEDULES)}"),
              ("normalization", o.normalization in ("zscore", "minmax"), "one of ['zscore', 'minmax']"),
              ("history_frames", 1 <= o.history_frames <= 64, "in [1, 64] (official mode re-encodes them all)"),
              ("flow_steps", o.flow_steps >= 1, ">= 1"), ("video_steps", o.video_steps >= 0, ">= 0"),
              ("video_every", o.video_every >= 1, ">= 1"), ("frame_period", o.frame_period >= 0, ">= 0"),
              ("max_frames_per_step", o.max_frames_per_step >= 1, ">= 1"),
              ("text_drop_tokens", o.text_drop_tokens >= 0, ">= 0"),
              ("action_noise_scale", 0.0 <= o.action_noise_scale <= 1.0, "in [0, 1]")]
    for name, ok, rule in checks:
        if not ok:
            raise ValueError(f"parameter '{name}' = {getattr(o, name)!r} must be {rule}")
    w, h = o.image_width, o.image_height
    if (w or h) and (w <= 0 or h <= 0 or w % 16 or h % 16):
        raise ValueError(f"parameters image_width x image_height = {w}x{h}: both must be positive multiples of 16 "
                         "(or both 0: any size that is)")


RESOURCE_PARAMS = ("dit_checkpoint", "codec_checkpoint", "text_checkpoint", "action_stats")
TRAINED_FOR = ("temporal_mode", "history_frames", "image_width", "image_height", "frame_period")


def check_trained_for(o: KairosOptions, info) -> None:
    """Weights trained for one temporal mode, history or image size predict garbage under another:
    refuse, naming the parameter, the value given and the value the checkpoint was trained for."""
    trained = (info.trained_for if info else None) or {}
    wrong = [(k, getattr(o, k), trained[k]) for k in TRAINED_FOR if k in trained and getattr(o, k) != trained[k]]
    if wrong:
        given = ", ".join(f"{k} = {v!r}" for k, v, _ in wrong)
        need = " ".join(f"{k}:={t}" for k, _, t in wrong)
        raise ValueError(f"parameter 'dit_checkpoint' = '{o.dit_checkpoint}' was trained for {need}, but {given}: "
                         f"set {need}")


class KairosBackend(Backend):
    name = "kairos"

    def __init__(self, spec, num_predicted_frames: int = 0, **params):
        super().__init__(spec, num_predicted_frames)
        for key in RESOURCE_PARAMS:  # package://kairos_ros/... -> the bundled file
            if isinstance(params.get(key), str):
                params[key] = resolve_resource(params[key], f"parameter '{key}'")
        self.opts = o = KairosOptions(**params)  # TypeError on an unknown parameter (the registry names it)
        _check_options(o)
        self.device = resolve_device(o.device)
        self.dtype = resolve_dtype(o.dtype, self.device)
        check_size(get_preset(o.model_preset), self.device, o.allow_large_preset_on_cpu)
        check_digests(o)  # the configured digests before anything of a checkpoint is read
        header = read_header(o.dit_checkpoint) if o.dit_checkpoint else None
        info = dit_info(header) if header else None
        check_trained_for(o, info)
        self.action_slots, self.state_slots = layouts(spec, o, info)
        self.relative = bool(info and info.action_reference == "state")  # actions = state + offsets
        self.state_velocity = info.state_velocity if info else 0  # proprio = state + velocities over N observations
        self.reference: np.ndarray | float = 0.0
        cfg = model_config(o, self.action_slots, self.state_slots, info)
        if header:
            check_dit(cfg, header)
        missing = missing_parts(o)
        self.action_norm, self.state_norm = normalizers(o, info, self.action_slots, self.state_slots,
                                                        trained="dit_checkpoint" not in missing)
        parts = load_parts(cfg, o, self.device, self.dtype, missing, official=o.model_preset in PRESET_LAYOUTS)
        self.net, self.codec, self.text = parts.net.requires_grad_(False), parts.codec, parts.text
        self.random_parts = parts.random_parts
        shown = [p.replace("_checkpoint", "") for p in self.random_parts]
        self.startup_warning = f"{RANDOM_WEIGHTS_WARNING} (random: {shown})" if shown else ""
        self.model = o.model_preset + (f" (RANDOM WEIGHTS: {', '.join(shown)})" if shown
                                       else f" ({os.path.basename(o.dit_checkpoint)})")
        self.video_steps = o.video_steps or o.flow_steps
        self.image_size = (o.image_width, o.image_height) if o.image_width else None
        self.memory = WorldMemory(self.net, o.temporal_mode, o.history_frames,
                                  action_frames=o.history_frames if o.temporal_mode == "streaming" else 1)
        self.generator = torch.Generator().manual_seed(o.seed)
        self.skipped_frames = 0
        self.predictions = 0
        self.stages: dict = {}  # seconds per stage of the last chunk (encode, history, sample, output)
        self._text_cache: tuple | None = None
        self._threads = threading.local()
        self.reset()

    # -- state ----------------------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self.memory.reset()
        self.cache = None
        self.last_stamp: float | None = None

    @property
    def state(self):
        """The streaming world state (official mode keeps only its frame counter)."""
        return self.memory.state

    def check_observation(self, obs: ObservationData) -> None:
        """Refuse an observation whose composed image the model cannot take (sizes named)."""
        if obs.composed is None:
            raise ValueError("observation without a composed image")
        h, w = obs.composed.shape[:2]
        check_frame_size(h, w)
        if self.image_size and (w, h) != self.image_size:
            raise ValueError(f"composed image {w}x{h} (width x height) differs from image_width x image_height "
                             f"{self.image_size[0]}x{self.image_size[1]}")

    # -- inputs ---------------------------------------------------------------------------------
    def proprio(self, history: Sequence[ObservationData]) -> tuple[np.ndarray, np.ndarray | float]:
        """(the normalised proprio input (S,) for the newest observation: its state, with a
        state_velocity checkpoint also the slot velocities fitted over the history; the robot state in
        the action layout that a state-relative checkpoint's actions are offsets from, else 0).
        Reads nothing but the history, so a batched server computes it per robot (serve/batched.py)."""
        slots = observed_slots(self.spec, history[-1])
        proprio = to_layout(slots, self.spec.slot_names, self.state_slots)
        if self.state_velocity:
            velocity = slot_velocity(self.spec, history, self.state_velocity)
            proprio = np.concatenate([proprio, to_layout(velocity, self.spec.slot_names, self.state_slots)])
        state = identity(proprio, self.state_norm).astype(np.float32)
        if not np.all(np.isfinite(state)):
            raise ValueError("non-finite robot state")
        reference = to_layout(slots, self.spec.slot_names, self.action_slots).astype(np.float64) \
            if self.relative else 0.0
        return state, reference

    def _context(self, history: Sequence[ObservationData]):
        """The model's context for the newest observation (its state; with a state_velocity
        checkpoint also the slot velocities fitted over the history); also sets self.reference, the
        robot state in the action layout (what a state-relative checkpoint's actions are offsets from)."""
        obs = history[-1]
        state, self.reference = self.proprio(history)
        text = obs.instruction or ""
        if self._text_cache is None or self._text_cache[0] != text:
            with torch.inference_mode():
                self._text_cache = (text, self.text.encode(text).to(self.device))
        return self.net.context(self._text_cache[1], torch.from_numpy(state)[None].to(self.device))

    def _use_threads(self, n: int | None = None) -> None:
        """This thread's intra-op threads (torch's setting is per thread with OpenMP): `threads`,
        or n (the frame jobs take one: they fill the core control leaves)."""
        n = self.opts.threads if n is None else n
        if n and getattr(self._threads, "n", None) != n:
            torch.set_num_threads(n)
            self._threads.n = n

    def _absorb(self, history: Sequence[ObservationData], ctx, cm, stages: dict | None = None):
        """Encode the frames not seen yet into the memory: in streaming mode at most
        max_frames_per_step (the newest), in official mode up to history_frames, so the re-encoded
        history is the newest observations at the camera's spacing however slow inference is (a
        history of every third frame would look like motion three times as fast)."""
        new = [o for o in history if self.last_stamp is None or o.stamp > self.last_stamp]
        if not new:
            if self.cache is None:
                raise ValueError("no frame absorbed since the last reset")
            return self.cache  # the newest frame is already in the memory
        # Behind the camera, absorbing every missed frame would fall further behind each step.
        per_step = self.opts.max_frames_per_step
        if self.opts.temporal_mode == "official":
            per_step = max(per_step, self.opts.history_frames)
        self.skipped_frames += max(0, len(new) - per_step)
        new = new[-per_step:]
        for obs in new:
            self.check_observation(obs)
        start = time.perf_counter()
        pixels = torch.from_numpy(np.stack([np.ascontiguousarray(o.composed) for o in new])).to(self.device)
        latents = self.codec.encode(pixels.permute(0, 3, 1, 2).float() / 127.5 - 1)  # (n, 16, 1, h, w)
        if not torch.all(torch.isfinite(latents)):
            raise ValueError("non-finite latent frame")
        encoded = time.perf_counter()
        self.cache = self.memory.observe_many(list(latents.split(1)), ctx, cm)
        self.last_stamp = new[-1].stamp
        self.world_state_frames = self.memory.frames
        if stages is not None:
            stages["encode"] = encoded - start
        return self.cache

    # -- sampling -------------------------------------------------------------------------------
    def _future_latents(self) -> int:
        return math.ceil(self.num_predicted_frames / self.codec.temporal_factor) if self.num_predicted_frames else 0

    def _video(self, ctx, cm, n_lat: int, generator=None, source=None, latest=None, stop=None):
        """Future latents after the memory (or the snapshot `source`: history latents or a world
        state; `latest` the newest latent frame), noise from `generator` (a NoiseQueue) or the
        backend's generator."""
        o = self.opts
        generator = self.generator if generator is None else generator
        if o.temporal_mode == "official":
            history = self.memory.history_latents() if source is None else source
            return sample_official(self.net, history, ctx, cm, n_lat, self.video_steps, generator, o.video_schedule,
                                   stop=stop)[0]
        latest = self.memory.latest if latest is None else latest
        shape = (latest.shape[0], latest.shape[1]) + tuple(latest.shape[3:])
        state = self.memory.state if source is None else source
        return sample_streaming(self.net, state, shape, ctx, cm, n_lat, self.video_steps, generator, o.video_schedule,
                                stop)

    def _frame_job(self, ctx, cm, n_lat: int, horizon: int, step_period: float, chunk) -> FrameJob:
        """The frames of this prediction as a job over snapshots, its noise drawn now (the
        generator's sequence is what drawing during the prediction gives)."""
        o = self.opts
        latest = self.memory.latest
        streaming = o.temporal_mode == "streaming"
        shape = (latest.shape[0], latest.shape[1]) + tuple(latest.shape[3:])
        noise = NoiseQueue(self.generator, noise_shapes(o.video_schedule, self.video_steps, shape, n_lat, streaming))
        source = self.memory.state.clone() if streaming else self.memory.history_latents()
        stages: dict = {}
        cancel = threading.Event()

        def run(pause=None):
            self._use_threads(1 if pause is not None else None)  # a worker (it pauses for control) takes one core
            pause_between_layers(pause)
            try:
                with torch.inference_mode():
                    start = time.perf_counter()
                    future = self._video(ctx, cm, n_lat, noise, source, latest, cancel.is_set)
                    sampled = time.perf_counter()
                    frames = self._frames(future, horizon, step_period, latest)  # ([], []) when cancelled
            finally:
                pause_between_layers(None)
            stages["frames"], stages["decode"] = sampled - start, time.perf_counter() - sampled
            return frames

        return FrameJob(chunk.stamp, chunk, run, pending=True, stages=stages, cancel=cancel)

    def _action_noise(self, horizon: int) -> torch.Tensor:
        """The action sampler's starting noise, drawn from the backend's generator and scaled by
        action_noise_scale (1: the released sampler; below 1: lower-variance chunks, 0: the
        deterministic chunk from the prior's mean)."""
        noise = torch.randn(1, horizon, self.net.cfg.action.action_dim, generator=self.generator)
        return noise * self.opts.action_noise_scale

    def _frames(self, future, horizon: int, step_period: float, latest=None):
        if future is None:
            return [], []
        if not torch.all(torch.isfinite(future)):
            raise ValueError("non-finite predicted latents")
        latest = self.memory.latest if latest is None else latest
        pixels = self.codec.decode_future(latest, future)[:, :self.num_predicted_frames]
        if not torch.all(torch.isfinite(pixels)):
            raise ValueError("non-finite predicted frames")
        frames, n = to_rgb8(pixels), pixels.shape[1]
        period = self.opts.frame_period or horizon * step_period / n
        return frames, [period * (i + 1) for i in range(n)]

    @property
    def required_horizon(self) -> int | None:
        """The chunk length stepwise action statistics fix (None: any)."""
        norm = self.action_norm
        return int(norm.a.shape[0]) if norm is not None and norm.a.ndim == 2 else None

    def _check_horizon(self, horizon: int) -> None:
        if self.required_horizon not in (None, horizon):
            raise ValueError(f"horizon {horizon}: the checkpoint's stepwise action statistics are for chunks of "
                             f"{self.required_horizon} rows")

    def _to_slots(self, actions: torch.Tensor) -> np.ndarray:
        norm = actions[0].float().cpu().numpy()
        if not np.all(np.isfinite(norm)):
            raise ValueError("non-finite action chunk")
        values = identity(norm, self.action_norm, inverse=True) + self.reference
        values = from_layout(values, self.action_slots, self.spec.slot_names)
        return values.astype(np.float32)

    # -- the backend interface ------------------------------------------------------------------
    def predict(self, history: Sequence[ObservationData], horizon: int, step_period: float) -> PredictionData:
        return self.predict_staged(history, horizon, step_period, lambda _chunk: None)

    def predict_staged(self, history: Sequence[ObservationData], horizon: int, step_period: float,
                       on_chunk) -> PredictionData:
        """The chunk (handed to on_chunk), then its frames on this thread."""
        job = self.predict_deferred(history, horizon, step_period, on_chunk)
        frames, times = job.run()
        self.stages = job.stages  # the frames were part of this prediction's time
        return PredictionData(job.stamp, frames, times, job.chunk)

    def at_rest(self, history: Sequence[ObservationData]) -> list:
        """Official mode with fewer observations than the history_frames the weights were trained
        on (the first steps after a start or a reset): the oldest observation repeated before
        itself at the camera's spacing, as if the robot had been at rest there, so the model always
        sees the history shape it learnt (kairos-train pads the windows at an episode's start the
        same way). The repeats are older than the oldest observation, so a memory that has absorbed
        it skips them. Other cases: the history unchanged."""
        need = self.opts.history_frames - len(history)
        if self.opts.temporal_mode != "official" or need <= 0 or not history:
            return list(history)
        period = self.opts.frame_period
        if not period > 0:
            gaps = np.diff([o.stamp for o in history])
            spacing = float(np.median(gaps)) if len(gaps) else 0.0
            period = spacing if spacing > 0 else 0.1
        first = history[0]
        pad = [dataclasses.replace(first, stamp=first.stamp - period * k) for k in range(need, 0, -1)]
        return pad + list(history)

    def predict_deferred(self, history: Sequence[ObservationData], horizon: int, step_period: float,
                         on_chunk) -> FrameJob:
        """The chunk by action mode (handed to on_chunk), and the frames as a FrameJob (pending
        on every `video_every`-th prediction when num_predicted_frames > 0)."""
        _check_history(history)
        history = self.at_rest(history)
        self._check_horizon(horizon)
        last = history[-1]
        self.check_observation(last)
        self._use_threads()
        stages: dict = {}
        with torch.inference_mode():
            start = time.perf_counter()
            ctx, cm = self._context(history)
            cache = self._absorb(history, ctx, cm, stages)
            sampled = time.perf_counter()
            stages.setdefault("encode", 0.0)  # 0 when the newest frame was absorbed already
            stages["history"] = sampled - start - stages["encode"]  # the context (instruction, state) included
            actions = sample_actions(self.net, cache, ctx, cm, horizon, self.opts.flow_steps,
                                     noise=self._action_noise(horizon))
            made = time.perf_counter()
            chunk = ActionChunkData(last.stamp, self.spec.name, list(self.spec.slot_names), self._to_slots(actions),
                                    step_period, self.name, self.model)
            stages["sample"], stages["output"] = made - sampled, time.perf_counter() - made
        self.stages = stages
        on_chunk(chunk)
        video = self.num_predicted_frames > 0 and self.predictions % self.opts.video_every == 0
        n_lat = self._future_latents() if video else 0
        job = self._frame_job(ctx, cm, n_lat, horizon, step_period, chunk) if n_lat else \
            FrameJob(last.stamp, chunk, lambda pause=None: ([], []), stages={})
        job.stages.update(stages)  # the job's run() adds its own stages to the same dict
        self.predictions += 1
        return job

    def imagine(self, history: Sequence[ObservationData], candidate: ActionChunkData) -> PredictionData:
        """The model's future frames for the history (independent of the candidate: see the module
        docstring) and the candidate's consistency with the model, in extras and the message."""
        _check_history(history)
        history = self.at_rest(history)
        last = history[-1]
        self.check_observation(last)
        values = np.asarray(candidate.values, np.float64)
        if values.ndim != 2 or not np.all(np.isfinite(values)):
            raise ValueError(f"candidate of shape {values.shape} must be (horizon, dim) and finite")
        horizon = values.shape[0]
        self._check_horizon(horizon)
        self._use_threads()  # the Imagine worker's thread too: no team of its own beside control and frames
        with torch.inference_mode():
            ctx, cm = self._context(history)
            cand = identity(to_layout(values, candidate.slot_names, self.action_slots) - self.reference,
                            self.action_norm)
            cache = self._absorb(history, ctx, cm)
            own = sample_actions(self.net, cache, ctx, cm, horizon, self.opts.flow_steps,
                                 noise=self._action_noise(horizon))
            n_lat = self._future_latents()
            frames, times = self._frames(self._video(ctx, cm, n_lat) if n_lat else None, horizon,
                                         candidate.step_period)
            cand_t = torch.from_numpy(cand.astype(np.float32))[None]
            errors = [float(denoising_error(self.net, cache, ctx, cm, a, seed=self.opts.seed)[0]) for a in (cand_t, own)]
        distance = float(np.sqrt(np.mean((cand - own[0].float().cpu().numpy()) ** 2)))
        if not all(math.isfinite(x) for x in (*errors, distance)):
            raise ValueError("non-finite consistency score")
        scores = {"candidate_error": errors[0], "model_chunk_error": errors[1], "distance_to_model_chunk": distance}
        levels = "/".join(f"{s:g}" for s in SCORE_SIGMAS)
        what = f"imagined {len(frames)} frames: {IMAGINE_NOTE}" if frames else \
            "no frames imagined (num_predicted_frames is 0)"
        message = (f"{what}. " + " ".join(f"{k}={v:.4f}" for k, v in scores.items()) +
                   f" (flow-matching denoising error under the action expert at sigma {levels}, and the RMS distance "
                   "to the model's own chunk, in normalised action units; lower = more consistent)")
        if self.startup_warning:
            message = f"{message}. {RANDOM_WEIGHTS_WARNING}"
        chunk = ActionChunkData(last.stamp, candidate.embodiment, list(candidate.slot_names), values.astype(np.float32),
                                candidate.step_period, self.name, self.model)
        return PredictionData(last.stamp, frames, times, chunk, extras={**scores, "message": message})
