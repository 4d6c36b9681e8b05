"""Embodiments: urdf_adapters/<robot>/{robot.urdf, adapter.yaml} -> EmbodimentSpec, and slot <-> joint mapping.

adapter.yaml keys (docs/embodiments.md has the step-by-step guide):
  name                 robot name, equal to its folder under urdf_adapters/
  aliases              other names that load this robot (e.g. [dual_arm]); optional
  description          free text; optional
  urdf                 the robot's URDF, relative to adapter.yaml (limits come from it)
  base_link            URDF link the robot stands on (default: the URDF's root link)
  end_effectors        URDF links whose paths a visualiser draws; optional
  max_acceleration     acceleration limit of every joint (rad/s^2, m/s^2): URDF has no such field;
                       optional when every joint gives its own
  joints               ordered list, the controller's joint order; each entry:
                         name          URDF joint (its name in /joint_states and the trajectory)
                         slot          unified action slot, "<group>.<kind>" (left_arm.joint_1, arm.gripper)
                         slot_map      optional [position at slot 0, position at slot 1]: joint position =
                                       p0 + (p1 - p0) * slot value (grippers: 0 closed .. 1 open)
                         lower, upper, max_velocity, max_acceleration
                                       optional overrides; position and velocity overrides may only
                                       narrow the URDF's limits
  ignore_joints        movable URDF joints the controller does not drive (mimic followers);
                       every movable URDF joint is in `joints` or here
  controller_topic     JointTrajectory topic of the ros2_control joint_trajectory_controller
  control_period       controller period, s
  default_step_period  seconds between action-chunk rows unless a node overrides it
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import yaml

from kairos_ros.core.paths import share_dirs
from kairos_ros.core.urdf import read_urdf

_REQUIRED = ("name", "urdf", "joints", "controller_topic", "control_period", "default_step_period")
_JOINT_KEYS = {"name", "slot", "slot_map", "lower", "upper", "max_velocity", "max_acceleration"}


@dataclass(frozen=True, eq=False)
class EmbodimentSpec:
    name: str
    description: str
    joint_names: tuple
    slot_names: tuple
    lower: np.ndarray  # (J,) joint position limits (rad or m)
    upper: np.ndarray  # (J,)
    max_velocity: np.ndarray  # (J,) units/s
    ignore_joints: tuple
    controller_topic: str
    control_period: float
    default_step_period: float
    path: str = ""  # the adapter.yaml
    max_acceleration: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (J,) units/s^2
    slot_offset: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (J,) joint = offset + scale * slot
    slot_scale: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (J,)
    aliases: tuple = ()
    urdf_path: str = ""  # absolute
    base_link: str = ""
    end_effectors: tuple = ()
    mimic: dict = field(default_factory=dict)  # URDF mimic joint -> (master, multiplier, offset)

    @property
    def dim(self) -> int:
        return len(self.slot_names)

    def names(self) -> tuple:
        """The robot's name and its aliases."""
        return (self.name,) + tuple(self.aliases)


def urdf_adapters_dirs() -> list[str]:
    """Folders holding the bundled robots: a ROS install's share dir, then the source checkout."""
    return [os.path.join(root, "urdf_adapters") for root in share_dirs()
            if os.path.isdir(os.path.join(root, "urdf_adapters"))]


def _bundled(search_dirs=None) -> dict[str, str]:
    """robot name -> adapter.yaml, the first folder that has it winning."""
    out: dict[str, str] = {}
    for folder in (search_dirs or urdf_adapters_dirs()):
        for d in sorted(os.listdir(folder)):
            path = os.path.join(folder, d, "adapter.yaml")
            if os.path.isfile(path):
                out.setdefault(d, path)
    return out


def list_embodiments(search_dirs=None) -> list[str]:
    return sorted(_bundled(search_dirs))


def list_aliases(search_dirs=None) -> dict[str, str]:
    """alias -> robot name of the bundled robots; an alias claimed twice (or equal to a robot's
    name) is an error naming both."""
    robots = _bundled(search_dirs)
    out: dict[str, str] = {}
    for name, path in robots.items():
        with open(path) as f:
            data = yaml.safe_load(f)
        aliases = data.get("aliases") or [] if isinstance(data, dict) else []
        for alias in aliases if isinstance(aliases, list) else []:
            alias = str(alias)
            if alias in robots or out.get(alias, name) != name:
                raise ValueError(f"alias '{alias}' of '{name}' is already the name or an alias of "
                                 f"'{out.get(alias, alias)}'")
            out[alias] = name
    return out


def load_embodiment(name_or_path: str, search_dirs: list[str] | None = None) -> EmbodimentSpec:
    """A bundled robot by name or alias, or an adapter.yaml (or its folder) by path."""
    if not name_or_path:
        raise ValueError("embodiment name is empty")
    if os.sep in name_or_path or name_or_path.endswith((".yaml", ".yml")):
        path = name_or_path if name_or_path.endswith((".yaml", ".yml")) else os.path.join(name_or_path, "adapter.yaml")
        if os.path.isfile(path):
            return parse_adapter(path)
        raise ValueError(f"unknown embodiment '{name_or_path}': no file {path}")
    robots = _bundled(search_dirs)
    aliases = list_aliases(search_dirs)
    name = aliases.get(name_or_path, name_or_path)
    if name not in robots:
        raise ValueError(f"unknown embodiment '{name_or_path}' (known: {sorted(robots)}; aliases: "
                         f"{', '.join(f'{a} = {n}' for a, n in sorted(aliases.items())) or 'none'})")
    spec = parse_adapter(robots[name])
    if spec.name != name:
        raise ValueError(f"{robots[name]}: name '{spec.name}' must equal its folder name '{name}'")
    return spec


def _number(where: str, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{where} {key} {value!r} is not a number")
    return float(value)


def _joint(where: str, j: dict, urdf, default_acc) -> tuple:
    """(lower, upper, max_velocity, max_acceleration, offset, scale) of one joints[] entry."""
    name = str(j["name"])
    unknown = sorted(set(j) - _JOINT_KEYS)
    if unknown:
        raise ValueError(f"{where} joint '{name}': unknown keys {unknown} (allowed: {sorted(_JOINT_KEYS)})")
    uj = urdf.joints.get(name)
    if uj is None or uj.type not in ("revolute", "continuous", "prismatic"):
        raise ValueError(f"{where} joint '{name}' is not a movable joint of {urdf.path} "
                         f"(movable: {urdf.movable()})")
    w = f"{where} joint '{name}':"
    lower = _number(w, "lower", j["lower"]) if "lower" in j else uj.lower
    upper = _number(w, "upper", j["upper"]) if "upper" in j else uj.upper
    if lower < uj.lower or upper > uj.upper:
        raise ValueError(f"{w} limits [{lower}, {upper}] exceed the URDF's [{uj.lower}, {uj.upper}] "
                         "(overrides may only narrow them)")
    if not lower < upper:
        raise ValueError(f"{w} lower {lower} must be < upper {upper}")
    vel = _number(w, "max_velocity", j["max_velocity"]) if "max_velocity" in j else uj.velocity
    if not vel > 0:
        raise ValueError(f"{w} max_velocity {j.get('max_velocity', vel)} must be > 0" +
                         ("" if "max_velocity" in j else " (the URDF gives none: set max_velocity)"))
    if uj.velocity > 0 and vel > uj.velocity:
        raise ValueError(f"{w} max_velocity {vel} exceeds the URDF's {uj.velocity}")
    acc = _number(w, "max_acceleration", j["max_acceleration"]) if "max_acceleration" in j else default_acc
    if acc is None:
        raise ValueError(f"{w} no acceleration limit: set max_acceleration (top level or per joint)")
    if not acc > 0:
        raise ValueError(f"{w} max_acceleration {j.get('max_acceleration', acc)} must be > 0")
    offset, scale = 0.0, 1.0
    if "slot_map" in j:
        sm = j["slot_map"]
        if not (isinstance(sm, list) and len(sm) == 2):
            raise ValueError(f"{w} slot_map {sm!r} must be [position at 0, position at 1]")
        p0, p1 = (_number(w, "slot_map", x) for x in sm)
        if p0 == p1:
            raise ValueError(f"{w} slot_map {sm} maps every slot value to one position")
        offset, scale = p0, p1 - p0
    return lower, upper, vel, acc, offset, scale


def parse_adapter(path: str) -> EmbodimentSpec:
    with open(path) as f:
        data = yaml.safe_load(f)
    where = f"{path}:"
    if not isinstance(data, dict):
        raise ValueError(f"{where} not a mapping")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{where} missing keys {missing}")
    urdf_path = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(path)), str(data["urdf"])))
    try:
        urdf = read_urdf(urdf_path)
    except ValueError as exc:
        raise ValueError(f"{where} urdf: {exc}") from None
    default_acc = data.get("max_acceleration")
    if default_acc is not None:
        default_acc = _number(where, "max_acceleration", default_acc)
        if not default_acc > 0:
            raise ValueError(f"{where} max_acceleration {default_acc} must be > 0")
    joints = data["joints"]
    if not isinstance(joints, list) or not joints:
        raise ValueError(f"{where} 'joints' must be a non-empty list")
    names, slots, rows = [], [], []
    for i, j in enumerate(joints):
        for key in ("name", "slot"):
            if not isinstance(j, dict) or key not in j:
                raise ValueError(f"{where} joints[{i}] lacks '{key}'")
        names.append(str(j["name"]))
        slots.append(str(j["slot"]))
        rows.append(_joint(where, j, urdf, default_acc))
    for label, items in (("joint", names), ("slot", slots)):
        dupes = sorted({x for x in items if items.count(x) > 1})
        if dupes:
            raise ValueError(f"{where} duplicate {label} names {dupes}")
    ignore = tuple(str(x) for x in (data.get("ignore_joints") or ()))
    both = sorted(set(ignore) & set(names))
    if both:
        raise ValueError(f"{where} joints {both} are both driven and in ignore_joints")
    unknown = sorted(set(ignore) - set(urdf.joints))
    if unknown:
        raise ValueError(f"{where} ignore_joints {unknown} are not joints of {urdf_path}")
    left = [n for n in urdf.movable() if n not in names and n not in ignore]
    if left:
        raise ValueError(f"{where} URDF joints {left} are neither in 'joints' nor in 'ignore_joints'")
    base = str(data.get("base_link") or urdf.root)
    ees = tuple(str(x) for x in (data.get("end_effectors") or ()))
    bad = [x for x in (base,) + ees if x not in urdf.links]
    if bad:
        raise ValueError(f"{where} links {bad} (base_link / end_effectors) are not in {urdf_path}")
    for key in ("control_period", "default_step_period"):
        if not _number(where, key, data[key]) > 0:
            raise ValueError(f"{where} {key} {data[key]} must be > 0")
    aliases = data.get("aliases") or []
    if not isinstance(aliases, list):
        raise ValueError(f"{where} aliases {aliases!r} must be a list of names")
    cols = [np.array(c, dtype=np.float64) for c in zip(*rows)]
    return EmbodimentSpec(
        name=str(data["name"]), description=str(data.get("description", "")), joint_names=tuple(names),
        slot_names=tuple(slots), lower=cols[0], upper=cols[1], max_velocity=cols[2], ignore_joints=ignore,
        controller_topic=str(data["controller_topic"]), control_period=float(data["control_period"]),
        default_step_period=float(data["default_step_period"]), path=os.path.abspath(path),
        max_acceleration=cols[3], slot_offset=cols[4], slot_scale=cols[5], aliases=tuple(str(a) for a in aliases),
        urdf_path=urdf_path, base_link=base, end_effectors=ees,
        mimic={n: j.mimic for n, j in urdf.joints.items() if j.mimic})


def state_to_slots(spec: EmbodimentSpec, positions: np.ndarray) -> np.ndarray:
    """Joint positions in controller order, (J,) or (N, J) -> unified slot values (float32):
    slot k = (q_k - slot_offset_k) / slot_scale_k (the identity for joints without slot_map)."""
    q = np.asarray(positions, dtype=np.float64)
    if q.shape[-1] != len(spec.joint_names):
        raise ValueError(f"expected {len(spec.joint_names)} joint positions for '{spec.name}', got {q.shape[-1]}")
    return ((q - spec.slot_offset) / spec.slot_scale).astype(np.float32)


def slots_to_joints(spec: EmbodimentSpec, values: np.ndarray) -> np.ndarray:
    """Unified slot values (H, D) -> joint positions (H, J) in controller order (float64, a new array)."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape[-1] != len(spec.slot_names):
        raise ValueError(f"expected {len(spec.slot_names)} slots for '{spec.name}', got {v.shape[-1]}")
    return spec.slot_offset + spec.slot_scale * v
