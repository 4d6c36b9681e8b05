"""The little of a URDF an adapter needs: links, joints, their limits and mimic couplings (stdlib XML).

Forward kinematics is not done here (pinocchio reads the same file for that).
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

MOVABLE = ("revolute", "continuous", "prismatic")
TYPES = MOVABLE + ("fixed", "floating", "planar")


@dataclass(frozen=True)
class UrdfJoint:
    name: str
    type: str
    parent: str
    child: str
    lower: float  # -inf / inf when the joint has no position limits (continuous)
    upper: float
    velocity: float  # 0 when the URDF gives none
    effort: float
    mimic: tuple | None = None  # (master joint, multiplier, offset)


@dataclass(frozen=True)
class UrdfModel:
    path: str
    name: str
    links: tuple
    joints: dict  # name -> UrdfJoint, in file order
    root: str

    def movable(self) -> list[str]:
        return [n for n, j in self.joints.items() if j.type in MOVABLE]


def _float(path: str, where: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        out = float(value)
    except ValueError:
        raise ValueError(f"{path}: {where} = {value!r} is not a number") from None
    if math.isnan(out):
        raise ValueError(f"{path}: {where} is NaN")
    return out


def read_urdf(path: str) -> UrdfModel:
    """Parse a URDF; raises ValueError naming the file and the problem."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise ValueError(f"URDF '{path}' does not exist") from None
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not valid XML ({exc})") from None
    if root.tag != "robot":
        raise ValueError(f"{path}: root element is <{root.tag}>, not <robot>")
    links = tuple(link.get("name", "") for link in root.findall("link"))
    if not links or not all(links):
        raise ValueError(f"{path}: needs named <link> elements")
    joints: dict[str, UrdfJoint] = {}
    for el in root.findall("joint"):
        name, kind = el.get("name", ""), el.get("type", "")
        if not name or kind not in TYPES:
            raise ValueError(f"{path}: joint {name!r} has type {kind!r} (one of {list(TYPES)} expected)")
        if name in joints:
            raise ValueError(f"{path}: joint '{name}' is defined twice")
        parent, child = el.find("parent"), el.find("child")
        if parent is None or child is None or parent.get("link") not in links or child.get("link") not in links:
            raise ValueError(f"{path}: joint '{name}' must name an existing parent and child link")
        limit = el.find("limit")
        lim = limit.attrib if limit is not None else {}
        if kind in ("revolute", "prismatic"):
            if limit is None:
                raise ValueError(f"{path}: {kind} joint '{name}' has no <limit>")
            lower = _float(path, f"joint '{name}' lower", lim.get("lower"), 0.0)
            upper = _float(path, f"joint '{name}' upper", lim.get("upper"), 0.0)
        else:
            lower, upper = -math.inf, math.inf
        mimic = None
        m = el.find("mimic")
        if m is not None:
            mimic = (m.get("joint", ""), _float(path, f"joint '{name}' mimic multiplier", m.get("multiplier"), 1.0),
                     _float(path, f"joint '{name}' mimic offset", m.get("offset"), 0.0))
        joints[name] = UrdfJoint(name, kind, parent.get("link"), child.get("link"), lower, upper,
                                 _float(path, f"joint '{name}' velocity", lim.get("velocity"), 0.0),
                                 _float(path, f"joint '{name}' effort", lim.get("effort"), 0.0), mimic)
    for j in joints.values():
        if j.mimic and j.mimic[0] not in joints:
            raise ValueError(f"{path}: joint '{j.name}' mimics unknown joint '{j.mimic[0]}'")
    children = {j.child for j in joints.values()}
    roots = [link for link in links if link not in children]
    if len(roots) != 1:
        raise ValueError(f"{path}: a URDF tree has exactly one root link, found {roots}")
    return UrdfModel(path, root.get("name", ""), links, joints, roots[0])
