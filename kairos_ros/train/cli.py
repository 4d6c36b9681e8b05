"""kairos-train: train kairos-nano weights on recorded bags or on synthetic episodes.

    kairos-train OUT --bags DIR [DIR ...] [--profile auto|none|FILE] [--embodiment NAME]
                 [--camera-topics T ...] [--layout L] [--tile-width W --tile-height H]
                 [--val-fraction 0.1] [--cache-dir DIR] [--checkpoint-every 200] [--resume] [--force]
    kairos-train OUT [--embodiment dual_arm] [--episodes 12] [--duration 30]      (synthetic episodes)
    common: [--steps 3000] [--codec-steps 600] [--batch 8] [--history-frames 4] [--future-frames 2]
            [--horizon 32] [--seed 0] [--threads N] [--device cpu|cuda] [--stop-after N]
    torchrun --nproc-per-node N -m kairos_ros.train.cli OUT ...     (data-parallel, gloo on CPUs, nccl on GPUs)

With --bags, each DIR is a rosbag2 folder (sqlite3 or MCAP, what kairos-eval reads) or a folder
of them. Every bag is decoded once through the perception code with the bringup profile's
settings (--profile auto: config/<embodiment>.yaml; its camera topics, layout, tile size, slop,
rate and instruction; flags override them; --profile none: kairos-eval's defaults) and cached
(lib/dataset.py; --cache-dir, default ~/.cache/kairos_ros/datasets). Bad bags (no joint states or
cameras, unreadable or truncated, too short for history + horizon, joint names or camera sizes
differing between bags) are refused, naming the bag, before training starts. Episodes are split
into training and validation by episode (--val-fraction, seeded; at least one validation episode
when there are two or more). Without --bags, the episodes are the ones `kairos-make-bag` would
record (kairos_ros/train/data.py), seeds 1000 and up, disjoint from the bundled bags'.

Writes into OUT the three files of docs/kairos-nano-checkpoint.md (dit.safetensors,
codec.safetensors, text.safetensors, float16), train.json (every setting, the exact command, the
bags and split, the seeds, the loss curves, the held-out evaluation, the time and machine),
losses.csv (every step's losses) and losses.png (the curves). A resumable checkpoint.pt is
written every --checkpoint-every steps, when --stop-after steps are done, and on SIGINT/SIGTERM;
`--resume` continues it (same step, optimiser state and random streams: the result equals an
uninterrupted run). An OUT holding any of these files is refused unless --resume or --force.
The held-out evaluation runs the written files through the kairos backend on the validation
episodes: action MAE against the recorded joint states next to the `hold` baseline's, and the
codec's PSNR on held-out frames. The weights are trained for the `official` temporal mode with
--history-frames history frames: run the backend with temporal_mode:=official and
history_frames:= the same number (train.json says it, and the DiT's metadata too).
Exit codes: 0 done (or stopped by --stop-after), 2 bad arguments or data, 130 interrupted.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import signal
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib.dataset import (DatasetError, DecodeSettings, bag_embodiment, bag_fingerprint, check_lengths,
                                    default_cache_dir, find_bags, load_bags, settings_from_profile, split_episodes)
from kairos_ros.lib.profile import default_config
from kairos_ros.lib.synthetic_bag import CAMERA_NAMES, DEFAULT_INSTRUCTION
from kairos_ros.model.codecs import ConvCodec, HashTextEncoder
from kairos_ros.model.config import get_preset
from kairos_ros.model.checkpoint import load_checkpoint as load_weights
from kairos_ros.model.nano_format import load_conv_codec, valid_state_velocity
from kairos_ros.model.wam import KairosWAM
from kairos_ros.train.data import Episode, EpisodeConfig, slot_statistics
from kairos_ros.train.evaluate import evaluate_heldout
from kairos_ros.train.loop import Parallel, Stopped, TrainConfig, encode_episodes, train_codec, train_wam
from kairos_ros.train.save import FILES as RUN_FILES, save_all

TRAIN_SEED_BASE = 1000
CAMERAS = {"robotwin": ("head", "left_wrist", "right_wrist")}
CHECKPOINT = "checkpoint.pt"
OUTPUTS = ("dit.safetensors", "codec.safetensors", "text.safetensors", "train.json", "losses.csv", "losses.png",
           CHECKPOINT)
CHECKPOINT_FORMAT = "kairos-train-checkpoint/1"
# settings a resumed run may change (everything else must match the checkpoint's)
RESUMABLE_CHANGES = {"out", "resume", "force", "threads", "checkpoint_every", "stop_after", "progress", "cache_dir",
                     "no_cache", "eval_samples", "eval_flow_steps", "device"}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="kairos-train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("out", help="output folder")
    ap.add_argument("--bags", nargs="+", default=None, metavar="DIR",
                    help="train on these rosbag2 folders (or folders of them) instead of synthetic episodes")
    ap.add_argument("--profile", default="auto",
                    help="bags: bringup profile whose perception settings decode them (auto: config/<embodiment>.yaml "
                         "when there is one; none: kairos-eval's defaults; or a file)")
    ap.add_argument("--camera-topics", nargs="+", default=None, metavar="TOPIC",
                    help="bags: camera topics in layout order (default: the profile's, else every image topic, head first)")
    ap.add_argument("--camera-names", nargs="+", default=None, metavar="NAME")
    ap.add_argument("--joint-topic", default=None, help="bags: default the profile's, else /joint_states")
    ap.add_argument("--action-topic", default=None, metavar="TOPIC",
                    help="bags: learn the chunks from this sensor_msgs/JointState topic of commanded positions "
                         "(a teleoperation leader arm, a controller's targets; kairos-sim record writes "
                         "/joint_commands) instead of the measured joint states. A position-controlled gripper "
                         "holding an object measures the object's width while its command is closed: chunks "
                         "learnt from the states would not squeeze. Default: the joint states")
    ap.add_argument("--cache-dir", default=None, help="bags: decoded-bag cache (default ~/.cache/kairos_ros/datasets)")
    ap.add_argument("--no-cache", action="store_true", help="bags: decode without reading or writing the cache")
    ap.add_argument("--val-fraction", type=float, default=None,
                    help="episodes held out for validation (default 0.1 with --bags, 0 for synthetic episodes)")
    ap.add_argument("--embodiment", default=None, help="default: from the bags' joint names, dual_arm for synthetic")
    ap.add_argument("--cameras", type=int, default=3, help="synthetic: number of cameras (head, left_wrist, ...)")
    ap.add_argument("--layout", default=None, help="perception layout (default: the profile's, else by camera count)")
    ap.add_argument("--tile-width", type=int, default=None, help="default: the profile's with --bags, else 64")
    ap.add_argument("--tile-height", type=int, default=None, help="default: the profile's with --bags, else 48")
    ap.add_argument("--episodes", type=int, default=12, help="synthetic episodes")
    ap.add_argument("--duration", type=float, default=30.0, help="synthetic: seconds per episode")
    ap.add_argument("--steps", type=int, default=3000, help="world-action model steps")
    ap.add_argument("--codec-steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=8, help="global batch (split over the data-parallel ranks)")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--history-frames", type=int, default=4)
    ap.add_argument("--future-frames", type=int, default=2)
    ap.add_argument("--horizon", type=int, default=32)
    ap.add_argument("--step-period", type=float, default=0.0, help="s between chunk rows (0: the embodiment's)")
    ap.add_argument("--instruction", default=None,
                    help="default: the bag's /instruction, else the profile's, else the one kairos-make-bag records")
    ap.add_argument("--action-reference", choices=["state", "absolute"], default="state",
                    help="learn the chunk as offsets from the robot state (default) or as absolute slot values")
    ap.add_argument("--stats-scope", choices=["global", "stepwise"], default="stepwise",
                    help="z-score the chunk per row (default; the bundled weights: the first rows, small offsets, "
                         "then weigh as much as the last) or with one scale for all rows")
    ap.add_argument("--state-velocity", type=int, default=3, metavar="N",
                    help="give the model the slot velocities fitted over the last N frames' states next to the "
                         "state (default 3, as the bundled weights; 0: positions only, Kairos' own proprio)")
    ap.add_argument("--start-fraction", type=float, default=0.0, metavar="P",
                    help="share of training windows taken from an episode's first frames with the history padded "
                         "by the first frame, as the backend pads a short history at a start (the robot at rest: "
                         "no motion to copy, only the images tell where to go). Default 0")
    ap.add_argument("--init-from", default=None, metavar="DIR",
                    help="start from the weights in DIR (dit/codec/text.safetensors of an earlier kairos-train "
                         "run) instead of random ones: the codec is kept (no codec stage), the world-action "
                         "model is trained on for --steps with a fresh schedule")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cuda: one GPU per rank (LOCAL_RANK)")
    ap.add_argument("--checkpoint-every", type=int, default=200, metavar="N", help="steps between checkpoints")
    ap.add_argument("--stop-after", type=int, default=None, metavar="N",
                    help="end this run after N steps (codec and model steps counted together) with a checkpoint")
    ap.add_argument("--resume", action="store_true", help="continue OUT/checkpoint.pt")
    ap.add_argument("--force", action="store_true", help="overwrite what OUT holds and start afresh")
    ap.add_argument("--eval-samples", type=int, default=8, help="held-out chunks per validation episode")
    ap.add_argument("--eval-flow-steps", type=int, default=10)
    ap.add_argument("--no-progress", dest="progress", action="store_false", help="no tqdm progress bar")
    args = ap.parse_args(argv)
    for flag in ("episodes", "duration", "steps", "codec_steps", "batch", "history_frames", "horizon", "cameras",
                 "lr", "checkpoint_every", "eval_flow_steps"):
        if not getattr(args, flag) > 0:
            ap.error(f"--{flag.replace('_', '-')} {getattr(args, flag)} must be > 0")
    for flag in ("tile_width", "tile_height", "stop_after"):
        if getattr(args, flag) is not None and not getattr(args, flag) > 0:
            ap.error(f"--{flag.replace('_', '-')} {getattr(args, flag)} must be > 0")

    if not valid_state_velocity(args.state_velocity):
        ap.error(f"--state-velocity {args.state_velocity} must be 0 or >= 2")
    if args.future_frames < 0 or args.step_period < 0 or args.threads < 0 or args.eval_samples < 0:
        ap.error("--future-frames, --step-period, --threads and --eval-samples must be >= 0")
    if not 0 <= args.start_fraction < 1:
        ap.error(f"--start-fraction {args.start_fraction} must be in [0, 1)")
    if args.init_from is not None:
        missing = [f for f in RUN_FILES if f.endswith(".safetensors")
                   and not os.path.isfile(os.path.join(args.init_from, f))]
        if missing:
            ap.error(f"--init-from '{args.init_from}' lacks {missing}")
    if args.val_fraction is not None and not 0 <= args.val_fraction < 1:
        ap.error(f"--val-fraction {args.val_fraction} must be in [0, 1)")
    if args.resume and args.force:
        ap.error("--resume and --force exclude each other")
    return args


class TrainError(ValueError):
    """Bad arguments or data found before training: exit code 2."""


def _distributed(args):
    """(Parallel, whether this process initialised torch.distributed) from torchrun's environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = "cpu"
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise TrainError("--device cuda: no CUDA device is available")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    if world == 1:
        return Parallel(0, 1, device), False

    if not dist.is_initialized():
        dist.init_process_group("nccl" if args.device == "cuda" else "gloo")
        return Parallel(rank, world, device), True
    return Parallel(dist.get_rank(), dist.get_world_size(), device), False


def _barrier(par) -> None:
    if par.world > 1:
        dist.barrier()


def check_out(out: Path, resume: bool, force: bool) -> str:
    """'fresh', 'resume' or 'force'. TrainError when OUT holds results and neither flag allows it."""
    present = [f for f in OUTPUTS if (out / f).exists()]
    if resume:
        if (out / CHECKPOINT).is_file():
            return "resume"
        if present:
            raise TrainError(f"--resume: '{out}' has no {CHECKPOINT} to continue (it holds {present}: a finished run; "
                             "--force starts afresh)")
        return "fresh"
    if present and not force:
        raise TrainError(f"output folder '{out}' already holds {present}: pass --resume to continue a run or --force "
                         "to overwrite")
    return "force" if present else "fresh"


def _profile_path(args, embodiment: str) -> str:
    if args.profile == "none":
        return ""
    if args.profile != "auto":
        if not os.path.isfile(args.profile):
            raise TrainError(f"--profile '{args.profile}' does not exist")
        return args.profile
    try:
        return default_config(embodiment)
    except ValueError:
        return ""


def _bag_data(args, log):
    """(episodes, decoded bags, DecodeSettings, embodiment spec) for --bags."""
    try:
        bags = find_bags(args.bags)
        embodiment = args.embodiment or bag_embodiment(bags[0], args.joint_topic or "/joint_states")
        # no joint states to tell the robot by: kairos-eval's defaults, and decoding names the problem
        profile = _profile_path(args, embodiment) if embodiment or args.profile not in ("auto", "none") else ""
        overrides = dict(camera_topics=args.camera_topics, camera_names=args.camera_names, layout=args.layout,
                         tile_width=args.tile_width, tile_height=args.tile_height, joint_topic=args.joint_topic,
                         embodiment=args.embodiment, instruction=args.instruction, action_topic=args.action_topic)
        if profile:
            settings = settings_from_profile(profile, **overrides)
            log(f"decoding with profile {profile}")
        else:
            settings = replace(DecodeSettings(), **{k: v for k, v in overrides.items() if v is not None})
        if settings.instruction == "":
            settings.instruction = DEFAULT_INSTRUCTION
        cache = None if args.no_cache else Path(args.cache_dir) if args.cache_dir else default_cache_dir()
        episodes, decoded = load_bags(bags, settings, cache, log)
        spec = load_embodiment(decoded[0].meta["embodiment"])
    except DatasetError as exc:
        raise TrainError(str(exc)) from exc
    except ValueError as exc:
        raise TrainError(str(exc)) from exc
    if args.instruction is not None:
        for ep in episodes:
            ep.instruction = args.instruction
    return episodes, decoded, settings, spec


def _synthetic_data(args, log):
    try:
        spec = load_embodiment(args.embodiment or "dual_arm")
    except ValueError as exc:
        raise TrainError(str(exc)) from exc
    cameras = tuple(CAMERA_NAMES[:args.cameras]) if args.cameras <= len(CAMERA_NAMES) else \
        tuple(CAMERA_NAMES) + tuple(f"camera_{i}" for i in range(len(CAMERA_NAMES), args.cameras))
    layout = args.layout or {1: "single", 3: "robotwin"}.get(len(cameras), "side_by_side")
    instruction = DEFAULT_INSTRUCTION if args.instruction is None else args.instruction
    try:
        ec = EpisodeConfig(cameras, layout, args.tile_width or 64, args.tile_height or 48, duration=args.duration)
        seeds = [TRAIN_SEED_BASE + args.seed * 1000 + i for i in range(args.episodes)]
        episodes = [Episode(spec, ec, s) for s in seeds]
    except ValueError as exc:
        raise TrainError(str(exc)) from exc
    for ep in episodes:
        ep.instruction = instruction
    log(f"{len(episodes)} episodes of {args.duration:g} s, frames {episodes[0].frames.shape[1:3]} ({layout})")
    return episodes, seeds, spec


def _frame_period(episodes, rate: float) -> float:
    period = float(np.median([1.0 / ep.cfg.camera_rate for ep in episodes]))
    return 1.0 / rate if abs(period - 1.0 / rate) < 0.05 * period else round(period, 4)


def _training_config(args, source: dict) -> dict:
    """What a resumed run must share with the checkpoint."""
    skip = RESUMABLE_CHANGES
    return {"args": {k: v for k, v in sorted(vars(args).items()) if k not in skip}, "data": source}


def _write_losses(out: Path, rows: list[dict]) -> list[Path]:
    # matplotlib only here, where losses.png is drawn, with its headless backend chosen before pyplot loads
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["stage", "step", "loss", "action", "video", "lr"]
    with open(out / "losses.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in keys})
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, stage, parts in ((axes[0], "codec", ("loss",)), (axes[1], "wam", ("loss", "action", "video"))):
        sel = [r for r in rows if r["stage"] == stage]
        for part in parts:
            if sel:
                ax.plot([r["step"] for r in sel], [r[part] for r in sel], label=part, linewidth=1)
        ax.set_title("codec (L1 + MSE)" if stage == "codec" else "world-action model (flow matching)")
        ax.set_xlabel("step")
        if sel and min(r["loss"] for r in sel) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if sel:
            ax.legend()
    fig.tight_layout()
    fig.savefig(out / "losses.png", dpi=100)
    plt.close(fig)
    return [out / "losses.csv", out / "losses.png"]


def _save_checkpoint(out: Path, payload: dict) -> None:
    tmp = out / f".{CHECKPOINT}.{os.getpid()}.tmp"
    torch.save(payload, tmp)
    os.replace(tmp, out / CHECKPOINT)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return _main(args, argv)
    except TrainError as exc:
        print(f"kairos-train: {exc}", file=sys.stderr)
        return 2
    finally:
        if getattr(args, "_owns_group", False) and dist.is_initialized():
            dist.destroy_process_group()


def load_checkpoint(path: Path) -> dict:
    """checkpoint.pt through torch's weights-only unpickler (tensors and plain containers, no code).
    numpy scalars are allowed too: runs before 2026-12-03 stored the learning rate as one, and
    their checkpoints must still resume."""
    try:
        scalar = np._core.multiarray.scalar  # numpy 2
    except AttributeError:
        scalar = np.core.multiarray.scalar  # numpy 1
    allowed = [scalar, np.dtype, type(np.dtype(np.float64)), type(np.dtype(np.float32))]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def _main(args, argv) -> int:  # noqa: C901  (one straight pipeline)
    started = datetime.datetime.now(datetime.timezone.utc)
    if args.threads:
        torch.set_num_threads(args.threads)
    par, args._owns_group = _distributed(args)
    t0 = time.perf_counter()

    def log(text):
        if par.main:
            print(f"[{time.perf_counter() - t0:7.1f} s] {text}", flush=True)

    out = Path(args.out)
    mode = check_out(out, args.resume, args.force)
    if par.world > args.batch:
        raise TrainError(f"--batch {args.batch} is smaller than the {par.world} data-parallel ranks")

    # -- data (rank 0 decodes into the cache first; the others then read it) ---------------------
    error = None
    data = None
    for turn in ((True,) if par.world == 1 else (True, False)):
        if par.main == turn:
            try:
                if args.bags:
                    episodes, decoded, settings, spec = _bag_data(args, log)
                    data = ("bags", episodes, decoded, settings, spec)
                else:
                    episodes, seeds, spec = _synthetic_data(args, log)
                    data = ("synthetic", episodes, seeds, None, spec)
            except TrainError as exc:
                error = exc
        _barrier(par)
    if error is not None:
        raise error
    kind, episodes, extra, settings, spec = data
    step_period = args.step_period or spec.default_step_period

    try:
        check_lengths(episodes, args.history_frames, args.horizon, step_period, args.future_frames,
                      args.state_velocity)
    except DatasetError as exc:
        raise TrainError(str(exc)) from exc
    val_fraction = args.val_fraction if args.val_fraction is not None else (0.1 if kind == "bags" else 0.0)
    train_idx, val_idx = split_episodes(len(episodes), val_fraction, args.seed)
    train_eps, val_eps = [episodes[i] for i in train_idx], [episodes[i] for i in val_idx]
    default_instruction = settings.instruction if settings else train_eps[0].instruction
    instructions = [ep.instruction or default_instruction for ep in train_eps]
    instruction = max(set(instructions), key=instructions.count)
    frame_period = _frame_period(train_eps, settings.rate) if settings else 1.0 / train_eps[0].cfg.camera_rate
    h, w = train_eps[0].frames.shape[1:3]
    if kind == "bags":
        source = {"kind": "bags", "bags": [{"path": str(d.path), "name": d.path.name,
                                            "metadata_sha256": bag_fingerprint(d.path)["metadata"],
                                            "episodes": len(d.episodes),
                                            "observations": int(sum(len(e) for e in d.episodes)),
                                            "storage": d.meta["storage"], "instruction": d.meta["instruction"],
                                            "cached": d.cached} for d in extra],
                  "decode": {**settings.key_fields(), "profile": settings.profile}}
    else:
        source = {"kind": "synthetic", "episode_seeds": extra}
    source["split"] = {"train": [ep.source for ep in train_eps], "validation": [ep.source for ep in val_eps],
                       "val_fraction": val_fraction}
    log(f"{len(train_eps)} training / {len(val_eps)} validation episodes ({kind}), frames {w}x{h}, "
        f"embodiment {spec.name}, {par.world} rank(s) on {par.device}")

    cfg = TrainConfig(history_frames=args.history_frames, future_frames=args.future_frames, horizon=args.horizon,
                      step_period=step_period, batch=args.batch, codec_steps=args.codec_steps, steps=args.steps,
                      lr=args.lr, seed=args.seed, relative=args.action_reference == "state",
                      stepwise=args.stats_scope == "stepwise", state_velocity=args.state_velocity,
                      start_fraction=args.start_fraction)
    config = _training_config(args, source)
    ckpt = None
    if mode == "resume":
        ckpt = load_checkpoint(out / CHECKPOINT)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise TrainError(f"'{out / CHECKPOINT}' is not a kairos-train checkpoint")
        old = ckpt["config"]
        diff = sorted(k for k in set(old["args"]) | set(config["args"]) if old["args"].get(k) != config["args"].get(k))
        if old["data"].get("split") != config["data"].get("split"):
            diff.append("data (bags, episodes or split)")
        if diff:
            raise TrainError(f"--resume: settings differ from the checkpoint's in {diff} (checkpoint: "
                             f"{ {k: old['args'].get(k) for k in diff if k in old['args']} })")
        log(f"resuming {out / CHECKPOINT} at {ckpt['stage']} step {ckpt['state']['step']}")
    _barrier(par)
    if par.main:
        out.mkdir(parents=True, exist_ok=True)
        if mode == "force" and (out / CHECKPOINT).exists():
            (out / CHECKPOINT).unlink()

    # -- the run: hooks for progress, losses, checkpoints, stops ---------------------------------
    total = args.codec_steps + args.steps
    rows = list(ckpt["losses"]) if ckpt else []
    runs = list(ckpt.get("runs", [])) if ckpt else []
    seconds_before = float(ckpt.get("seconds", 0.0)) if ckpt else 0.0
    done_before = (ckpt["state"]["step"] + (args.codec_steps if ckpt["stage"] == "wam" else 0)) if ckpt else 0
    runs.append({"started": started.isoformat(timespec="seconds"), "from_step": done_before,
                 "command": shlex.join((["torchrun", f"--nproc-per-node={par.world}", "-m", "kairos_ros.train.cli"]
                                        if par.world > 1 else ["kairos-train"]) +
                                       (list(argv) if argv is not None else sys.argv[1:])),
                 "world_size": par.world, "device": str(par.device)})
    stop = {"signal": None}
    shared = {"codec_final": ckpt.get("codec_final") if ckpt else None, "stats": ckpt.get("stats") if ckpt else None}
    bar = None
    if par.main and args.progress:
        bar = tqdm(total=total, initial=done_before, desc="kairos-train", unit="step", file=sys.stderr,
                   dynamic_ncols=True)

    def on_signal(signum, _frame):
        stop["signal"] = signum

    previous = {}
    if par.main or par.world > 1:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, on_signal)
            except ValueError:  # not the main thread
                pass
    this_run = {"steps": 0}

    def checkpoint(stage: str, state) -> None:
        if par.main:
            _save_checkpoint(out, {"format": CHECKPOINT_FORMAT, "config": config, "stage": stage, "state": state(),
                                   "codec_final": shared["codec_final"], "stats": shared["stats"], "losses": rows,
                                   "runs": runs, "seconds": seconds_before + time.perf_counter() - t0})

    def make_hook(stage: str):
        def hook(step: int, values: dict, state) -> bool:
            this_run["steps"] += 1
            if par.main:
                rows.append({"stage": stage, "step": step, **{k: float(v) for k, v in values.items()}})
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(stage=stage, loss=f"{values['loss']:.4f}")
            halt = par.any(stop["signal"] is not None or (args.stop_after is not None and
                                                          this_run["steps"] >= args.stop_after))
            if halt or step % args.checkpoint_every == 0:
                checkpoint(stage, state)
            return halt
        return hook

    try:
        torch.manual_seed(args.seed)
        if shared["codec_final"] is None and args.init_from is not None:
            codec = load_conv_codec(os.path.join(args.init_from, "codec.safetensors")).float().eval()
            shared["codec_final"] = {"state": codec.state_dict(), "mean": codec.norm.mean.flatten().tolist(),
                                     "std": codec.norm.std.flatten().tolist()}
            log(f"codec from {args.init_from} (no codec stage)")
        if shared["codec_final"] is None:
            resume = ckpt["state"] if ckpt and ckpt["stage"] == "codec" else None
            codec = train_codec(train_eps, cfg, log, par, resume, make_hook("codec"))
            shared["codec_final"] = {"state": codec.state_dict(), "mean": codec.norm.mean.flatten().tolist(),
                                     "std": codec.norm.std.flatten().tolist()}
        else:
            f = shared["codec_final"]
            codec = ConvCodec(latents_mean=f["mean"], latents_std=f["std"])
            codec.load_state_dict(f["state"])
            codec.eval()
        latents = encode_episodes(codec, train_eps)
        if shared["stats"] is None:
            shared["stats"] = slot_statistics(train_eps, args.horizon, step_period, relative=cfg.relative,
                                              seed=args.seed, state_velocity=args.state_velocity)
        stats = shared["stats"]
        base = get_preset("kairos-nano")
        state_dim = spec.dim * (2 if args.state_velocity else 1)
        model_cfg = replace(base, action=replace(base.action, action_dim=spec.dim, state_dim=state_dim))
        model = KairosWAM(model_cfg)
        text = HashTextEncoder(model_cfg.video.text_dim)
        resume = ckpt["state"] if ckpt and ckpt["stage"] == "wam" else None
        if args.init_from is not None and resume is None:
            load_weights(model, os.path.join(args.init_from, "dit.safetensors"))
            load_weights(text, os.path.join(args.init_from, "text.safetensors"))
            log(f"world-action model and text encoder from {args.init_from}")
        curve = train_wam(model, text, train_eps, latents, stats, instructions, cfg, log, par, resume,
                          make_hook("wam"))
    except Stopped as exc:
        if bar is not None:
            bar.close()
        why = f"signal {stop['signal']}" if stop["signal"] is not None else f"--stop-after {args.stop_after}"
        log(f"stopped at step {int(exc.args[0])} of its stage ({why}); {out / CHECKPOINT} holds the run: continue "
            "with --resume")
        return 130 if stop["signal"] is not None else 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if bar is not None:
        bar.close()
    if not par.main:
        _barrier(par)
        return 0

    # -- rank 0: the files, the held-out evaluation, train.json -----------------------------------
    record = {"format": "kairos-train/1", "source": kind, "embodiment": spec.name, "slots": list(spec.slot_names),
              "cameras": list(train_eps[0].cfg.camera_names), "layout": train_eps[0].cfg.layout,
              "tile_width": train_eps[0].cfg.tile_width, "tile_height": train_eps[0].cfg.tile_height,
              "image_width": int(w), "image_height": int(h), "temporal_mode": "official",
              "history_frames": args.history_frames, "future_frames": args.future_frames,
              "frame_period": frame_period, "horizon": args.horizon, "step_period": step_period,
              "instruction": instruction, "action_reference": args.action_reference,
              "stats_scope": args.stats_scope, "state_velocity": args.state_velocity,
              "episodes": len(train_eps), "validation_episodes": len(val_eps),
              "codec_steps": args.codec_steps, "steps": args.steps, "batch": args.batch, "lr": args.lr,
              "seed": args.seed, "loss_curve": curve, "data": source,
              "command": runs[-1]["command"], "runs": runs, "resumed": len(runs) > 1,
              "seconds": round(seconds_before + time.perf_counter() - t0, 1),
              "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": {"host": socket.gethostname(), "platform": platform.platform(),
                          "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                          "python": platform.python_version(), "world_size": par.world, "device": str(par.device),
                          "cuda": torch.cuda.get_device_name(par.device) if par.device.type == "cuda" else None},
              "torch_threads": torch.get_num_threads(), "numpy": np.__version__, "torch": torch.__version__}
    if kind == "synthetic":
        record.update(episode_seeds=extra, duration=args.duration)
    paths = save_all(out, model, codec, text, spec, stats, record)
    paths += _write_losses(out, rows)
    if val_eps:
        files = {f"{p}_checkpoint": str(out / f"{p}.safetensors") for p in ("dit", "codec", "text")}
        record["evaluation"] = evaluate_heldout(files, spec, val_eps, record, default_instruction,
                                                args.eval_samples, args.eval_flow_steps, log)
    else:
        record["evaluation"] = {"note": "no validation episodes (--val-fraction 0 or a single episode)"}
    record["seconds"] = round(seconds_before + time.perf_counter() - t0, 1)
    (out / "train.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    if (out / CHECKPOINT).exists():
        (out / CHECKPOINT).unlink()  # finished: the three files are the result
    log("wrote " + ", ".join(str(p) for p in paths))
    _barrier(par)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
