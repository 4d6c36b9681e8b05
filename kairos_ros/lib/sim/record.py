"""Record scripted-expert demonstrations of a simulated task as rosbag2 (one MCAP bag per episode).

Each bag holds what the real robot's graph would carry (names and units of the robot's adapter):
  /instruction                   std_msgs/msg/String, once at the start: the task's instruction
  /joint_states                  sensor_msgs/msg/JointState at the control rate (50 Hz for ALOHA):
                                 every joint of the task (followers included), positions and
                                 velocities, from the state at reset (t = 0) to the episode's end
  /joint_commands                sensor_msgs/msg/JointState at the control rate: the position targets
                                 the expert sent for the following control period (what a leader
                                 arm would command), stamped when sent
  /cameras/<camera>/image_raw    sensor_msgs/msg/Image, rgb8, at --camera-rate (default 10 Hz), all
                                 cameras rendered at the same simulated instant
  /kairos/sim/success            std_msgs/msg/Bool, once at the end: whether the task succeeded
  /kairos/sim/executed_commands  sensor_msgs/msg/JointState, only with action_noise > 0: the
                                 perturbed targets the simulated robot actually received
Header stamps equal the bag's log times: start_time + simulated time. The bag's custom_data
(metadata.yaml) key "kairos.sim" holds a JSON object with task, seed, success, max_reward,
steps, frames, image size and camera rate.

Perturbed demonstrations (action_noise > 0, DART-style): the expert's targets are executed with
a smooth random offset added (per joint: knots every noise_period seconds drawn from a normal of
standard deviation action_noise x the joint's range, clipped at 2 sigma, each knot zero with
probability 1/2 so that excursions alternate with returns to the expert's path, joined by cosine
interpolation, zero at reset; the result clipped to the joint limits). /joint_commands still
carries the expert's own targets, so a policy learnt from them sees states off the expert's path
labelled with the way back to it (the expert plans once from the scene at reset: it corrects the
arm's drift, it does not re-plan for a cube the drift pushed). The offsets are drawn from the
episode's seed: the same seed and settings give the same bag.

Success of an episode = the task's success signal held at some step (gym-aloha ends an episode
at its first success). OUT/index.json lists every attempted episode (seed, success, kept, bag,
frames); episodes are named episode_<seed>, so re-recording a seed refuses to overwrite it
unless asked to.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kairos_ros.lib import bagio
from kairos_ros.lib.sim.base import CAMERA_SIZE
from kairos_ros.lib.sim.registry import make_expert, make_task

BOOL = "std_msgs/msg/Bool"
SUCCESS_TOPIC = "/kairos/sim/success"
COMMAND_TOPIC = "/joint_commands"
EXECUTED_TOPIC = "/kairos/sim/executed_commands"
DEFAULT_START_TIME = 1700000000.0


@dataclass
class RecordOptions:
    width: int = CAMERA_SIZE[0]
    height: int = CAMERA_SIZE[1]
    camera_rate: float = 10.0  # Hz; a divisor of the control rate
    max_duration: float | None = None  # s; default the task's episode length
    stop_on_success: bool = False  # end the episode this long after success (see settle)
    settle: float = 0.5  # s recorded after the first success when stop_on_success
    start_time: float = DEFAULT_START_TIME
    storage: str = "mcap"
    camera_topics: dict = field(default_factory=dict)  # camera -> topic (default /cameras/<camera>/image_raw)
    action_noise: float = 0.0  # std of the execution offset, as a fraction of each joint's range (0: none)
    noise_period: float = 0.5  # s between the offset's random knots

    def __post_init__(self):
        if not 0.0 <= self.action_noise <= 0.1:
            raise ValueError(f"action_noise {self.action_noise} must be in [0, 0.1] (a fraction of each joint's range)")
        if not 0.05 <= self.noise_period <= 10.0:
            raise ValueError(f"noise_period {self.noise_period} must be in [0.05, 10] s")


def camera_topic(camera: str) -> str:
    return f"/cameras/{camera}/image_raw"


def episode_name(seed: int) -> str:
    return f"episode_{seed:06d}"


def execution_offsets(lower: np.ndarray, upper: np.ndarray, steps: int, period: float, fraction: float,
                      knot_period: float, seed: int) -> np.ndarray:
    """(steps + 1, J) smooth random offsets for perturbed demonstrations (see the module text):
    zero at step 0, knots every knot_period seconds, per-joint sigma = fraction x (upper - lower)."""
    span = np.where(np.isfinite(upper - lower), upper - lower, 0.0)
    sigma = fraction * np.maximum(span, 0.0)
    n_knots = int(np.ceil(steps * period / knot_period)) + 2
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 0xDA27])
    knots = np.clip(rng.standard_normal((n_knots, len(sigma))), -2.0, 2.0) * sigma
    knots[rng.random(n_knots) < 0.5] = 0.0  # excursions alternate with returns to the expert's path
    knots[0] = 0.0
    u = np.arange(steps + 1) * period / knot_period
    i = np.minimum(u.astype(int), n_knots - 2)
    f = (1.0 - np.cos(np.pi * (u - i))) / 2.0
    return knots[i] * (1.0 - f)[:, None] + knots[i + 1] * f[:, None]


def frame_every(control_period: float, rate: float) -> int:
    """Control periods between camera frames; raises ValueError unless rate divides the control rate."""
    if not rate > 0:
        raise ValueError(f"camera rate {rate} must be > 0")
    n = 1.0 / (rate * control_period)
    k = int(round(n))
    if k < 1 or abs(n - k) > 1e-6:
        raise ValueError(f"camera rate {rate} Hz must divide the control rate {1.0 / control_period:g} Hz "
                         f"(e.g. {', '.join(f'{1.0 / (control_period * d):g}' for d in (2, 4, 5))})")
    return k


class _Messages:
    def __init__(self):
        self.ts = bagio.typestore()
        t = self.ts.types
        self.Time, self.Header = t["builtin_interfaces/msg/Time"], t["std_msgs/msg/Header"]
        self.Image, self.JointState = t[bagio.IMAGE], t[bagio.JOINT_STATE]
        self.String, self.Bool = t[bagio.STRING], t[BOOL]

    def header(self, stamp_ns: int, frame_id: str):
        return self.Header(stamp=self.Time(*bagio.split_ns(stamp_ns)), frame_id=frame_id)

    def image(self, stamp_ns: int, frame_id: str, rgb: np.ndarray) -> bytes:
        h, w = rgb.shape[:2]
        msg = self.Image(header=self.header(stamp_ns, frame_id), height=h, width=w, encoding="rgb8",
                         is_bigendian=0, step=w * 3, data=np.ascontiguousarray(rgb, dtype=np.uint8).reshape(-1))
        return bytes(self.ts.serialize_cdr(msg, bagio.IMAGE))

    def joint_state(self, stamp_ns: int, names, pos, vel=None) -> bytes:
        msg = self.JointState(header=self.header(stamp_ns, "world"), name=list(names),
                              position=np.asarray(pos, dtype=np.float64),
                              velocity=np.zeros(0) if vel is None else np.asarray(vel, dtype=np.float64),
                              effort=np.zeros(0, dtype=np.float64))
        return bytes(self.ts.serialize_cdr(msg, bagio.JOINT_STATE))

    def string(self, text: str) -> bytes:
        return bytes(self.ts.serialize_cdr(self.String(data=text), bagio.STRING))

    def boolean(self, value: bool) -> bytes:
        return bytes(self.ts.serialize_cdr(self.Bool(data=bool(value)), BOOL))


def record_episode(task, expert, seed: int, out: str | Path, opts: RecordOptions | None = None) -> dict:
    """Run one expert episode on `task` with `seed` and write it as a bag folder `out` (must not
    exist). Returns the episode's summary (also stored in the bag's custom_data "kairos.sim")."""
    opts = opts or RecordOptions()
    info = task.info
    period = info.control_period
    every = frame_every(period, opts.camera_rate)
    duration = info.episode_length if opts.max_duration is None else min(opts.max_duration, info.episode_length)
    steps = int(round(duration / period))
    settle_steps = int(round(opts.settle / period))
    start_ns = int(round(opts.start_time * 1e9))
    stamp = lambda k: start_ns + int(round(k * period * 1e9))  # noqa: E731
    names = list(task.joint_names)
    topics = {cam: opts.camera_topics.get(cam, camera_topic(cam)) for cam in info.cameras}

    t0 = time.perf_counter()
    task.reset(seed)
    expert.reset(task, seed)
    plan_s = time.perf_counter() - t0
    msgs = _Messages()
    out = Path(out)
    noise = None
    if opts.action_noise > 0:
        noise = execution_offsets(np.asarray(task.lower, float), np.asarray(task.upper, float), steps, period,
                                  opts.action_noise, opts.noise_period, seed)
    writer = bagio.open_writer(out, opts.storage)
    frames = 0
    render_s = 0.0
    best = task.reward()
    first_success = 0 if task.success() else None
    try:
        conns = {"instruction": writer.add_connection("/instruction", bagio.STRING, typestore=msgs.ts),
                 "joints": writer.add_connection("/joint_states", bagio.JOINT_STATE, typestore=msgs.ts),
                 "commands": writer.add_connection(COMMAND_TOPIC, bagio.JOINT_STATE, typestore=msgs.ts),
                 "success": writer.add_connection(SUCCESS_TOPIC, BOOL, typestore=msgs.ts)}
        for cam in info.cameras:
            conns[cam] = writer.add_connection(topics[cam], bagio.IMAGE, typestore=msgs.ts)
        if noise is not None:
            conns["executed"] = writer.add_connection(EXECUTED_TOPIC, bagio.JOINT_STATE, typestore=msgs.ts)
        writer.write(conns["instruction"], start_ns, msgs.string(info.instruction))
        k = 0
        while True:
            ns = stamp(k)
            pos, vel = task.joint_state()
            writer.write(conns["joints"], ns, msgs.joint_state(ns, names, pos, vel))
            if k % every == 0:
                for cam in info.cameras:
                    r0 = time.perf_counter()
                    rgb = task.render(cam, opts.width, opts.height)
                    render_s += time.perf_counter() - r0
                    writer.write(conns[cam], ns, msgs.image(ns, f"{cam}_optical_frame", rgb))
                frames += 1
            done = k >= steps or (opts.stop_on_success and first_success is not None
                                  and k >= first_success + settle_steps)
            if done:
                break
            target = np.asarray(expert.act(task), dtype=np.float64)
            writer.write(conns["commands"], ns, msgs.joint_state(ns, names, target))
            if noise is not None:
                target = np.clip(target + noise[k], task.lower, task.upper)
                writer.write(conns["executed"], ns, msgs.joint_state(ns, names, target))
            task.step(target)
            k += 1
            best = max(best, task.reward())
            if first_success is None and task.success():
                first_success = k
        success = first_success is not None
        writer.write(conns["success"], stamp(k), msgs.boolean(success))
        summary = {"task": info.name, "seed": int(seed), "success": success, "max_reward": float(best),
                   "final_reward": float(task.reward()), "steps": k, "duration": k * period, "frames": frames,
                   "first_success_time": None if first_success is None else first_success * period,
                   "width": opts.width, "height": opts.height, "camera_rate": opts.camera_rate,
                   "instruction": info.instruction, "cameras": list(info.cameras),
                   "joint_names": names, "start_time": opts.start_time,
                   "action_noise": opts.action_noise, "noise_period": opts.noise_period}
        writer.set_custom_data("kairos.sim", json.dumps(summary, sort_keys=True))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    summary["timing"] = {"plan_s": round(plan_s, 3), "render_s": round(render_s, 3),
                         "total_s": round(time.perf_counter() - t0, 3)}
    return summary


def bag_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def record(task_name: str, episodes: int, seed: int, out: str | Path, opts: RecordOptions | None = None,
           keep_failed: bool = False, force: bool = False, max_attempts: int | None = None,
           progress: bool = True) -> dict:
    """Record `episodes` kept episodes of the named task (seeds seed, seed + 1, ...) into folder
    `out`; failed episodes are dropped unless keep_failed, and at most max_attempts (default
    2 * episodes + 10) seeds are tried. Updates out/index.json; returns it.

    Raises FileExistsError (before recording anything) when an episode folder to write exists and
    not force."""
    if episodes < 1:
        raise ValueError(f"episodes {episodes} must be >= 1")
    opts = opts or RecordOptions()
    out = Path(out)
    attempts = 2 * episodes + 10 if max_attempts is None else max_attempts
    seeds = range(seed, seed + attempts)
    if not force:
        # the first `episodes` seeds are written whatever happens; later ones only after failures
        clash = [episode_name(s) for s in seeds[:episodes] if (out / episode_name(s)).exists()]
        if clash:
            raise FileExistsError(f"'{out}' already holds {', '.join(clash[:5])}{' ...' if len(clash) > 5 else ''} "
                                  f"(use --force to replace them)")
    out.mkdir(parents=True, exist_ok=True)
    index_path = out / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    index.update({"task": task_name, "format": "rosbag2", "storage": opts.storage,
                  "width": opts.width, "height": opts.height, "camera_rate": opts.camera_rate,
                  "action_noise": opts.action_noise, "noise_period": opts.noise_period})
    entries = {e["seed"]: e for e in index.get("episodes", [])}
    task, expert = make_task(task_name), make_expert(task_name)
    kept = tried = 0
    try:
        with tqdm(total=episodes, desc=f"record {task_name}", unit="episode", disable=not progress) as bar:
            for s in seeds:
                if kept >= episodes:
                    break
                bag = out / episode_name(s)
                if bag.exists():
                    if not force:
                        raise FileExistsError(f"'{bag}' exists (use --force to replace it)")
                    shutil.rmtree(bag)
                summary = record_episode(task, expert, s, bag, opts)
                tried += 1
                keep = summary["success"] or keep_failed
                if not keep:
                    shutil.rmtree(bag)
                kept += keep
                entries[s] = {"seed": s, "success": summary["success"], "kept": bool(keep),
                              "bag": bag.name if keep else None, "frames": summary["frames"],
                              "steps": summary["steps"], "duration": summary["duration"],
                              "max_reward": summary["max_reward"],
                              "bytes": bag_size(bag) if keep else 0, "seconds": summary["timing"]["total_s"]}
                index["episodes"] = [entries[k] for k in sorted(entries)]
                index_path.write_text(json.dumps(index, indent=2) + "\n")
                bar.update(int(keep))
                bar.set_postfix(seed=s, success=f"{sum(e['success'] for e in entries.values())}/{len(entries)}")
    finally:
        task.close()
    index["episodes"] = [entries[k] for k in sorted(entries)]
    index["recorded"] = {"kept": kept, "tried": tried}
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    return index
