"""kairos-make-bag: write a small deterministic rosbag2 with cameras, joint states and commands.

    kairos-make-bag OUT [--storage mcap|sqlite3] [--embodiment aloha] [--cameras 3]
                    [--bgr8-camera NAME] [--compressed-camera NAME --compressed-format jpeg]
                    [--duration 8] [--camera-rate 10] [--joint-rate 50] [--width 128 --height 96]
                    [--seed 0] [--start-time 1700000000.0] [--command-lead 0.1]

What it writes: see kairos_ros/lib/synthetic_bag.py (printed under --help).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kairos_ros.lib import bagio
from kairos_ros.lib import synthetic_bag
from kairos_ros.lib.synthetic_bag import CAMERA_NAMES, DEFAULT_INSTRUCTION, bag_size, make_bag


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="kairos-make-bag", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=synthetic_bag.__doc__.split("\n\n", 2)[2])
    ap.add_argument("output", help="bag folder to create (must not exist unless --force)")
    ap.add_argument("--storage", choices=bagio.STORAGES, default="mcap")
    ap.add_argument("--embodiment", default="aloha", help="a robot under urdf_adapters/ (aloha, franka_panda, "
                    "shadow_hand), an alias (dual_arm, single_arm, dexterous_hand) or an adapter.yaml path "
                    "(default aloha)")
    ap.add_argument("--cameras", type=int, default=3, help=f"number of cameras 1-3, named {CAMERA_NAMES}")
    ap.add_argument("--camera-names", default=None, help="comma-separated names instead of the defaults")
    ap.add_argument("--bgr8-camera", default=None, metavar="NAME", help="write this camera as bgr8")
    ap.add_argument("--compressed-camera", default=None, metavar="NAME",
                    help="write this camera as CompressedImage on <topic>/compressed")
    ap.add_argument("--compressed-format", choices=["jpeg", "png"], default="jpeg")
    ap.add_argument("--jpeg-quality", type=int, default=90)
    ap.add_argument("--duration", type=float, default=8.0, help="seconds (default 8)")
    ap.add_argument("--camera-rate", type=float, default=10.0, help="Hz (default 10)")
    ap.add_argument("--joint-rate", type=float, default=50.0, help="Hz, joint states and commands (default 50)")
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--height", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start-time", type=float, default=1700000000.0, help="bag clock at the first message (s)")
    ap.add_argument("--command-lead", type=float, default=0.1, help="s between a command and its target time")
    ap.add_argument("--instruction", default=DEFAULT_INSTRUCTION)
    ap.add_argument("--no-compress", action="store_true", help="MCAP: do not zstd-compress chunks")
    ap.add_argument("--force", action="store_true", help="replace an existing bag folder")
    args = ap.parse_args(argv)
    names = args.camera_names.split(",") if args.camera_names else list(CAMERA_NAMES[:max(args.cameras, 0)])
    if not 1 <= args.cameras <= 3 and not args.camera_names:
        ap.error(f"--cameras {args.cameras} must be 1, 2 or 3")
    if len(set(names)) != len(names) or not all(names):
        ap.error(f"--camera-names '{args.camera_names}' must be distinct, non-empty names")
    for flag, value in (("--bgr8-camera", args.bgr8_camera), ("--compressed-camera", args.compressed_camera)):
        if value is not None and value not in names:
            ap.error(f"{flag} '{value}' is not one of the cameras {names}")
    if args.bgr8_camera and args.bgr8_camera == args.compressed_camera:
        ap.error(f"camera '{args.bgr8_camera}' cannot be both bgr8 and compressed")
    for flag, value in (("--duration", args.duration), ("--camera-rate", args.camera_rate),
                        ("--joint-rate", args.joint_rate)):
        if not value > 0:
            ap.error(f"{flag} {value} must be > 0")
    if not (8 <= args.width <= 4096 and 8 <= args.height <= 4096):
        ap.error(f"--width {args.width} / --height {args.height} must be within 8..4096")
    if args.command_lead < 0:
        ap.error(f"--command-lead {args.command_lead} must be >= 0")
    args.camera_names = names
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if Path(args.output).exists() and not args.force:
        print(f"kairos-make-bag: '{args.output}' exists (use --force to replace it)", file=sys.stderr)
        return 2
    try:
        counts = make_bag(args)
    except (FileNotFoundError, KeyError, ValueError, FileExistsError) as exc:
        print(f"kairos-make-bag: {exc}", file=sys.stderr)
        return 2
    total = sum(counts.values())
    print(f"kairos-make-bag: wrote {args.output} ({args.storage}, {total} messages, "
          f"{bag_size(Path(args.output)) / 1024:.0f} KiB)")
    for topic, count in sorted(counts.items()):
        print(f"  {topic}: {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
