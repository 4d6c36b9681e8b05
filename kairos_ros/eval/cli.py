"""kairos-eval: score a prediction backend offline on a recorded bag (MCAP or sqlite3).

    kairos-eval BAG --backend kairos          (the robot's bringup profile, as kairos-bringup runs it)
    kairos-eval BAG --backend hold,extrapolate,kairos      (compare backends on the same bag)
    kairos-eval BAG --backend extrapolate --config none --embodiment dual_arm --cameras T1 T2 ...
                [--layout robotwin] [--horizon 32] [--step-period S] [--history 8]
                [--out DIR] [--max-steps N] [--slop 0.05] [--rate 10]

Settings come from the bringup profile exactly as kairos-bringup reads it (--config FILE; by
default config/<embodiment>.yaml, the embodiment detected from the bag's joint names): the
perception section (camera topics and names, layout, tile size, slop, rate, joint topic) and the
world_model section (horizon, history, step period, predicted frames, instruction, and the kairos
backend's model files and settings). A flag given on the command line overrides the profile;
--config none uses the flags and their defaults only. The instruction follows one rule in the live
graph and here: the profile's world_model.instruction (or --instruction) at the start, replaced by
each message on the bag's instruction topic; the report states where it came from.

Runs the bag through the perception pipeline (exactly as the perception node), an observation
history and the backend, and compares the predicted action chunks with the joint states that
were recorded afterwards (MAE/RMSE per slot and horizon step), the predicted frames with the real
future frames (PSNR/SSIM), and times backend.predict. Writes report.json and report.md (+ PNG
plots) into --out (default out/eval-<bag>-<backend>/) and prints the report's path. With several
comma-separated backends, each report goes to --out/<backend>/ and comparison.md/.json (which
backend is best at which horizon step) to --out (default out/eval-<bag>-compare/).
Exit codes: 0 done, 2 bad arguments (unknown backend or embodiment, missing bag or topic, a
profile that does not validate).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kairos_ros.core.params import ParameterError
from kairos_ros.eval.compare import compare, crossover_text, write_comparison
from kairos_ros.eval.offline import evaluate_bag
from kairos_ros.eval.report import write_report
from kairos_ros.lib.bagsource import EvalError
from kairos_ros.lib.dataset import DatasetError, bag_embodiment
from kairos_ros.lib.profile import default_config, load_profile
from kairos_ros.params.world_model import backend_options, check_world_model


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="kairos-eval", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("bag", help="rosbag2 folder (or its .mcap / .db3 file)")
    ap.add_argument("--backend", required=True,
                    help="hold, extrapolate, kairos, ...; several comma-separated to compare them")
    ap.add_argument("--embodiment", default=None, help="name or adapter.yaml path (default: from the joint names)")
    ap.add_argument("--cameras", nargs="+", default=None, metavar="TOPIC",
                    help="camera topics in layout order (default: every image topic, head first)")
    ap.add_argument("--camera-names", nargs="+", default=None, metavar="NAME",
                    help="one name per camera topic (default: from the topic, /cameras/head/image_raw -> head)")
    ap.add_argument("--layout", choices=["single", "side_by_side", "robotwin"], default=None,
                    help="default: single / side_by_side / robotwin for 1 / 2 / 3 cameras")
    ap.add_argument("--tile-width", type=int, default=None, help="default: profile, else 160")
    ap.add_argument("--tile-height", type=int, default=None, help="default: profile, else 128")
    ap.add_argument("--horizon", type=int, default=None, help="default: profile, else 32")
    ap.add_argument("--step-period", type=float, default=None, help="s between chunk rows (0: embodiment default)")
    ap.add_argument("--history", type=int, default=None, help="observations given to the backend (default: profile, else 8)")
    ap.add_argument("--frames", type=int, default=None, help="predicted frames per step (default: profile, else 4)")
    ap.add_argument("--max-steps", type=int, default=None, help="stop after N predictions")
    ap.add_argument("--slop", type=float, default=None, help="synchronisation slop (s; default: profile, else 0.05)")
    ap.add_argument("--rate", type=float, default=None, help="perception rate_hz, emulated in bag time (default: profile, else 10)")
    ap.add_argument("--joint-topic", default=None, help="default: profile, else /joint_states")
    ap.add_argument("--config", default="auto", metavar="FILE",
                    help="bringup profile (auto: config/<embodiment>.yaml as kairos-bringup finds it; none: flags only)")
    ap.add_argument("--instruction", default=None, help="the instruction at the start (default: the profile's)")
    ap.add_argument("--backend-param", action="append", default=[], metavar="[BACKEND:]KEY=VALUE",
                    help="extra backend constructor option (value parsed as JSON when it can be); "
                         "with a BACKEND: prefix it goes to that backend only (when comparing several)")
    ap.add_argument("--out", default=None, help="report folder (default out/eval-<bag>-<backend>)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    for flag, value in (("--horizon", args.horizon), ("--history", args.history), ("--rate", args.rate),
                        ("--slop", args.slop), ("--tile-width", args.tile_width), ("--tile-height", args.tile_height)):
        if value is not None and not value > 0:
            ap.error(f"{flag} {value} must be > 0")
    if args.step_period is not None and args.step_period < 0:
        ap.error(f"--step-period {args.step_period} must be >= 0")
    if args.max_steps is not None and args.max_steps < 1:
        ap.error(f"--max-steps {args.max_steps} must be >= 1")
    if args.frames is not None and args.frames < 0:
        ap.error(f"--frames {args.frames} must be >= 0")
    if args.config not in ("auto", "none") and not Path(args.config).is_file():
        ap.error(f"--config '{args.config}' does not exist")
    args.backends = [b.strip() for b in args.backend.split(",")]
    if any(not b for b in args.backends) or len(set(args.backends)) != len(args.backends):
        ap.error(f"--backend '{args.backend}' must name backends once each, comma-separated")
    args.backend_params = {b: {} for b in args.backends}
    for item in args.backend_param:
        key, sep, value = item.partition("=")
        target, colon, key = key.rpartition(":") if ":" in key else ("", "", key)
        if not sep or not key or (colon and not target):
            ap.error(f"--backend-param '{item}' must look like KEY=VALUE or BACKEND:KEY=VALUE")
        if target and target not in args.backend_params:
            ap.error(f"--backend-param '{item}' names backend '{target}', which is not among {args.backends}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        for backend in ([target] if target else args.backends):
            args.backend_params[backend][key] = parsed
    return args


def default_out_dir(bag: str, backend: str) -> Path:
    path = Path(bag)
    name = (path.parent if path.is_file() else path).resolve().name or "bag"
    return Path("out") / f"eval-{name}-{backend}"


# command-line flag -> evaluate_bag option
FLAGS = {"cameras": "cameras", "camera_names": "camera_names", "layout": "layout", "tile_width": "tile_width",
         "tile_height": "tile_height", "horizon": "horizon", "step_period": "step_period", "history": "history",
         "frames": "num_predicted_frames", "slop": "slop", "rate": "rate", "joint_topic": "joint_topic"}


def profile_path(args) -> tuple[str, str | None]:
    """(profile file or "", embodiment) for --config and --embodiment; EvalError when none fits."""
    embodiment = args.embodiment
    if args.config == "none":
        return "", embodiment
    if not embodiment:
        try:
            embodiment = bag_embodiment(args.bag, args.joint_topic or "/joint_states") or None
        except DatasetError as exc:
            raise EvalError(str(exc)) from exc
    if args.config != "auto":
        if not embodiment:
            raise EvalError(f"--config '{args.config}': the bag has no joint states to tell the embodiment by; "
                            "pass --embodiment")
        return args.config, embodiment
    if not embodiment:
        return "", None  # no joint states: the defaults, and evaluation names the missing topic
    try:
        return default_config(embodiment), embodiment
    except ValueError:
        return "", embodiment  # a robot without a profile: the flags and their defaults


def settings(args, backend: str, profile: str, embodiment: str | None) -> dict:
    """evaluate_bag options: the profile's sections validated as the nodes validate them, then the
    flags given on the command line, then --backend-param."""
    opts = {}
    if profile:
        try:
            prof = load_profile(profile, backend, embodiment)
            check_world_model(prof.world_model)
        except ParameterError as exc:
            raise EvalError(f"profile '{profile}' (backend '{backend}'): {exc}") from exc
        p, w = prof.perception, prof.world_model
        opts.update(layout=p["layout"], tile_width=p["tile_width"], tile_height=p["tile_height"], slop=p["slop"],
                    rate=p["rate_hz"], queue_size=p["queue_size"], joint_topic=p["joint_states_topic"],
                    horizon=w["horizon"], step_period=w["step_period"], history=w["history_length"],
                    num_predicted_frames=w["num_predicted_frames"], instruction=w["instruction"],
                    instruction_from=f"profile {profile}" if w["instruction"] else "")
        if p["camera_topics"]:
            opts["cameras"] = list(p["camera_topics"])
        if p["camera_names"]:
            opts["camera_names"] = list(p["camera_names"])
        if p["camera_crops"]:
            opts["camera_crops"] = list(p["camera_crops"])
        opts["backend_params"] = {k: v for k, v in backend_options(w).items() if k != "num_predicted_frames"}
    for flag, key in FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            opts[key] = value
    if args.instruction is not None:
        opts.update(instruction=args.instruction, instruction_from="--instruction")
    opts["backend_params"] = {**opts.get("backend_params", {}), **args.backend_params[backend]}
    return opts


def _evaluate(args, backend: str) -> dict:
    profile, embodiment = profile_path(args)
    summary = evaluate_bag(args.bag, backend, embodiment=embodiment, max_steps=args.max_steps,
                           progress=not args.quiet, **settings(args, backend, profile, embodiment))
    summary["config"]["profile"] = profile or None
    return summary


def _say(backend: str, summary: dict) -> None:
    actions, counts = summary["actions"], summary["counts"]
    mae1 = actions["per_step"]["mae"][0] if actions["per_step"]["mae"] else None
    print(f"kairos-eval [{backend}]: {counts['predictions']} predictions from {counts['observations']} observations; "
          f"action MAE {_num(actions['overall']['mae'])} (step 1: {_num(mae1)}); "
          f"frames PSNR {_num(summary['frames']['overall']['psnr'])} dB", file=sys.stderr)


def main(argv=None) -> int:
    args = parse_args(argv)
    summaries = {}
    try:
        for backend in args.backends:
            summaries[backend] = _evaluate(args, backend)
            _say(backend, summaries[backend])
    except EvalError as exc:
        print(f"kairos-eval: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    if len(args.backends) == 1:
        print(write_report(summaries[args.backend], args.out or default_out_dir(args.bag, args.backend)))
        return 0
    out = Path(args.out) if args.out else default_out_dir(args.bag, "compare")
    dirs = {}
    for backend, summary in summaries.items():
        write_report(summary, out / backend)
        dirs[backend] = backend
    comparison = compare(summaries)
    path = write_comparison(comparison, out, dirs)
    print(f"kairos-eval: {crossover_text(comparison)}", file=sys.stderr)
    print(path)
    return 0


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


if __name__ == "__main__":
    raise SystemExit(main())
