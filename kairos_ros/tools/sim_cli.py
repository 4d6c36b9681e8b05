"""kairos-sim: simulated tasks (MuJoCo scenes with scripted experts) from the command line.

    kairos-sim tasks                                    list the registered tasks
    kairos-sim evaluate --task NAME --backend hold,extrapolate,kairos --episodes N --seed S OUT/
                      [--config FILE] [--video] [--resume]
    kairos-sim record --task NAME --episodes N --seed S OUT/
                      [--image-size 320x240] [--camera-rate 10] [--max-duration SEC]
                      [--keep-failed] [--force] [--max-attempts M] [--storage mcap|sqlite3] [--quiet]
                      [--action-noise F] [--noise-period SEC]

record: runs the task's scripted expert on seeds S, S+1, ... and writes one rosbag2 per kept
episode (OUT/episode_<seed>/, the topics a real robot publishes: cameras, /joint_states,
/instruction, plus /joint_commands and /kairos/sim/success) and OUT/index.json (per episode: seed,
success, frames). Failed episodes are dropped unless --keep-failed, and further seeds are tried
until N are kept (at most --max-attempts, default 2N+10). Existing episodes are not overwritten
without --force. --action-noise F records perturbed (DART-style) demonstrations: the expert's
targets are executed with a smooth random offset of F x each joint's range (std), /joint_commands
keeps the expert's own targets (the labels), /kairos/sim/executed_commands what was executed.
Exit codes: 0 done, 1 fewer than N episodes kept, 2 bad arguments or refusing
to overwrite.

evaluate: closed loop. --mode fast (lib/sim/closed_loop.py): each backend, called directly, drives
the simulated robot through the graph's own perception, adapter (armed, every safety gate) and
controller code, the simulation paused during inference. --mode live: the whole graph per episode
(kairos-bringup --sim: sim_node, perception, world model, armed adapter over DDS, on sim time at
--real-time-factor), so inference time counts too. Seeds S .. S+N-1 (keep them disjoint from
the seeds the demonstrations were recorded with). Writes OUT/report.{json,md}, OUT/success.png and
OUT/episodes_<backend>.jsonl; --video adds a GIF per episode; --resume continues an interrupted run.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kairos_ros.core.params import ParameterError
from kairos_ros.core.paths import find_data
from kairos_ros.lib.sim.evaluate import run_fast, run_live
from kairos_ros.lib.sim.base import CAMERA_SIZE
from kairos_ros.lib.sim.record import DEFAULT_START_TIME, RecordOptions, record
from kairos_ros.lib.sim.registry import TASKS, make_task, task_names

PROG = "kairos-sim"


def image_size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    try:
        width, height = int(w), int(h)
    except ValueError:
        width = height = 0
    if not sep or not (8 <= width <= 4096 and 8 <= height <= 4096):
        raise argparse.ArgumentTypeError(f"'{text}' is not WIDTHxHEIGHT with sides in 8..4096 (e.g. 320x240)")
    return width, height


def add_record_parser(sub) -> None:
    p = sub.add_parser("record", help="record scripted-expert demonstrations as rosbag2 (one bag per episode)")
    p.add_argument("out", help="output folder (episodes go to OUT/episode_<seed>/, plus OUT/index.json)")
    p.add_argument("--task", required=True, help=f"task name ({', '.join(task_names())})")
    p.add_argument("--episodes", type=int, default=1, help="episodes to keep (default 1)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--image-size", type=image_size, default=CAMERA_SIZE, metavar="WxH",
                   help=f"camera image size (default {CAMERA_SIZE[0]}x{CAMERA_SIZE[1]}, the simulated cameras' size)")
    p.add_argument("--camera-rate", type=float, default=10.0,
                   help="camera frames per second, a divisor of the control rate (default 10)")
    p.add_argument("--max-duration", type=float, default=None, metavar="SEC",
                   help="stop each episode after SEC simulated seconds (default: the task's episode length)")
    p.add_argument("--stop-on-success", action="store_true",
                   help="end an episode 0.5 s after its first success")
    p.add_argument("--keep-failed", action="store_true", help="keep unsuccessful episodes too")
    p.add_argument("--force", action="store_true", help="replace existing episode bags")
    p.add_argument("--max-attempts", type=int, default=None, help="seeds to try at most (default 2N+10)")
    p.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    p.add_argument("--start-time", type=float, default=None, help="bag clock at reset (s, default 1700000000)")
    p.add_argument("--action-noise", type=float, default=0.0, metavar="F",
                   help="perturbed demonstrations: execute the expert's targets plus a smooth random offset whose "
                        "std is F x each joint's range (0..0.1; default 0, none); /joint_commands keeps the "
                        "expert's targets")
    p.add_argument("--noise-period", type=float, default=0.5, metavar="SEC",
                   help="seconds between the offset's random knots (default 0.5)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_record)


def cmd_record(args, ap) -> int:
    if args.task not in TASKS:
        ap.error(f"unknown task '{args.task}' (known: {', '.join(sorted(TASKS))})")
    if args.episodes < 1:
        ap.error(f"--episodes {args.episodes} must be >= 1")
    if args.max_duration is not None and not args.max_duration > 0:
        ap.error(f"--max-duration {args.max_duration} must be > 0")
    if args.max_attempts is not None and args.max_attempts < args.episodes:
        ap.error(f"--max-attempts {args.max_attempts} must be >= --episodes {args.episodes}")
    width, height = args.image_size
    try:
        opts = RecordOptions(width=width, height=height, camera_rate=args.camera_rate,
                             max_duration=args.max_duration, stop_on_success=args.stop_on_success,
                             storage=args.storage,
                             start_time=DEFAULT_START_TIME if args.start_time is None else args.start_time,
                             action_noise=args.action_noise, noise_period=args.noise_period)
    except ValueError as exc:
        ap.error(f"--action-noise/--noise-period: {exc}")
    try:
        index = record(args.task, args.episodes, args.seed, Path(args.out), opts, keep_failed=args.keep_failed,
                       force=args.force, max_attempts=args.max_attempts, progress=not args.quiet)
    except FileExistsError as exc:
        print(f"{PROG} record: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"{PROG} record: {exc}", file=sys.stderr)
        return 2
    eps = index["episodes"]
    done = index["recorded"]
    wins = sum(e["success"] for e in eps)
    print(f"{PROG} record: {done['kept']} episode(s) kept in {args.out} ({wins}/{len(eps)} successful in "
          f"index.json, {done['tried']} tried now)")
    if done["kept"] < args.episodes:
        print(f"{PROG} record: only {done['kept']} of {args.episodes} episodes kept", file=sys.stderr)
        return 1
    return 0


def add_evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="closed-loop evaluation of backends on seeded episodes (fast mode)")
    p.add_argument("out", help="report folder")
    p.add_argument("--task", required=True, help=f"task name ({', '.join(task_names())})")
    p.add_argument("--backend", default="hold,extrapolate,kairos",
                   help="comma-separated: hold, extrapolate, kairos, and expert_replay (the scripted expert's "
                        "plan read from the simulator: a privileged reference for the loop, not a model)")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--config", default="", help="bringup profile (default: config/<embodiment>.yaml)")
    p.add_argument("--mode", choices=["fast", "live"], default="fast",
                   help="fast: the backend called directly, the simulation paused during inference; live: the whole "
                        "graph (kairos-bringup --sim, every node its own process, adapter armed, sim time)")
    p.add_argument("--real-time-factor", type=float, default=0.5, help="live: simulated seconds per wall second")
    p.add_argument("--video", action="store_true", help="a GIF of the first camera per episode")
    p.add_argument("--resume", action="store_true", help="keep the episodes already in OUT")
    p.add_argument("--max-duration", type=float, default=0.0, metavar="SEC",
                   help="fast: end each episode after SEC simulated seconds (default: the task's length; for smoke tests)")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args, ap) -> int:
    if args.task not in TASKS:
        ap.error(f"argument --task: unknown task '{args.task}' (known: {', '.join(sorted(TASKS))})")
    if args.episodes < 1:
        ap.error(f"argument --episodes: {args.episodes} must be >= 1")
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    known = ("hold", "extrapolate", "kairos", "expert_replay")
    bad = [b for b in backends if b not in known]
    if bad or not backends:
        ap.error(f"argument --backend: {bad or args.backend!r} not among {list(known)}")
    if args.mode == "live" and "expert_replay" in backends:
        ap.error("argument --backend: expert_replay reads the simulator's state and exists in fast mode only")
    if not 0.01 <= args.real_time_factor <= 10:
        ap.error(f"argument --real-time-factor: {args.real_time_factor} must be in [0.01, 10]")
    config = args.config
    if not config:
        probe = make_task(args.task)
        embodiment = probe.info.embodiment
        probe.close()
        config = find_data("config", f"{embodiment}.yaml") or ""
        if not config:
            ap.error(f"no bringup profile config/{embodiment}.yaml: give --config")
    try:
        if args.mode == "live":
            report = run_live(args.task, backends, args.episodes, args.seed, Path(args.out), config,
                              args.real_time_factor, video=args.video, resume=args.resume)
        else:
            report = run_fast(args.task, backends, args.episodes, args.seed, Path(args.out), config,
                              video=args.video, resume=args.resume, max_duration=args.max_duration)
    except (ParameterError, RuntimeError) as exc:
        print(f"{PROG} evaluate: {exc}", file=sys.stderr)
        return 2
    for name, s in report["backends"].items():
        print(f"{name}: {s['successes']}/{s['episodes']} successful ({s['success_rate']:.0%}, 95% interval "
              f"{s['ci95'][0]:.0%}-{s['ci95'][1]:.0%})")
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0


def cmd_tasks(args, ap) -> int:
    for name, (task_ref, expert_ref) in sorted(TASKS.items()):
        print(f"{name}\t{task_ref}\t{expert_ref}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)
    t = sub.add_parser("tasks", help="list the registered tasks")
    t.set_defaults(func=cmd_tasks)
    add_record_parser(sub)
    add_evaluate_parser(sub)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    return args.func(args, ap)


if __name__ == "__main__":
    raise SystemExit(main())
