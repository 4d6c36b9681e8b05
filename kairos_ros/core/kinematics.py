"""Forward kinematics from a URDF with pinocchio: named joint positions -> positions of named links.

The URDF is loaded once. Joint positions come by name, in any order (as sensor_msgs/JointState
gives them). Mimic joints follow the URDF: q = multiplier * q_master + offset, always computed
from the master (a value given for a mimic joint is ignored, as robot_state_publisher does).
Revolute, continuous and prismatic joints are supported (any axis); fixed joints are frames.
Positions are expressed in `base_link` (default: the URDF's root link), so they can be drawn in
RViz with frame_id = base_link.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from kairos_ros.core.embodiment import slots_to_joints


class KinematicsError(ValueError):
    """A URDF, joint or link the kinematics cannot use; the message names it."""


@dataclass(frozen=True)
class Mimic:
    joint: str
    master: str
    multiplier: float
    offset: float


def parse_mimics(urdf_text: str, where: str = "URDF") -> dict[str, Mimic]:
    """The <mimic> tags of a URDF: mimic joint name -> Mimic."""
    try:
        root = ET.fromstring(urdf_text)
    except ET.ParseError as exc:
        raise KinematicsError(f"{where}: not valid XML: {exc}") from exc
    out = {}
    for joint in root.iter("joint"):
        tag = joint.find("mimic")
        if tag is None:
            continue
        name, master = joint.get("name", ""), tag.get("joint", "")
        try:
            out[name] = Mimic(name, master, float(tag.get("multiplier", 1.0)), float(tag.get("offset", 0.0)))
        except ValueError as exc:
            raise KinematicsError(f"{where}: joint '{name}' has a bad <mimic>: {exc}") from exc
    return out


def urdf_root_link(urdf_text: str, where: str = "URDF") -> str:
    """The one link that is no joint's child."""
    try:
        root = ET.fromstring(urdf_text)
    except ET.ParseError as exc:
        raise KinematicsError(f"{where}: not valid XML: {exc}") from exc
    links = [link.get("name", "") for link in root.findall("link")]
    children = {c.get("link") for j in root.findall("joint") for c in j.findall("child")}
    roots = [n for n in links if n not in children]
    if len(roots) != 1:
        raise KinematicsError(f"{where}: expected one root link, found {roots}")
    return roots[0]


class Kinematics:
    """FK of one robot for a fixed list of links (`frames`), vectorised over rows of positions."""

    def __init__(self, urdf_path: str, frames: Sequence[str], base_link: str = ""):
        import pinocchio as pin  # imported here: only visualisation needs it

        self._pin = pin
        if not os.path.isfile(urdf_path):
            raise KinematicsError(f"URDF '{urdf_path}' does not exist")
        with open(urdf_path) as f:
            text = f.read()
        self.urdf_path = urdf_path
        self.mimics = parse_mimics(text, urdf_path)
        try:
            self.model = pin.buildModelFromUrdf(urdf_path)  # mimic joints stay ordinary joints here
        except (RuntimeError, ValueError) as exc:
            raise KinematicsError(f"URDF '{urdf_path}': pinocchio cannot load it: {exc}") from exc
        self.data = self.model.createData()
        self._q_index: dict[str, tuple[int, bool]] = {}  # joint -> (idx_q, continuous)
        for jid in range(1, self.model.njoints):
            name, jm = self.model.names[jid], self.model.joints[jid]
            if jm.nv != 1:
                raise KinematicsError(f"URDF '{urdf_path}': joint '{name}' ({jm.shortname()}) has {jm.nv} "
                                      "degrees of freedom; only revolute, continuous and prismatic are supported")
            self._q_index[name] = (jm.idx_q, jm.nq == 2)  # nq 2: continuous, stored as (cos, sin)
        for m in self.mimics.values():
            if m.joint not in self._q_index or m.master not in self._q_index:
                raise KinematicsError(f"URDF '{urdf_path}': mimic joint '{m.joint}' follows '{m.master}', "
                                      "and both must be movable joints of the model")
        self.mimic_names = tuple(n for n in self._q_index if n in self.mimics)
        self.joint_names = tuple(n for n in self._q_index if n not in self.mimics)  # the independent ones
        self._column = {name: i for i, name in enumerate(self.joint_names)}
        bodies = [f.name for f in self.model.frames if f.type == pin.FrameType.BODY]
        self.root_link = bodies[0] if bodies else "universe"  # the URDF's root link comes first
        self.base_link = base_link or self.root_link
        self.frames = tuple(frames)  # may be empty: (H, 0, 3) positions
        self._base_id = self._frame_id(self.base_link)
        self._frame_ids = [self._frame_id(name) for name in self.frames]
        self._mimic_order = self._resolve_mimic_order()

    @property
    def movable_joints(self) -> tuple:
        """Every non-fixed joint, mimic joints included, in model order."""
        return tuple(self._q_index)

    def neutral(self) -> np.ndarray:
        """(A,) a resting value per independent joint: 0 clamped into its URDF limits."""
        out = np.zeros(len(self.joint_names))
        for i, name in enumerate(self.joint_names):
            idx, continuous = self._q_index[name]
            if not continuous:
                lo, hi = self.model.lowerPositionLimit[idx], self.model.upperPositionLimit[idx]
                if lo <= hi:
                    out[i] = min(max(0.0, lo), hi)
        return out

    def _frame_id(self, name: str) -> int:
        pin = self._pin
        if self.model.existFrame(name, pin.FrameType.BODY):
            return self.model.getFrameId(name, pin.FrameType.BODY)
        if self.model.existFrame(name):
            return self.model.getFrameId(name)
        links = [f.name for f in self.model.frames if f.type == pin.FrameType.BODY]
        raise KinematicsError(f"unknown link '{name}' in URDF '{self.urdf_path}' (links: {links})")

    def _resolve_mimic_order(self) -> list[Mimic]:
        """Mimics ordered so that a mimic of a mimic is computed after its master."""
        done, order = set(self.joint_names), []
        pending = [self.mimics[n] for n in self.mimic_names]
        while pending:
            ready = [m for m in pending if m.master in done]
            if not ready:
                raise KinematicsError(f"URDF '{self.urdf_path}': mimic joints {[m.joint for m in pending]} "
                                      "form a cycle")
            order += ready
            done.update(m.joint for m in ready)
            pending = [m for m in pending if m.joint not in done]
        return order

    # -- named positions -> rows of independent joint values -------------------------------------
    def joint_rows(self, names: Sequence[str], positions, defaults=None, strict: bool = True) -> np.ndarray:
        """Named positions (J,) or (H, J) -> (H, A) values of self.joint_names.

        Mimic joints among `names` are ignored (computed from their masters). Names the URDF
        does not know raise KinematicsError with strict, else they are skipped. Independent
        joints not given take `defaults` ((A,) in self.joint_names order, or a name -> value
        mapping); without a default they raise KinematicsError naming them.
        """
        q = np.asarray(positions, dtype=np.float64)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != len(names):
            raise KinematicsError(f"{len(names)} joint names for positions of shape {np.shape(positions)}")
        if not np.all(np.isfinite(q)):
            bad = sorted({names[j] for j in np.argwhere(~np.isfinite(q))[:, 1]})
            raise KinematicsError(f"non-finite positions for joints {bad}")
        unknown = [n for n in names if n not in self._q_index]
        if unknown and strict:
            raise KinematicsError(f"unknown joints {unknown} for URDF '{self.urdf_path}' "
                                  f"(movable joints: {list(self._q_index)})")
        rows = np.full((q.shape[0], len(self.joint_names)), np.nan)
        if defaults is not None:
            rows[:] = self._defaults_vector(defaults)
        for j, name in enumerate(names):
            col = self._column.get(name)
            if col is not None:
                rows[:, col] = q[:, j]
        missing = [self.joint_names[c] for c in np.flatnonzero(np.isnan(rows[0]))]
        if missing:
            raise KinematicsError(f"no positions for joints {missing} (given: {list(names)})")
        return rows

    def _defaults_vector(self, defaults) -> np.ndarray:
        if isinstance(defaults, Mapping):
            return np.array([float(defaults.get(n, np.nan)) for n in self.joint_names])
        vec = np.asarray(defaults, dtype=np.float64)
        if vec.shape != (len(self.joint_names),):
            raise KinematicsError(f"defaults of shape {vec.shape}, expected ({len(self.joint_names)},) for "
                                  f"joints {list(self.joint_names)}")
        return vec

    def full_rows(self, rows: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(H, A) independent values -> (names, (H, A + M)) with every mimic joint filled in."""
        rows = np.asarray(rows, dtype=np.float64)
        values = {n: rows[:, i] for i, n in enumerate(self.joint_names)}
        for m in self._mimic_order:
            values[m.joint] = m.multiplier * values[m.master] + m.offset
        names = list(self._q_index)
        return names, np.stack([values[n] for n in names], axis=1)

    # -- FK ---------------------------------------------------------------------------------------
    def positions(self, rows: np.ndarray) -> np.ndarray:
        """(H, A) values of self.joint_names -> (H, E, 3) positions of self.frames in base_link."""
        pin = self._pin
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(self.joint_names):
            raise KinematicsError(f"rows of shape {rows.shape}, expected (H, {len(self.joint_names)})")
        names, full = self.full_rows(rows)
        out = np.empty((rows.shape[0], len(self.frames), 3))
        q = np.zeros(self.model.nq)
        for h in range(rows.shape[0]):
            for name, value in zip(names, full[h]):
                idx, continuous = self._q_index[name]
                if continuous:
                    q[idx], q[idx + 1] = np.cos(value), np.sin(value)
                else:
                    q[idx] = value
            pin.forwardKinematics(self.model, self.data, q)
            base = pin.updateFramePlacement(self.model, self.data, self._base_id)
            rot_t, origin = base.rotation.T, base.translation
            for e, fid in enumerate(self._frame_ids):
                out[h, e] = rot_t @ (pin.updateFramePlacement(self.model, self.data, fid).translation - origin)
        return out

    def fk(self, names: Sequence[str], positions, defaults=None, strict: bool = True) -> np.ndarray:
        """Named positions (J,) or (H, J) -> (H, E, 3) link positions in base_link."""
        return self.positions(self.joint_rows(names, positions, defaults, strict))


def chunk_rows(kin: Kinematics, spec, values: np.ndarray, defaults=None) -> np.ndarray:
    """A chunk in the unified action space, (H, D) slots -> (H, A) values of kin.joint_names
    (joints the embodiment does not drive take `defaults`)."""
    return kin.joint_rows(list(spec.joint_names), slots_to_joints(spec, values), defaults)


def chunk_path(kin: Kinematics, spec, values: np.ndarray, defaults=None) -> np.ndarray:
    """End-effector path of a chunk: (H, D) slots -> (H, E, 3) positions of kin.frames."""
    return kin.positions(chunk_rows(kin, spec, values, defaults))
