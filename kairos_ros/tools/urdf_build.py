"""MJCF kinematics (a compiled mujoco.MjModel) -> URDF text. Used by kairos-make-urdf.

What is converted, and how (docs/embodiments.md explains it for users):
- Links: one per MuJoCo body of the robot (the subtrees below the chosen root). A body's link
  frame is exactly the MuJoCo body frame, so forward kinematics of the URDF equals MuJoCo's.
  Inertial: body mass, centre of mass and principal inertia (MuJoCo's compiled values, which
  include inertia computed from geoms). Bodies of mass 0 get no <inertial>.
- Joints: hinge -> revolute (continuous when unlimited), slide -> prismatic, with origin, axis
  and position limits from the MJCF range. A body with several joints gets a chain of dummy links
  `<joint>_link`, one joint each, in MuJoCo's order. A hinge anchor `pos` off the body origin is
  honoured (the joint frame sits at the anchor, a fixed joint `<body>_anchor` puts the body frame
  back), and a reference position `ref` is baked into the origin. Bodies without joints hang on a
  fixed joint `<body>_fixed`. Free joints are objects, not robot: those bodies are skipped with
  their subtrees. The root body is the fixed base (its own joints are dropped). Ball joints cannot
  be expressed in URDF and are refused.
- Couplings -> <mimic>: a fixed tendon over two joints whose length range is narrow (a coupling
  constraint, as the Shadow hand's J0/J1), with the actuated joint as master; a linear joint
  equality constraint; and explicit (mimic, master, multiplier, offset) entries of the caller.
- Geometry (simple shapes only): box, sphere, cylinder as they are; capsule -> cylinder of the
  same radius and full length including the caps; ellipsoid and mesh -> their bounding box in
  the geom frame (MuJoCo's geom_aabb); plane, height field and SDF geoms are dropped. Colliding
  geoms (contype or conaffinity set) give <collision> and <visual>; visual-only geoms are drawn
  only for bodies that have no colliding geom. Colours are the geom's (or its material's) RGB,
  opaque.
- Sites named by the caller become links on fixed joints (tool frames, fingertips).
Output is deterministic: stable traversal order and fixed float formatting (%.8g for poses and
axes of the kinematic tree, %.6g for inertial and geometry poses, masses, inertia and sizes;
values below the last digit's scale, and negative zero, written as 0).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import mujoco
import numpy as np

from kairos_ros.lib.urdf_math import Pose, axis_angle, fmt, quat_to_mat, sanitize, vec  # noqa: F401 (sanitize: API)

HINGE, SLIDE, BALL, FREE = 3, 2, 1, 0  # mjtJoint
GEOM_SPHERE, GEOM_CAPSULE, GEOM_ELLIPSOID, GEOM_CYLINDER, GEOM_BOX, GEOM_MESH = 2, 3, 4, 5, 6, 7
WRAP_JOINT, EQ_JOINT, TRN_JOINT = 1, 2, 0
COUPLING_WIDTH = 0.25  # a tendon is a coupling when its range is this narrow relative to its joints' travel


@dataclass
class Options:
    root: str  # body name of the URDF root ("world" for the MJCF world body)
    root_link: str = ""  # URDF name of the root link (default: the sanitised body name)
    subtrees: tuple = ()  # with root "world": the bodies to take (default: every child of the root)
    sites: tuple = ()  # MJCF site names to add as links
    mimic: dict = field(default_factory=dict)  # MJCF joint -> (master MJCF joint, multiplier, offset)
    limits: Callable[[str], tuple] | None = None  # MJCF joint name -> (effort, velocity) or None
    robot_name: str = "robot"
    header: str = ""


def _name(m, kind, i: int) -> str:
    return mujoco.mj_id2name(m, getattr(mujoco.mjtObj, kind), i) or f"{kind[6:].lower()}{i}"


def _actuated(m) -> set[int]:
    return {int(m.actuator_trnid[a, 0]) for a in range(m.nu) if m.actuator_trntype[a] == TRN_JOINT}


def actuator_effort(m, joint: int) -> float | None:
    """max |forcerange| of the position/motor actuator driving the joint, if it is force-limited."""
    for a in range(m.nu):
        if m.actuator_trntype[a] == TRN_JOINT and int(m.actuator_trnid[a, 0]) == joint and m.actuator_forcelimited[a]:
            return float(np.max(np.abs(m.actuator_forcerange[a])))
    return None


def find_couplings(m, joints: set[int]) -> dict[int, tuple[int, float, float]]:
    """mimic joint id -> (master id, multiplier, offset) from coupling tendons and joint equalities."""
    out: dict[int, tuple[int, float, float]] = {}
    actuated = _actuated(m)
    for t in range(m.ntendon):
        adr, num = int(m.tendon_adr[t]), int(m.tendon_num[t])
        if num != 2 or not m.tendon_limited[t] or any(m.wrap_type[adr + i] != WRAP_JOINT for i in range(2)):
            continue
        ids = [int(m.wrap_objid[adr + i]) for i in range(2)]
        coef = [float(m.wrap_prm[adr + i]) for i in range(2)]
        lo, hi = (float(x) for x in m.tendon_range[t])
        travel = min(abs(c) * (m.jnt_range[j, 1] - m.jnt_range[j, 0]) for c, j in zip(coef, ids))
        if coef[0] * coef[1] >= 0 or not set(ids) <= joints or hi - lo > COUPLING_WIDTH * travel:
            continue
        driven = [k for k in range(2) if ids[k] in actuated]
        if len(driven) != 1:
            continue
        a, b = driven[0], 1 - driven[0]  # master a, mimic b: coef_a q_a + coef_b q_b = centre of the range
        out[ids[b]] = (ids[a], -coef[a] / coef[b], 0.5 * (lo + hi) / coef[b])
    for e in range(m.neq):
        if m.eq_type[e] != EQ_JOINT or not m.eq_active0[e] or m.eq_obj2id[e] < 0:
            continue
        j1, j2 = int(m.eq_obj1id[e]), int(m.eq_obj2id[e])
        poly = m.eq_data[e][:5]
        if j1 in joints and j2 in joints and not np.any(poly[2:]):
            q1, q2 = m.qpos0[m.jnt_qposadr[j1]], m.qpos0[m.jnt_qposadr[j2]]
            out[j1] = (j2, float(poly[1]), float(poly[0] + q1 - poly[1] * q2))
    return out


class UrdfBuilder:
    def __init__(self, m, opts: Options):
        self.m, self.o = m, opts
        self.links: list[str] = []
        self.joints: list[str] = []
        self.materials: dict[str, str] = {}
        self.names: dict[str, set] = {"link": set(), "joint": set()}

    def _unique(self, name: str, kind: str) -> str:
        """URDF links and joints are separate namespaces; within each a (sanitised) name is unique."""
        if name in self.names[kind]:
            raise ValueError(f"{kind} name '{name}' is used twice in the URDF (after sanitising); rename it in the MJCF")
        self.names[kind].add(name)
        return name

    def _bodies(self) -> list[int]:
        """Body ids of the robot in MuJoCo's (depth-first) order, root first."""
        m = self.m
        root = 0 if self.o.root == "world" else _body_id(m, self.o.root)
        free = {int(m.jnt_bodyid[j]) for j in range(m.njnt) if m.jnt_type[j] == FREE}
        tops = [_body_id(m, b) for b in self.o.subtrees] if self.o.subtrees else None
        keep = [root]
        for b in range(root + 1, m.nbody):
            parent = int(m.body_parentid[b])
            if parent in keep and b not in free and (parent != root or tops is None or b in tops):
                keep.append(b)
        return keep

    def link_name(self, b: int) -> str:
        if b == self.root:
            return self.o.root_link or sanitize(_name(self.m, "mjOBJ_BODY", b))
        return sanitize(_name(self.m, "mjOBJ_BODY", b))

    def build(self) -> str:
        m = self.m
        bodies = self._bodies()
        self.root = bodies[0]
        # The root is the fixed base: its own joints (a free joint of a floating base) are dropped.
        robot_joints = {j for j in range(m.njnt) if int(m.jnt_bodyid[j]) in bodies[1:]}
        ball = sorted(_name(m, "mjOBJ_JOINT", j) for j in robot_joints if m.jnt_type[j] == BALL)
        if ball:
            raise ValueError(f"ball joints {ball} cannot be expressed in URDF")
        self.mimic = find_couplings(m, robot_joints)
        ids = {_name(m, "mjOBJ_JOINT", j): j for j in robot_joints}
        for mim, (master, mult, off) in self.o.mimic.items():
            if mim not in ids or master not in ids:
                raise ValueError(f"mimic entry {mim!r} -> {master!r}: no such joint in the robot")
            self.mimic[ids[mim]] = (ids[master], float(mult), float(off))
        for b in bodies:
            self._link(self.link_name(b), b if (b != 0) else None)
            if b != self.root:
                self._body_joints(b)
        for site in self.o.sites:
            self._site(site, bodies)
        mats = [f'  <material name="{n}"><color rgba="{rgba}"/></material>' for rgba, n in self.materials.items()]
        head = [f"<!-- {line} -->" for line in self.o.header.splitlines() if line]
        return "\n".join(['<?xml version="1.0"?>', *head, f'<robot name="{self.o.robot_name}">', *mats,
                          *self.links, *self.joints, "</robot>", ""])

    def _link(self, name: str, b: int | None, geoms: bool = True) -> None:
        m = self.m
        parts = [f'  <link name="{self._unique(name, "link")}">']
        if b is not None and m.body_mass[b] > 0:
            ip = Pose(m.body_ipos[b].copy(), quat_to_mat(m.body_iquat[b]))
            ixx, iyy, izz = (fmt(x, 6) for x in m.body_inertia[b])
            parts += ["    <inertial>", f"      {ip.origin(6)}", f'      <mass value="{fmt(m.body_mass[b], 6)}"/>',
                      f'      <inertia ixx="{ixx}" ixy="0" ixz="0" iyy="{iyy}" iyz="0" izz="{izz}"/>', "    </inertial>"]
        if b is not None and geoms:
            parts += self._geoms(b)
        if len(parts) == 1:
            parts[0] = parts[0][:-1] + "/>"
            self.links.append(parts[0])
            return
        self.links.append("\n".join(parts + ["  </link>"]))

    def _geoms(self, b: int) -> list[str]:
        m = self.m
        gs = [g for g in range(m.ngeom) if int(m.geom_bodyid[g]) == b]
        colliding = [g for g in gs if m.geom_contype[g] or m.geom_conaffinity[g]]
        out = []
        for g in gs:
            shape = self._shape(g)
            if shape is None:
                continue
            pose, geometry = shape
            collide = g in colliding
            if collide or not colliding:
                rgba = m.mat_rgba[m.geom_matid[g]] if m.geom_matid[g] >= 0 else m.geom_rgba[g]
                color = vec(list(rgba[:3]) + [1.0], 4)
                mat = self.materials.setdefault(color, f"color_{len(self.materials)}")
                out += ["    <visual>", f"      {pose.origin(6)}", f"      <geometry>{geometry}</geometry>",
                        f'      <material name="{mat}"/>', "    </visual>"]
            if collide:
                out += ["    <collision>", f"      {pose.origin(6)}", f"      <geometry>{geometry}</geometry>",
                        "    </collision>"]
        return out

    def _shape(self, g: int):
        m = self.m
        kind, size = int(m.geom_type[g]), m.geom_size[g]
        pose = Pose(m.geom_pos[g].copy(), quat_to_mat(m.geom_quat[g]))
        if kind == GEOM_SPHERE:
            return pose, f'<sphere radius="{fmt(size[0], 6)}"/>'
        if kind == GEOM_CAPSULE:
            return pose, f'<cylinder radius="{fmt(size[0], 6)}" length="{fmt(2 * (size[1] + size[0]), 6)}"/>'
        if kind == GEOM_CYLINDER:
            return pose, f'<cylinder radius="{fmt(size[0], 6)}" length="{fmt(2 * size[1], 6)}"/>'
        if kind == GEOM_BOX:
            return pose, f'<box size="{vec(2 * size, 6)}"/>'
        if kind in (GEOM_ELLIPSOID, GEOM_MESH):
            centre, half = m.geom_aabb[g][:3], m.geom_aabb[g][3:]
            return pose @ Pose(centre.copy()), f'<box size="{vec(2 * half, 6)}"/>'
        return None  # plane, height field, SDF

    def _limit(self, j: int) -> str:
        m = self.m
        name = _name(m, "mjOBJ_JOINT", j)
        effort, velocity = self.o.limits(name) if self.o.limits else (None, None)
        if effort is None:
            source = self.mimic[j][0] if j in self.mimic else j
            effort = actuator_effort(m, source)
        if effort is None or velocity is None:
            raise ValueError(f"joint '{name}': no effort/velocity limit (give them in the robot table)")
        bounds = ""
        if m.jnt_limited[j]:
            bounds = f' lower="{fmt(m.jnt_range[j, 0])}" upper="{fmt(m.jnt_range[j, 1])}"'
        elif m.jnt_type[j] == SLIDE:
            raise ValueError(f"slide joint '{name}' has no range: a URDF prismatic joint needs limits")
        return f'    <limit{bounds} effort="{fmt(effort, 6)}" velocity="{fmt(velocity, 6)}"/>'

    def _joint(self, name: str, kind: str, parent: str, child: str, origin: Pose, extra: list[str] = ()) -> None:
        self.joints.append("\n".join([f'  <joint name="{self._unique(name, "joint")}" type="{kind}">',
                                      f'    <parent link="{parent}"/>', f'    <child link="{child}"/>',
                                      f"    {origin.origin()}", *extra, "  </joint>"]))

    def _body_joints(self, b: int) -> None:
        m = self.m
        parent = self.link_name(int(m.body_parentid[b]))
        link = self.link_name(b)
        pending = Pose(m.body_pos[b].copy(), quat_to_mat(m.body_quat[b]))
        js = [j for j in range(m.njnt) if int(m.jnt_bodyid[j]) == b and m.jnt_type[j] in (HINGE, SLIDE)]
        for k, j in enumerate(js):
            name = sanitize(_name(m, "mjOBJ_JOINT", j))
            axis = m.jnt_axis[j] / np.linalg.norm(m.jnt_axis[j])
            ref = float(m.qpos0[m.jnt_qposadr[j]])
            if m.jnt_type[j] == HINGE:
                anchor = m.jnt_pos[j].copy()
                origin = pending @ Pose(anchor, axis_angle(axis, -ref))
                pending = Pose(-anchor)
                kind = "revolute" if m.jnt_limited[j] else "continuous"
            else:  # slide: the anchor does not move the body
                origin = pending @ Pose(-ref * axis)
                pending = Pose()
                kind = "prismatic"
            last = k == len(js) - 1 and pending.is_identity()
            child = link if last else f"{name}_link"
            if not last:
                self._link(child, None)
            extra = [f'    <axis xyz="{vec(axis)}"/>', self._limit(j)]
            if j in self.mimic:
                master, mult, off = self.mimic[j]
                extra.append(f'    <mimic joint="{sanitize(_name(m, "mjOBJ_JOINT", master))}" '
                             f'multiplier="{fmt(mult)}" offset="{fmt(off)}"/>')
            self._joint(name, kind, parent, child, origin, extra)
            parent = child
        if not js or not pending.is_identity():
            self._joint(f"{link}_{'anchor' if js else 'fixed'}", "fixed", parent, link, pending)

    def _site(self, site: str, bodies: list[int]) -> None:
        m = self.m
        s = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, site)
        if s < 0 or int(m.site_bodyid[s]) not in bodies:
            raise ValueError(f"site '{site}' is not on the robot")
        name = sanitize(site)
        self._link(name, None)
        self._joint(f"{name}_fixed", "fixed", self.link_name(int(m.site_bodyid[s])), name,
                    Pose(m.site_pos[s].copy(), quat_to_mat(m.site_quat[s])))


def _body_id(m, name: str) -> int:
    b = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name)
    if b < 0:
        raise ValueError(f"no body '{name}' in the MJCF")
    return b


def mjcf_to_urdf(m, opts: Options) -> str:
    """URDF text for the robot below opts.root of the compiled model m."""
    return UrdfBuilder(m, opts).build()
