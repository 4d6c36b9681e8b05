"""Offline evaluation: replay a bag through the perception pipeline and a backend, score the output.

The bag's messages go, in log-time order, into the same PerceptionPipeline the perception node
runs, with the node's publishing rule emulated in bag time: a synchronised set is taken when an
input arrives or the node's flush timer (period / 2) fires, at most once per 0.9 / rate seconds.
Each observation is composed as the world-model node composes it, enters an ObservationHistory
(a backwards time jump resets history and backend), and the backend predicts from the history.

Scoring (see report.py for the summary layout):
- actions: chunk row k (time stamp + (k+1) * period) vs the recorded joint states interpolated at
  that time and mapped into slot space; rows past the end of the recording are left out.
- frames: each predicted frame vs the real composed observation closest to its time, if within
  half a camera period (PSNR capped at 100 dB, SSIM).
- latency: wall-clock time of every backend.predict call.
"""
from __future__ import annotations

import platform
import time
from importlib import metadata

import numpy as np
from tqdm import tqdm

from kairos_ros.backends import make_backend
from kairos_ros.core.embodiment import load_embodiment, state_to_slots
from kairos_ros.core.groundtruth import interpolate_states
from kairos_ros.core.image import resize_rgb
from kairos_ros.core.metrics import ActionErrorAccumulator, latency_percentiles, psnr, ssim
from kairos_ros.core.observation import ObservationHistory, compose
from kairos_ros.core.perception import PerceptionConfig, PerceptionPipeline
from kairos_ros.eval.framematch import FrameMatcher
from kairos_ros.eval.report import jsonable
from kairos_ros.lib import bagio
from kairos_ros.lib.bagsource import (EvalError, camera_period, connections, default_layout, detect_embodiment,
                                      first_joint_names, load_joint_series, match_recorded_topics,
                                      select_topics)
from kairos_ros.lib.profile import INSTRUCTION_RULE
from kairos_ros.lib.replay import ReplayHooks, replay

PSNR_CAP = 100.0  # dB
DEFAULTS = dict(embodiment=None, cameras=None, camera_names=None, layout=None, tile_width=160,
                tile_height=128, horizon=32, step_period=0.0, history=8, num_predicted_frames=4,
                max_steps=None, slop=0.05, rate=10.0, queue_size=10, joint_topic="/joint_states",
                backend_params=None, progress=False, instruction="", instruction_from="", camera_crops=None)


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for dist in ("kairos_ros", "numpy", "rosbags", "Pillow", "matplotlib", "torch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _naming(exc: Exception, value: str, what: str) -> str:
    """The error's message, prefixed with the offending value unless it names it already."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return text if f"'{value}'" in text else f"{what} '{value}': {text}"


def _load_spec(name: str):
    try:
        return load_embodiment(name)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise EvalError(_naming(exc, name, "embodiment")) from exc


def _make_backend(name: str, spec, params: dict):
    try:
        return make_backend(name, spec, **params)
    except (KeyError, ValueError) as exc:
        raise EvalError(_naming(exc, name, "backend")) from exc


class _Scorer:
    """Action errors against the recorded joint states, plus the frame matcher."""

    def __init__(self, spec, series, tolerance: float):
        self.spec, self.series = spec, series
        self.actions = ActionErrorAccumulator(list(spec.slot_names))
        # Identical frames have infinite PSNR; PSNR_CAP keeps the averages finite.
        self.frames = FrameMatcher(tolerance, lambda p, r: (min(float(psnr(p, r)), PSNR_CAP), float(ssim(p, r))))

    def add_prediction(self, pred) -> None:
        chunk = pred.chunk
        times = chunk.stamp + (np.arange(chunk.horizon) + 1) * chunk.step_period
        states, valid = interpolate_states(self.series.stamps, self.series.positions, times)
        truth = np.zeros_like(np.asarray(chunk.values, dtype=np.float64))
        if np.any(valid):
            truth[valid] = state_to_slots(self.spec, states[valid])
        self.actions.add(np.asarray(chunk.values, dtype=np.float64), truth, valid)
        for i, (frame, dt) in enumerate(zip(pred.frames, pred.frame_times)):
            self.frames.expect(i, float(dt), pred.stamp + float(dt), frame)


def _run(reader, topics, pipeline, backend, history, scorer, opts, bar) -> dict:
    """The replay (lib.replay: the perception node's publish rule in bag time) with a prediction for
    each observation; returns counts."""
    # resets: input stamps jumped backwards (perception); history_resets: the world model's history
    # and backend state were reset (a backwards observation stamp).
    counts = {"observations": 0, "predictions": 0, "failed_predictions": 0, "resets": 0, "history_resets": 0,
              "dropped_inputs": {}, "instructions_from_bag": 0}
    latencies: list[float] = []
    state = {"stop_at": None}
    pipeline.instruction = opts["instruction"]  # lib.profile.INSTRUCTION_RULE: a recorded message replaces it
    horizon, step_period = opts["horizon"], opts["step_period"]

    def drop(key: str) -> None:
        counts["dropped_inputs"][key] = counts["dropped_inputs"].get(key, 0) + 1

    def on_reset() -> None:
        counts["resets"] += 1
        scorer.frames.flush()

    def on_instruction(text: str) -> None:
        counts["instructions_from_bag"] += 1

    def on_observation(obs) -> None:
        obs.composed = compose(pipeline.config.layout, obs.camera_names, obs.images)
        counts["observations"] += 1
        scorer.frames.observe(obs.stamp, obs.composed)
        if history.add(obs):
            counts["history_resets"] += 1
            backend.reset()
        if opts["max_steps"] is not None and counts["predictions"] >= opts["max_steps"]:
            return
        start = time.perf_counter()
        try:
            pred = backend.predict(history.snapshot(), horizon, step_period)
        except (ValueError, RuntimeError):
            pred = None
        latency = time.perf_counter() - start
        values = None if pred is None else np.asarray(pred.chunk.values)
        if values is None or values.shape != (horizon, len(scorer.spec.slot_names)) or not np.all(np.isfinite(values)):
            counts["failed_predictions"] += 1  # as the node: drop it, reset the world state
            history.clear()
            backend.reset()
            return
        latencies.append(latency)
        counts["predictions"] += 1
        h, w = obs.composed.shape[:2]
        pred.frames = [f if f.shape[:2] == (h, w) else resize_rgb(np.asarray(f), w, h) for f in pred.frames]
        scorer.add_prediction(pred)
        if opts["max_steps"] is not None and counts["predictions"] >= opts["max_steps"]:
            state["stop_at"] = obs.stamp + max([horizon * step_period] + list(pred.frame_times)) + 1.0

    replay(reader, topics, pipeline, opts["rate"], ReplayHooks(
        on_observation=on_observation, on_reset=on_reset, on_message=lambda: bar.update(1),
        on_instruction=on_instruction, on_drop=drop,
        stop=lambda now: state["stop_at"] is not None and now > state["stop_at"]))
    scorer.frames.flush()
    counts["latencies"] = latencies
    counts["final_instruction"] = pipeline.instruction
    return counts


def evaluate_bag(path, backend_name: str, **opts) -> dict:
    """Evaluate backend `backend_name` on the bag at `path`; returns the report summary dict.

    Options (defaults in DEFAULTS): embodiment (auto-detected from the joint names when None),
    cameras (topics, auto-detected), camera_names, layout (by camera count), tile_width/height,
    horizon, step_period (0: the embodiment's default), history, num_predicted_frames, max_steps,
    slop, rate (Hz, the perception node's rate_hz), queue_size, joint_topic, camera_crops (one
    core.image crop text per camera), backend_params,
    progress (tqdm bar on stderr). Raises EvalError (a ValueError) naming any bad value.
    """
    unknown = set(opts) - set(DEFAULTS)
    if unknown:
        raise EvalError(f"unknown evaluate_bag options {sorted(unknown)}")
    o = {**DEFAULTS, **opts}
    for key in ("horizon", "history", "rate"):
        if not o[key] > 0:
            raise EvalError(f"{key} = {o[key]} must be > 0")
    try:
        reader = bagio.open_reader(path)
    except FileNotFoundError as exc:
        raise EvalError(str(exc)) from exc
    except Exception as exc:  # rosbags raises several types for unreadable bags
        raise EvalError(f"cannot read bag '{path}': {exc}") from exc
    try:
        info = bagio.bag_info(path, reader)
        cameras = match_recorded_topics(bagio.topic_table(reader), list(o["cameras"])) if o["cameras"] else None
        topics = select_topics(reader, cameras, o["camera_names"], o["joint_topic"])
        emb = o["embodiment"] or detect_embodiment(first_joint_names(reader, o["joint_topic"]))
        spec = _load_spec(emb)
        o["step_period"] = float(o["step_period"] or spec.default_step_period)
        backend = _make_backend(backend_name, spec, {"num_predicted_frames": o["num_predicted_frames"],
                                                     **(o["backend_params"] or {})})
        layout = o["layout"] or default_layout(len(topics.camera_topics))
        try:
            pipeline = PerceptionPipeline(PerceptionConfig(
                camera_names=topics.camera_names, joint_names=list(spec.joint_names),
                ignore_joints=list(getattr(spec, "ignore_joints", [])), layout=layout,
                tile_width=o["tile_width"], tile_height=o["tile_height"], slop=o["slop"],
                queue_size=o["queue_size"], camera_crops=list(o["camera_crops"] or [])))
        except (ValueError, KeyError) as exc:
            raise EvalError(f"perception set-up failed (layout '{layout}', cameras {topics.camera_names}): {exc}") from exc
        series = load_joint_series(reader, topics.joint_topic, list(spec.joint_names),
                                   list(getattr(spec, "ignore_joints", [])), spec.name)
        period = camera_period(reader, topics.camera_topics[0])
        scorer = _Scorer(spec, series, 0.5 * period)
        replayed = topics.camera_topics + [topics.joint_topic] + [t for t in [topics.instruction_topic] if t]
        total = sum(c.msgcount for c in connections(reader, replayed))
        with tqdm(total=total, desc=f"eval {info['name']} [{backend_name}]", unit="msg",
                  disable=not o["progress"], leave=False) as bar:
            counts = _run(reader, topics, pipeline, backend, ObservationHistory(o["history"]), scorer, o, bar)
    finally:
        reader.close()
    latencies = counts.pop("latencies")
    instruction = {"rule": INSTRUCTION_RULE, "initial": o["instruction"],
                   "initial_from": o["instruction_from"] or ("none" if not o["instruction"] else "argument"),
                   "messages_in_bag": counts.pop("instructions_from_bag"), "final": counts.pop("final_instruction")}
    lat = {k: (float(v) if v is not None else None) for k, v in latency_percentiles(latencies).items()}
    lat.update(count=len(latencies), samples=latencies,
               mean=float(np.mean(latencies)) if latencies else None,
               max=float(np.max(latencies)) if latencies else None)
    actions = scorer.actions.summary()
    actions.update(slot_names=list(spec.slot_names), step_period=o["step_period"], horizon=o["horizon"],
                   truth=f"recorded {topics.joint_topic} interpolated at the row times, in slot space")
    config = {k: o[k] for k in ("horizon", "step_period", "history", "num_predicted_frames", "max_steps", "slop",
                                "rate", "queue_size", "tile_width", "tile_height", "joint_topic", "camera_crops")}
    config.update(backend=backend_name, model=getattr(backend, "model", ""), embodiment=spec.name, layout=layout,
                  embodiment_detected=o["embodiment"] is None, cameras=dict(zip(topics.camera_names, topics.camera_topics)),
                  instruction_topic=topics.instruction_topic, camera_period=period,
                  backend_params=o["backend_params"] or {}, instruction=instruction)
    info["joint_names"] = series.names_seen
    return jsonable({"format": "kairos-eval/1", "title": f"{info['name']} / {backend_name}", "mode": "offline",
            "config": config, "bag": info, "versions": _versions(), "counts": counts, "actions": actions,
            "frames": scorer.frames.scores.summary(), "latency": lat})
