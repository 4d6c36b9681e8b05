"""kairos-eval: score a prediction backend offline on a recorded bag (MCAP or sqlite3).

    kairos-eval BAG --backend extrapolate [--embodiment dual_arm] [--cameras T1 T2 ...]
                [--layout robotwin] [--horizon 32] [--step-period S] [--history 8]
                [--out DIR] [--max-steps N] [--slop 0.05] [--rate 10]
    kairos-eval BAG --backend hold,extrapolate      (compare backends on the same bag)

Runs the bag through the perception pipeline (exactly as the perception node), an observation
history and the backend, and compares the predicted action chunks with the joint states that
were recorded afterwards (MAE/RMSE per slot and horizon step), the predicted frames with the real
future frames (PSNR/SSIM), and times backend.predict. Writes report.json and report.md (+ PNG
plots) into --out (default out/eval-<bag>-<backend>/) and prints the report's path. With several
comma-separated backends, each report goes to --out/<backend>/ and comparison.md/.json (which
backend is best at which horizon step) to --out (default out/eval-<bag>-compare/).
Exit codes: 0 done, 2 bad arguments (unknown backend or embodiment, missing bag or topic).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kairos_ros.lib.bagsource import EvalError
from kairos_ros.eval.compare import compare, crossover_text, write_comparison
from kairos_ros.eval.offline import evaluate_bag
from kairos_ros.eval.report import write_report


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
    ap.add_argument("--tile-width", type=int, default=160)
    ap.add_argument("--tile-height", type=int, default=128)
    ap.add_argument("--horizon", type=int, default=32)
    ap.add_argument("--step-period", type=float, default=0.0, help="s between chunk rows (0: embodiment default)")
    ap.add_argument("--history", type=int, default=8, help="observations given to the backend")
    ap.add_argument("--frames", type=int, default=4, help="predicted frames per step (num_predicted_frames)")
    ap.add_argument("--max-steps", type=int, default=None, help="stop after N predictions")
    ap.add_argument("--slop", type=float, default=0.05, help="synchronisation slop (s)")
    ap.add_argument("--rate", type=float, default=10.0, help="perception rate_hz, emulated in bag time")
    ap.add_argument("--joint-topic", default="/joint_states")
    ap.add_argument("--backend-param", action="append", default=[], metavar="[BACKEND:]KEY=VALUE",
                    help="extra backend constructor option (value parsed as JSON when it can be); "
                         "with a BACKEND: prefix it goes to that backend only (when comparing several)")
    ap.add_argument("--out", default=None, help="report folder (default out/eval-<bag>-<backend>)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    for flag, value in (("--horizon", args.horizon), ("--history", args.history), ("--rate", args.rate),
                        ("--slop", args.slop), ("--tile-width", args.tile_width), ("--tile-height", args.tile_height)):
        if not value > 0:
            ap.error(f"{flag} {value} must be > 0")
    if args.step_period < 0:
        ap.error(f"--step-period {args.step_period} must be >= 0")
    if args.max_steps is not None and args.max_steps < 1:
        ap.error(f"--max-steps {args.max_steps} must be >= 1")
    if args.frames < 0:
        ap.error(f"--frames {args.frames} must be >= 0")
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


def _evaluate(args, backend: str) -> dict:
    return evaluate_bag(
        args.bag, backend, embodiment=args.embodiment, cameras=args.cameras, camera_names=args.camera_names,
        layout=args.layout, tile_width=args.tile_width, tile_height=args.tile_height, horizon=args.horizon,
        step_period=args.step_period, history=args.history, num_predicted_frames=args.frames,
        max_steps=args.max_steps, slop=args.slop, rate=args.rate, joint_topic=args.joint_topic,
        backend_params=args.backend_params[backend], progress=not args.quiet)


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
