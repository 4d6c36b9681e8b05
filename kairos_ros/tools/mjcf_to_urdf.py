"""kairos-make-urdf: URDFs of the reference robots from the MJCF models of installed PyPI packages.

    kairos-make-urdf --all                    regenerate urdf_adapters/<robot>/robot.urdf for every robot
    kairos-make-urdf aloha --out-dir DIR      one robot, written to DIR/aloha/robot.urdf
    kairos-make-urdf --all --check            exit 1 when a committed URDF differs from a fresh one
    kairos-make-urdf --list                   the robots and where their models come from
    kairos-make-urdf --mjcf FILE --root BODY -o robot.urdf [--velocity 2.0 --effort 10]
                                              any MJCF (your own robot)

The robots' assets are read where pip installed them (gym-aloha, gymnasium-robotics) and are never
copied into this repository. What the conversion does is documented in kairos_ros/tools/urdf_build.py
and docs/embodiments.md. MJCF has no velocity limits (and not always effort limits): the table
below gives them per robot, with their source.
"""
from __future__ import annotations

import argparse
import fnmatch
import importlib.metadata
import importlib.util
import math
import os
import sys
from dataclasses import dataclass, field

import mujoco

from kairos_ros.core.paths import _SOURCE_ROOT
from kairos_ros.tools.urdf_build import Options, mjcf_to_urdf


@dataclass(frozen=True)
class Robot:
    name: str
    distribution: str  # pip distribution that ships the MJCF
    module: str  # its import name
    mjcf: str  # path inside the module's folder
    root: str
    root_link: str = ""
    subtrees: tuple = ()
    sites: tuple = ()
    mimic: dict = field(default_factory=dict)
    limits: tuple = ()  # (fnmatch pattern on the MJCF joint name, effort or None = actuator forcerange, velocity)
    limit_source: str = ""
    description: str = ""

    def mjcf_path(self) -> str:
        """Where pip put the MJCF (found without importing the package, which may be slow or noisy)."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(f"{self.distribution} is not installed (pip install -r requirements.txt)")
        return os.path.join(list(spec.submodule_search_locations)[0], self.mjcf)

    def joint_limits(self, joint: str):
        for pattern, effort, velocity in self.limits:
            if fnmatch.fnmatchcase(joint, pattern):
                return effort, velocity
        return None, None


_PI = math.pi
ROBOTS = {r.name: r for r in (
    Robot("aloha", "gym-aloha", "gym_aloha", "assets/bimanual_viperx_transfer_cube.xml", root="world",
          root_link="world", subtrees=("vx300s_left", "vx300s_right"),
          # gym-aloha drives the right finger as the mirror of the left one (constants.py).
          mimic={"vx300s_left/right_finger": ("vx300s_left/left_finger", -1.0, 0.0),
                 "vx300s_right/right_finger": ("vx300s_right/left_finger", -1.0, 0.0)},
          limits=(("*/waist", 10.0, _PI), ("*/shoulder", 20.0, _PI), ("*/elbow", 15.0, _PI),
                  ("*/forearm_roll", 2.0, _PI), ("*/wrist_angle", 5.0, _PI), ("*/wrist_rotate", 1.0, _PI),
                  ("*_finger", 5.0, 1.0)),
          limit_source="effort (N m, N) and velocity (rad/s, m/s): Interbotix vx300s description "
                       "(interbotix_xsarm_descriptions vx300s.urdf.xacro)",
          description="ALOHA: two Trossen ViperX 300 6-DoF arms with parallel grippers (gym-aloha's "
                      "transfer-cube scene without the table and the cube)"),
    Robot("franka_panda", "gymnasium-robotics", "gymnasium_robotics",
          "envs/assets/kitchen_franka/kitchen_assets/kitchen_env_model.xml", root="panda0_link0",
          sites=("end_effector",),
          mimic={"robot:panda0_finger_joint2": ("robot:panda0_finger_joint1", 1.0, 0.0)},
          limits=(("robot:panda0_joint[1-4]", None, 2.175), ("robot:panda0_joint[5-7]", None, 2.61),
                  ("robot:panda0_finger_joint*", None, 0.2)),
          limit_source="effort: the MJCF actuators' forcerange; velocity: Franka's control parameters "
                       "(2.175 / 2.61 rad/s; fingers 0.2 m/s as the MJCF's comments)",
          description="Franka Emika Panda 7-DoF arm with its two-finger hand (gymnasium-robotics' "
                      "Franka Kitchen model without the kitchen)"),
    Robot("shadow_hand", "gymnasium-robotics", "gymnasium_robotics", "envs/assets/hand/reach.xml",
          root="robot0:hand mount",
          sites=tuple(f"robot0:S_{f}tip" for f in ("ff", "mf", "rf", "lf", "th")),
          limits=(("robot0:*", None, 2.0),),
          limit_source="effort: the MJCF actuators' forcerange (a coupled J0 takes its J1's); velocity: "
                       "2.0 rad/s as Shadow's sr_description",
          description="Shadow Dexterous Hand: wrist, four fingers and thumb, 24 joints of which 20 are "
                      "actuated (gymnasium-robotics' hand model without the manipulated object)"),
)}


def generate(robot: Robot) -> str:
    path = robot.mjcf_path()
    model = mujoco.MjModel.from_xml_path(path)
    version = importlib.metadata.version(robot.distribution)
    header = (f"Generated by kairos-make-urdf from {robot.distribution} {version}: {robot.module}/{robot.mjcf}\n"
              f"(mujoco {mujoco.__version__}). Do not edit; regenerate with urdf_adapters/regenerate.sh.\n"
              f"{robot.description}.\nLimits: position from the MJCF ranges; {robot.limit_source}.\n"
              "Geometry: simple shapes only (meshes as their bounding boxes, capsules as cylinders).")
    opts = Options(root=robot.root, root_link=robot.root_link, subtrees=robot.subtrees, sites=robot.sites,
                   mimic=dict(robot.mimic), limits=robot.joint_limits, robot_name=robot.name,
                   header=header.replace("--", "-"))
    return mjcf_to_urdf(model, opts)


def default_out_dir() -> str:
    return os.path.join(_SOURCE_ROOT, "urdf_adapters")


def _custom(args) -> int:
    model = mujoco.MjModel.from_xml_path(args.mjcf)
    def limit(_name):
        return args.effort, args.velocity

    opts = Options(root=args.root, root_link=args.root_link, subtrees=tuple(args.subtree), sites=tuple(args.site),
                   limits=limit, robot_name=args.name,
                   header=f"Generated by kairos-make-urdf from {os.path.basename(args.mjcf)} (mujoco {mujoco.__version__}).")
    text = mjcf_to_urdf(model, opts)
    with open(args.output, "w") as f:
        f.write(text)
    print(f"kairos-make-urdf: wrote {args.output}")
    return 0


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="kairos-make-urdf", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("robots", nargs="*", help=f"robots to generate ({', '.join(ROBOTS)})")
    ap.add_argument("--all", action="store_true", help="every robot")
    ap.add_argument("--out-dir", default=None, help="folder holding <robot>/robot.urdf (default: urdf_adapters/)")
    ap.add_argument("--check", action="store_true", help="compare with the files there instead of writing")
    ap.add_argument("--list", action="store_true", help="list the robots and their model sources")
    ap.add_argument("--mjcf", help="convert this MJCF file instead of a reference robot")
    ap.add_argument("--root", default="world", help="with --mjcf: root body (default: the world body)")
    ap.add_argument("--root-link", default="", help="with --mjcf: URDF name of the root link (default: the "
                    "root body's name, sanitised)")
    ap.add_argument("--subtree", action="append", default=[], help="with --mjcf: body below the root to take "
                                                                  "(repeatable; default all but free bodies)")
    ap.add_argument("--site", action="append", default=[], help="with --mjcf: site to add as a link (repeatable)")
    ap.add_argument("--velocity", type=float, default=None, help="with --mjcf: velocity limit of every joint")
    ap.add_argument("--effort", type=float, default=None,
                    help="with --mjcf: effort limit of every joint (default: its actuator's forcerange)")
    ap.add_argument("--name", default="robot", help="with --mjcf: robot name")
    ap.add_argument("-o", "--output", help="with --mjcf: URDF file to write")
    args = ap.parse_args(argv)
    unknown = [r for r in args.robots if r not in ROBOTS]
    if unknown:
        ap.error(f"unknown robots {unknown} (known: {list(ROBOTS)})")
    if args.mjcf and not (args.output and args.velocity):
        ap.error("--mjcf needs -o/--output and --velocity")
    if not (args.mjcf or args.list or args.all or args.robots):
        ap.error("name robots, or give --all, --list or --mjcf")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for r in ROBOTS.values():
            print(f"{r.name}: {r.description}\n  model: {r.distribution} {r.module}/{r.mjcf}\n  limits: {r.limit_source}")
        return 0
    try:
        if args.mjcf:
            return _custom(args)
        out_dir = args.out_dir or default_out_dir()
        differ = []
        for name in (list(ROBOTS) if args.all else args.robots):
            text = generate(ROBOTS[name])
            path = os.path.join(out_dir, name, "robot.urdf")
            if args.check:
                old = open(path).read() if os.path.isfile(path) else None
                if old != text:
                    differ.append(path)
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
            print(f"kairos-make-urdf: wrote {path}")
    except (ValueError, OSError, ImportError) as exc:
        print(f"kairos-make-urdf: {exc}", file=sys.stderr)
        return 2
    if differ:
        print(f"kairos-make-urdf: out of date (run urdf_adapters/regenerate.sh): {differ}", file=sys.stderr)
        return 1
    if args.check:
        print("kairos-make-urdf: every URDF is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
