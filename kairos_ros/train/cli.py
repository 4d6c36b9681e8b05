"""kairos-train: train kairos-nano weights on synthetic episodes, on the CPU.

    kairos-train OUT [--embodiment dual_arm] [--episodes 12] [--duration 30] [--steps 3000]
                 [--codec-steps 600] [--batch 8] [--history-frames 4] [--future-frames 2]
                 [--tile-width 64 --tile-height 48] [--seed 0] [--threads N]

Writes into OUT the three files of docs/kairos-nano-checkpoint.md (dit.safetensors,
codec.safetensors, text.safetensors, float16) and train.json (every setting, the seeds, the loss
curves, the time taken). The episodes are the ones `kairos-make-bag` would record for the same
embodiment, cameras and layout (kairos_ros/train/data.py), with seeds 1000 and up, disjoint from
the bundled bags'. The weights are trained for the `official` temporal mode with
--history-frames history frames: run the backend with temporal_mode:=official and
history_frames:= the same number (train.json says it, and the DiT's metadata too).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

TRAIN_SEED_BASE = 1000
CAMERAS = {"robotwin": ("head", "left_wrist", "right_wrist")}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="kairos-train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("out", help="output folder")
    ap.add_argument("--embodiment", default="dual_arm")
    ap.add_argument("--cameras", type=int, default=3, help="number of cameras (head, left_wrist, right_wrist, ...)")
    ap.add_argument("--layout", default=None, help="perception layout (default: robotwin for 3 cameras)")
    ap.add_argument("--tile-width", type=int, default=64)
    ap.add_argument("--tile-height", type=int, default=48)
    ap.add_argument("--episodes", type=int, default=12)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per episode")
    ap.add_argument("--steps", type=int, default=3000, help="world-action model steps")
    ap.add_argument("--codec-steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--history-frames", type=int, default=4)
    ap.add_argument("--future-frames", type=int, default=2)
    ap.add_argument("--horizon", type=int, default=32)
    ap.add_argument("--step-period", type=float, default=0.0, help="s between chunk rows (0: the embodiment's)")
    ap.add_argument("--instruction", default=None, help="default: the instruction kairos-make-bag records")
    ap.add_argument("--action-reference", choices=["state", "absolute"], default="state",
                    help="learn the chunk as offsets from the robot state (default) or as absolute slot values")
    ap.add_argument("--stats-scope", choices=["global", "stepwise"], default="stepwise",
                    help="z-score the chunk per row (default; the bundled weights: the first rows, small offsets, "
                         "then weigh as much as the last) or with one scale for all rows")
    ap.add_argument("--state-velocity", type=int, default=3, metavar="N",
                    help="give the model the slot velocities fitted over the last N frames' states next to the "
                         "state (default 3, as the bundled weights; 0: positions only, Kairos' own proprio)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args(argv)
    for flag in ("tile_width", "tile_height", "episodes", "duration", "steps", "codec_steps", "batch",
                 "history_frames", "horizon", "cameras", "lr"):
        if not getattr(args, flag) > 0:
            ap.error(f"--{flag.replace('_', '-')} {getattr(args, flag)} must be > 0")
    from kairos_ros.model.nano_format import valid_state_velocity

    if not valid_state_velocity(args.state_velocity):
        ap.error(f"--state-velocity {args.state_velocity} must be 0 or >= 2")
    if args.future_frames < 0 or args.step_period < 0 or args.threads < 0:
        ap.error("--future-frames, --step-period and --threads must be >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    import torch

    from kairos_ros.core.embodiment import load_embodiment
    from kairos_ros.model.codecs import HashTextEncoder
    from kairos_ros.model.config import get_preset
    from kairos_ros.model.wam import KairosWAM
    from kairos_ros.tools.make_bag import CAMERA_NAMES, DEFAULT_INSTRUCTION
    from kairos_ros.train.data import Episode, EpisodeConfig, slot_statistics
    from kairos_ros.train.loop import TrainConfig, encode_episodes, train_codec, train_wam
    from kairos_ros.train.save import save_all

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        spec = load_embodiment(args.embodiment)
    except ValueError as exc:
        print(f"kairos-train: {exc}", file=sys.stderr)
        return 2
    cameras = tuple(CAMERA_NAMES[:args.cameras]) if args.cameras <= len(CAMERA_NAMES) else \
        tuple(CAMERA_NAMES) + tuple(f"camera_{i}" for i in range(len(CAMERA_NAMES), args.cameras))
    layout = args.layout or {1: "single", 3: "robotwin"}.get(len(cameras), "side_by_side")
    step_period = args.step_period or spec.default_step_period
    instruction = DEFAULT_INSTRUCTION if args.instruction is None else args.instruction
    t0 = time.perf_counter()
    log = lambda text: print(f"[{time.perf_counter() - t0:7.1f} s] {text}", flush=True)  # noqa: E731
    try:
        ec = EpisodeConfig(cameras, layout, args.tile_width, args.tile_height, duration=args.duration)
        seeds = [TRAIN_SEED_BASE + args.seed * 1000 + i for i in range(args.episodes)]
        episodes = [Episode(spec, ec, s) for s in seeds]
    except ValueError as exc:
        print(f"kairos-train: {exc}", file=sys.stderr)
        return 2
    log(f"{len(episodes)} episodes of {args.duration:g} s, frames {episodes[0].frames.shape[1:3]} ({layout})")
    cfg = TrainConfig(history_frames=args.history_frames, future_frames=args.future_frames, horizon=args.horizon,
                      step_period=step_period, batch=args.batch, codec_steps=args.codec_steps, steps=args.steps,
                      lr=args.lr, seed=args.seed, relative=args.action_reference == "state",
                      stepwise=args.stats_scope == "stepwise", state_velocity=args.state_velocity)
    torch.manual_seed(args.seed)
    codec = train_codec(episodes, cfg, log)
    latents = encode_episodes(codec, episodes)
    stats = slot_statistics(episodes, args.horizon, step_period, relative=cfg.relative, seed=args.seed,
                            state_velocity=args.state_velocity)
    base = get_preset("kairos-nano")
    from dataclasses import replace

    state_dim = spec.dim * (2 if args.state_velocity else 1)
    model_cfg = replace(base, action=replace(base.action, action_dim=spec.dim, state_dim=state_dim))
    model = KairosWAM(model_cfg)
    text = HashTextEncoder(model_cfg.video.text_dim)
    curve = train_wam(model, text, episodes, latents, stats, instruction, cfg, log)
    out = Path(args.out)
    record = {"format": "kairos-train/1", "embodiment": spec.name, "slots": list(spec.slot_names),
              "cameras": list(cameras), "layout": layout, "tile_width": args.tile_width,
              "tile_height": args.tile_height, "image_width": int(episodes[0].frames.shape[2]),
              "image_height": int(episodes[0].frames.shape[1]), "temporal_mode": "official",
              "history_frames": args.history_frames, "future_frames": args.future_frames,
              "frame_period": 1.0 / ec.camera_rate,
              "horizon": args.horizon, "step_period": step_period, "instruction": instruction,
              "action_reference": args.action_reference, "stats_scope": args.stats_scope,
              "state_velocity": args.state_velocity,
              "episodes": len(episodes), "episode_seeds": seeds, "duration": args.duration,
              "codec_steps": args.codec_steps, "steps": args.steps, "batch": args.batch, "lr": args.lr,
              "seed": args.seed, "loss_curve": curve, "seconds": round(time.perf_counter() - t0, 1),
              "torch_threads": torch.get_num_threads(), "numpy": np.__version__, "torch": torch.__version__}
    paths = save_all(out, model, codec, text, spec, stats, record)
    log("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
