"""Embodiments: urdf_adapters/<robot>/adapter.yaml -> EmbodimentSpec, and slot <-> joint mapping.

adapter.yaml keys:
  name                 robot name (must match the folder for bundled robots)
  description          free text
  joints               ordered list, the controller's joint order; each entry:
                         name          joint name in /joint_states and in the trajectory
                         slot          unified action slot it maps to, "<group>.<kind>"
                                       (e.g. left_arm.joint_1, left_arm.gripper, hand.ffj3)
                         lower, upper  position limits (rad or m; normalised grippers 0..1)
                         max_velocity  > 0 (units per second)
  ignore_joints        joints /joint_states may carry that are not driven (e.g. mimic fingers)
  controller_topic     JointTrajectory topic of the ros2_control joint_trajectory_controller
  control_period       controller period, s
  default_step_period  seconds between action-chunk rows unless a node overrides it
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import yaml

_REQUIRED = ("name", "joints", "controller_topic", "control_period", "default_step_period")


@dataclass(frozen=True, eq=False)
class EmbodimentSpec:
    name: str
    description: str
    joint_names: tuple
    slot_names: tuple
    lower: np.ndarray  # (J,)
    upper: np.ndarray  # (J,)
    max_velocity: np.ndarray  # (J,)
    ignore_joints: tuple
    controller_topic: str
    control_period: float
    default_step_period: float
    path: str = ""

    @property
    def dim(self) -> int:
        return len(self.slot_names)


def urdf_adapters_dirs() -> list[str]:
    """Folders holding the bundled robots: a ROS install's share dir, then the source checkout."""
    from kairos_ros.core.paths import share_dirs

    return [os.path.join(root, "urdf_adapters") for root in share_dirs()
            if os.path.isdir(os.path.join(root, "urdf_adapters"))]


def list_embodiments() -> list[str]:
    names = set()
    for folder in urdf_adapters_dirs():
        names.update(d for d in os.listdir(folder) if os.path.isfile(os.path.join(folder, d, "adapter.yaml")))
    return sorted(names)


def load_embodiment(name_or_path: str, search_dirs: list[str] | None = None) -> EmbodimentSpec:
    """A bundled robot by name, or an adapter.yaml (or its folder) by path."""
    if not name_or_path:
        raise ValueError("embodiment name is empty")
    candidates = []
    if os.sep in name_or_path or name_or_path.endswith((".yaml", ".yml")):
        candidates.append(name_or_path if name_or_path.endswith((".yaml", ".yml"))
                          else os.path.join(name_or_path, "adapter.yaml"))
    else:
        for folder in (search_dirs or urdf_adapters_dirs()):
            candidates.append(os.path.join(folder, name_or_path, "adapter.yaml"))
    for path in candidates:
        if os.path.isfile(path):
            return parse_adapter(path)
    raise ValueError(f"unknown embodiment '{name_or_path}' (known: {list_embodiments()})")


def parse_adapter(path: str) -> EmbodimentSpec:
    with open(path) as f:
        data = yaml.safe_load(f)
    where = f"{path}:"
    if not isinstance(data, dict):
        raise ValueError(f"{where} not a mapping")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{where} missing keys {missing}")
    joints = data["joints"]
    if not isinstance(joints, list) or not joints:
        raise ValueError(f"{where} 'joints' must be a non-empty list")
    names, slots, lower, upper, vel = [], [], [], [], []
    for i, j in enumerate(joints):
        for key in ("name", "slot", "lower", "upper", "max_velocity"):
            if not isinstance(j, dict) or key not in j:
                raise ValueError(f"{where} joints[{i}] lacks '{key}'")
        if not float(j["lower"]) < float(j["upper"]):
            raise ValueError(f"{where} joint '{j['name']}': lower {j['lower']} must be < upper {j['upper']}")
        if not float(j["max_velocity"]) > 0:
            raise ValueError(f"{where} joint '{j['name']}': max_velocity {j['max_velocity']} must be > 0")
        names.append(str(j["name"]))
        slots.append(str(j["slot"]))
        lower.append(float(j["lower"]))
        upper.append(float(j["upper"]))
        vel.append(float(j["max_velocity"]))
    for label, items in (("joint", names), ("slot", slots)):
        dupes = sorted({x for x in items if items.count(x) > 1})
        if dupes:
            raise ValueError(f"{where} duplicate {label} names {dupes}")
    for key in ("control_period", "default_step_period"):
        if not float(data[key]) > 0:
            raise ValueError(f"{where} {key} {data[key]} must be > 0")
    return EmbodimentSpec(
        name=str(data["name"]), description=str(data.get("description", "")), joint_names=tuple(names),
        slot_names=tuple(slots), lower=np.array(lower), upper=np.array(upper), max_velocity=np.array(vel),
        ignore_joints=tuple(data.get("ignore_joints") or ()), controller_topic=str(data["controller_topic"]),
        control_period=float(data["control_period"]), default_step_period=float(data["default_step_period"]),
        path=os.path.abspath(path))


def state_to_slots(spec: EmbodimentSpec, positions: np.ndarray) -> np.ndarray:
    """Joint positions in controller order, (J,) or (N, J) -> unified slot values (float32)."""
    q = np.asarray(positions, dtype=np.float64)
    if q.shape[-1] != len(spec.joint_names):
        raise ValueError(f"expected {len(spec.joint_names)} joint positions for '{spec.name}', got {q.shape[-1]}")
    return q.astype(np.float32)  # slot k is joint k (explicit table in adapter.yaml)


def slots_to_joints(spec: EmbodimentSpec, values: np.ndarray) -> np.ndarray:
    """Unified slot values (H, D) -> joint positions (H, J) in controller order."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape[-1] != len(spec.slot_names):
        raise ValueError(f"expected {len(spec.slot_names)} slots for '{spec.name}', got {v.shape[-1]}")
    return v.copy()
