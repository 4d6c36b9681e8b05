"""The unified cross-embodiment action space: named slots, normalisation, and exact converters
to and from the layouts of the released Kairos fine-tunes.

Slots are named `<group>.<kind>`:

| group                  | kinds                                           | units                         |
|------------------------|-------------------------------------------------|-------------------------------|
| `arm`, `left_arm`, `right_arm` | `joint_1` .. `joint_7`                  | rad (absolute joint position) |
|                        | `gripper`                                       | 0 closed .. 1 open            |
|                        | `eef_x`, `eef_y`, `eef_z`                       | m, robot base frame           |
|                        | `eef_rx`, `eef_ry`, `eef_rz`                    | rad, axis-angle               |
| `hand`                 | one per finger joint, e.g. `ffj3`, `thj5`       | rad                           |

An embodiment's adapter.yaml lists the slots it uses (in controller order); the state uses the
same names. Layouts of the released models:
- RoboTwin 2.0 (dual arm): action = state = 14 values, per arm 6 joints then the gripper
  (left first; grippers at indices 6 and 13), absolute positions.
- LIBERO-plus (single arm): state 8 = eef position 3 + axis-angle 3 + gripper qpos 2;
  action 7 = delta eef pose 6 + gripper, the gripper sign-binarised (-1 open / +1 close).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

ROBOTWIN_SLOTS = tuple(f"{side}_arm.{k}" for side in ("left", "right")
                       for k in ("joint_1", "joint_2", "joint_3", "joint_4", "joint_5", "joint_6", "gripper"))
LIBERO_STATE_SLOTS = ("arm.eef_x", "arm.eef_y", "arm.eef_z", "arm.eef_rx", "arm.eef_ry", "arm.eef_rz",
                      "arm.finger_1", "arm.finger_2")
LIBERO_ACTION_SLOTS = ("arm.d_eef_x", "arm.d_eef_y", "arm.d_eef_z", "arm.d_eef_rx", "arm.d_eef_ry", "arm.d_eef_rz",
                       "arm.gripper_cmd")
CLAMP = 5.0


def to_layout(values: np.ndarray, slot_names, layout_slots) -> np.ndarray:
    """(..., D) values named by slot_names -> (..., len(layout_slots)) in the layout's order.
    Raises ValueError naming the slots the layout needs and the embodiment lacks."""
    index = {name: i for i, name in enumerate(slot_names)}
    missing = [s for s in layout_slots if s not in index]
    if missing:
        raise ValueError(f"slots {missing} are not among the embodiment's slots {list(slot_names)}")
    return np.asarray(values)[..., [index[s] for s in layout_slots]]


def from_layout(values: np.ndarray, layout_slots, slot_names, fill: float = np.nan) -> np.ndarray:
    """The inverse of to_layout: slots the layout does not carry get `fill`."""
    values = np.asarray(values)
    out = np.full(values.shape[:-1] + (len(slot_names),), fill, dtype=np.result_type(values, np.float32))
    index = {name: i for i, name in enumerate(slot_names)}
    unknown = [s for s in layout_slots if s not in index]
    if unknown:
        raise ValueError(f"layout slots {unknown} are not among the embodiment's slots {list(slot_names)}")
    out[..., [index[s] for s in layout_slots]] = values
    return out


def libero_gripper_command(gripper: np.ndarray) -> np.ndarray:
    """LIBERO's gripper action is sign-binarised: -1 (open) or +1 (close); 0 maps to open."""
    return np.where(np.asarray(gripper) > 0, 1.0, -1.0)


@dataclass
class Normalizer:
    """z-score (mean/std) or min/max to [-1, 1], clamped to +-5 as Kairos does."""

    kind: str  # "zscore" or "minmax"
    a: np.ndarray  # mean or min
    b: np.ndarray  # std or max
    eps: float = 1e-8

    def __post_init__(self):
        if self.kind not in ("zscore", "minmax"):
            raise ValueError(f"normalisation '{self.kind}' is not 'zscore' or 'minmax'")
        self.a, self.b = np.asarray(self.a, np.float64), np.asarray(self.b, np.float64)
        if self.a.shape != self.b.shape:
            raise ValueError(f"statistics of shapes {self.a.shape} and {self.b.shape} differ")

    def normalize(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.kind == "zscore":
            y = (x - self.a) / (self.b + self.eps)
        else:
            y = 2 * (x - self.a) / (self.b - self.a + self.eps) - 1
        return np.clip(y, -CLAMP, CLAMP)

    def denormalize(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, np.float64)
        if self.kind == "zscore":
            return y * (self.b + self.eps) + self.a
        return (y + 1) / 2 * (self.b - self.a + self.eps) + self.a


def load_stats(path: str, kind: str, which: str = "action", scope: str = "global") -> Normalizer:
    """A Normalizer from a Kairos stats JSON (`{state|action}/default/{global,stepwise}_{min,max,mean,std,...}`)."""
    with open(path) as f:
        stats = json.load(f)
    keys = ("mean", "std") if kind == "zscore" else ("min", "max")
    try:
        a, b = (stats[f"{which}/default/{scope}_{k}"] for k in keys)
    except KeyError as exc:
        raise ValueError(f"{path}: no key {exc.args[0]!r} (have {sorted(stats)[:8]}...)") from exc
    return Normalizer(kind, a, b)
