"""Scripted experts for the ALOHA scenes (kairos_ros.lib.sim.aloha).

Each expert plans one episode in three stages, the first two the way ACT's scripted
demonstrations were made:
  1. End-effector waypoints (gripper position, orientation, opening) for both arms, computed from
     the objects' poses at reset, are followed in gym-aloha's mocap model
     (bimanual_viperx_end_effector_*.xml: each gripper welded to a mocap body; friction loss of the
     arm joints removed there so the welds move the arms freely). No rendering. The model starts
     in the joint scene's reset configuration, the mocap bodies where that configuration holds the
     grippers (nothing snaps); keyframes are joined by minimum-jerk segments (at rest at each);
     a weak spring on forearm_roll keeps the wrist off the flipped branch near wrist_angle = 0.
  2. The joint positions that model went through are recorded (fingers: the commanded opening in
     metres, the follower finger mirrored).
  3. That joint path is smoothed (contacts make it jitter) and retimed (retime()): the same
     positions in the same order, slowed where needed so that every joint, fingers included, stays
     within VELOCITY_FRACTION of the embodiment's velocity limits and LIMIT_FRACTION of its
     acceleration limits (urdf_adapters/aloha; the adapter refuses above 1.05 x them) at the plan's
     50 Hz. act() returns it one control period at a time as position targets for the joint scene.

Planning takes a few hundred milliseconds per episode (one mocap-model run, no rendering).

Measured (seeds 0..19, success = reward 4 reached during the episode, in the joint-space scene;
`python -m kairos_ros.lib.sim.aloha_expert TASK 20`):
  TransferCubeExpert  20/20 (100%), 0.4 s/episode; the motion takes 7.6-8.0 s of the 8 s episode
  InsertionExpert     18/20 (90%), 0.6 s/episode; seeds 6 and 11 grasp both objects but the peg
                      misses the socket; the motion takes 8.7-11.3 s of the 12 s episode
Peak |velocity| 0.49 (transfer) / 0.35 (insertion) x max_velocity, |acceleration| 0.73 x
max_acceleration, over seeds 0..19 from the reset state; the first target within 0.003 rad of it.
Through the closed loop (32-row chunks every 0.1 s through the armed adapter's gates and the
controller executor, the plan read at the chunk rows' own times): the same successes, no chunk
refused.
"""
from __future__ import annotations

import argparse
import time

from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib.sim.registry import make_expert, make_task
from kairos_ros.lib.sim.render import ensure_gl

ensure_gl()

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from kairos_ros.lib.sim.aloha import (  # noqa: E402
    FOLLOWERS,
    AlohaTask,
    joint_addresses,
    load_model,
)
from kairos_ros.lib.sim.base import Expert, SimTask  # noqa: E402

# Gripper openings of the waypoints (0 closed .. 1 open) -> left finger position (m): gym-aloha's
# puppet gripper range, clipped to the finger actuator's control range.
GRIPPER_CLOSED_M = 0.01844
GRIPPER_OPEN_M = 0.05800
FINGER_RANGE = (0.021, 0.057)
# gym-aloha's initial mocap poses (x, y, z, qw, qx, qy, qz): the reference the waypoints' orientations
# are given from (they do not hold the arms at START_ARM_POSE exactly: the planning model starts from
# _start_mocap()'s poses instead).
INIT_LEFT = np.array([-0.31718881 + 0.1, 0.5, 0.29525084, 1.0, 0.0, 0.0, 0.0])
INIT_RIGHT = np.array([0.31718881 - 0.1, 0.49999888, 0.29525084, 1.0, 0.0, 0.0, 0.0])
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])
# The plan is retimed to this fraction of the embodiment's velocity and acceleration limits
# (urdf_adapters/aloha: the adapter refuses more than 1.05 x them).
LIMIT_FRACTION = 0.7
# and to this fraction of the velocity limits: the adapter also gates the speed from the measured
# state to a chunk's first point (0.05 s ahead), and the arms trail a fast plan by a few hundredths
VELOCITY_FRACTION = 0.5
PATH_SMOOTHING = 1.5  # control periods: Gaussian sigma of the joint path's smoothing before retiming
SETTLED = 1e-3  # rad (m for fingers): the plan's end, once every joint is this close to its final position
ROLL_STIFFNESS = 1.0  # N m / rad, forearm_roll -> 0 in the planning model
ROLL_DAMPING = 0.5  # N m s / rad


def axis_angle(axis, degrees: float) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_axisAngle2Quat(q, np.asarray(axis, dtype=np.float64), np.deg2rad(degrees))
    return q


def quat_mul(a, b) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mulQuat(q, np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return q


def finger_position(opening: float) -> float:
    """Waypoint opening 0..1 -> left finger target (m)."""
    m = GRIPPER_CLOSED_M + opening * (GRIPPER_OPEN_M - GRIPPER_CLOSED_M)
    return float(np.clip(m, *FINGER_RANGE))


class Waypoints:
    """End-effector path through (step, xyz, quat, opening) keyframes: each segment follows a
    minimum-jerk profile (at rest, with zero acceleration, at every keyframe), orientations are
    interpolated along the shorter way (sign-aligned quaternions), so nothing starts or turns a
    corner with a jump in velocity."""

    def __init__(self, keys: list[tuple]):
        self.t = np.array([k[0] for k in keys], dtype=np.float64)
        self.xyz = np.array([k[1] for k in keys], dtype=np.float64)
        self.quat = np.array([k[2] for k in keys], dtype=np.float64)
        for i in range(1, len(self.quat)):  # q and -q are the same rotation: keep neighbours on one side
            if np.dot(self.quat[i], self.quat[i - 1]) < 0:
                self.quat[i] = -self.quat[i]
        self.grip = np.array([k[3] for k in keys], dtype=np.float64)

    def at(self, step: int) -> tuple[np.ndarray, np.ndarray, float]:
        s = float(np.clip(step, self.t[0], self.t[-1]))
        i = int(np.clip(np.searchsorted(self.t, s, side="right") - 1, 0, len(self.t) - 2))
        x = (s - self.t[i]) / (self.t[i + 1] - self.t[i])
        f = x * x * x * (10.0 - 15.0 * x + 6.0 * x * x)  # minimum jerk
        xyz = self.xyz[i] + f * (self.xyz[i + 1] - self.xyz[i])
        quat = slerp(self.quat[i], self.quat[i + 1], f)
        grip = self.grip[i] + f * (self.grip[i + 1] - self.grip[i])
        return xyz, quat, float(grip)


def slerp(a: np.ndarray, b: np.ndarray, f: float) -> np.ndarray:
    dot = float(np.clip(np.dot(a, b), -1.0, 1.0))
    if dot < 0:
        b, dot = -b, -dot
    theta = np.arccos(dot)
    if theta < 1e-6:
        q = a + f * (b - a)
    else:
        q = (np.sin((1 - f) * theta) * a + np.sin(f * theta) * b) / np.sin(theta)
    return q / np.linalg.norm(q)


def _smooth(x: np.ndarray, sigma: float, axis: int = 0) -> np.ndarray:
    """Gaussian smoothing along `axis` (edges held: the ends stay where they are)."""
    if sigma <= 0:
        return x.copy()
    half = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    k /= k.sum()
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    padded = np.concatenate([np.repeat(x[:1], half, axis=0), x, np.repeat(x[-1:], half, axis=0)])
    out = np.apply_along_axis(lambda c: np.convolve(c, k, mode="valid"), 0, padded)
    return np.moveaxis(out, 0, axis)


def _sample(path: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Rows of `path` at fractional indices `u`: Catmull-Rom (continuous velocity, unlike linear
    interpolation, whose kinks would read as acceleration spikes once the path is slowed down)."""
    n = len(path)
    i = np.clip(np.floor(u).astype(int), 0, n - 2)
    f = (u - i)[:, None]
    p0, p1 = path[np.maximum(i - 1, 0)], path[i]
    p2, p3 = path[i + 1], path[np.minimum(i + 2, n - 1)]
    m1, m2 = 0.5 * (p2 - p0), 0.5 * (p3 - p1)
    f2, f3 = f * f, f * f * f
    return ((2 * f3 - 3 * f2 + 1) * p1 + (f3 - 2 * f2 + f) * m1 + (-2 * f3 + 3 * f2) * p2 + (f3 - f2) * m2)


def limit_ratios(plan: np.ndarray, max_velocity: np.ndarray, max_acceleration: np.ndarray,
                 period: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint peak |velocity| / max_velocity and |acceleration| / max_acceleration of a plan
    sampled every `period` s (finite differences)."""
    v = np.abs(np.diff(plan, axis=0)) / period
    a = np.abs(np.diff(plan, n=2, axis=0)) / period ** 2
    return v.max(axis=0) / max_velocity, a.max(axis=0) / max_acceleration


def retime(path: np.ndarray, max_velocity: np.ndarray, max_acceleration: np.ndarray, period: float,
           iterations: int = 60) -> np.ndarray:
    """The joint path `path` (one row per control period) re-timed so that no joint's finite-
    difference velocity or acceleration exceeds its limit: the same positions in the same order
    (all joints together, so the arms stay coordinated), slowed down where the path asks too much.

    Each path step takes r control periods (r >= 1, 1 = the planned speed); r grows where a limit
    is exceeded, by the factor that brings the peak under it (sqrt for accelerations), spread over
    the neighbouring steps so that the slowing down itself stays gentle; repeated until it holds."""
    path = np.asarray(path, dtype=np.float64)
    n = len(path)
    index = np.arange(n, dtype=np.float64)
    rate = np.ones(n)
    for _ in range(iterations):
        times = np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]))])  # in control periods
        total = max(1, int(np.ceil(times[-1] - 1e-9)))
        times *= total / times[-1]  # a whole number of periods: the last sample is the path's end
        u = np.interp(np.arange(total + 1, dtype=np.float64), times, index)
        out = _sample(path, u)
        if len(out) < 3:
            return out
        v = (np.abs(np.diff(out, axis=0)) / period / max_velocity).max(axis=1)  # between samples k, k+1
        a = (np.abs(np.diff(out, n=2, axis=0)) / period ** 2 / max_acceleration).max(axis=1)  # at sample k+1
        need = np.ones(len(out))
        need[:-1] = np.maximum(need[:-1], v)
        need[1:] = np.maximum(need[1:], v)
        need[1:-1] = np.maximum(need[1:-1], np.sqrt(a))
        if need.max() <= 1.0:
            return out
        factor = np.ones(n)
        np.maximum.at(factor, np.clip(np.round(u).astype(int), 0, n - 1), need * 1.02)
        width = 6
        grown = np.array([factor[max(0, i - width):i + width + 1].max() for i in range(n)])
        rate *= np.maximum(_smooth(grown, width / 2), 1.0)
    return out


class AlohaScriptedExpert(Expert):
    """Plans with the mocap model (EE_XML), replays the recorded joint trajectory."""

    EE_XML = ""
    PLAN_STEPS = 400  # steps of the planning model's run (its waypoints' schedule)
    REPLAN_AT: tuple = ()  # steps at which replan() revises the paths from the planning model's state

    def __init__(self):
        self.model = load_model(self.EE_XML)
        self.data = mujoco.MjData(self.model)
        self._qadr, self._dadr = joint_addresses(self.model)
        # the welds pull the arms; joint friction loss would hold them back
        arm = np.array([d for i, d in enumerate(self._dadr) if i % 8 < 6])
        self.model.dof_frictionloss[arm] = 0.0
        # The welds set the grippers' poses, not how the wrist shares a roll between forearm_roll and
        # wrist_rotate: near wrist_angle = 0 the two can spin against each other (a flip of several
        # rad in a few steps). A weak spring to forearm_roll = 0 picks the unflipped branch.
        for name in ("vx300s_left/forearm_roll", "vx300s_right/forearm_roll"):
            j = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, name)
            self.model.jnt_stiffness[j] = ROLL_STIFFNESS
            self.model.qpos_spring[self.model.jnt_qposadr[j]] = 0.0
            self.model.dof_damping[self.model.jnt_dofadr[j]] += ROLL_DAMPING
        act_joint = [int(self.model.actuator_trnid[a, 0]) for a in range(self.model.nu)]
        fingers = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, f"{arm}/{f}")
                   for arm in ("vx300s_left", "vx300s_right") for f in ("left_finger", "right_finger")]
        self._finger_act = np.array([act_joint.index(j) for j in fingers])
        self._mocap = [int(self.model.body_mocapid[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, b)])
                       for b in ("mocap_left", "mocap_right")]
        self._grip_body = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, f"{a}/gripper_link")
                           for a in ("vx300s_left", "vx300s_right")]
        self._weld = [next(e for e in range(self.model.neq) if self.model.eq_type[e] == mujoco.mjtEq.mjEQ_WELD
                           and self.model.eq_obj2id[e] == b) for b in self._grip_body]
        self._obj_qadr: list[int] = []
        self.plan = np.zeros((0, 16))
        self.path = np.zeros((0, 16))  # the planning model's joint path, one row per step, before retiming
        self.start = [INIT_LEFT.copy(), INIT_RIGHT.copy()]  # mocap poses at the start configuration
        self.rewards: list[float] = []
        self._limits: tuple | None = None

    def waypoints(self, objects: np.ndarray) -> tuple[Waypoints, Waypoints]:
        """(left, right) end-effector paths for objects' poses (objects, 7)."""
        raise NotImplementedError

    def replan(self, step: int, left: Waypoints, right: Waypoints) -> tuple[Waypoints, Waypoints]:
        """Revised (left, right) paths at `step` (REPLAN_AT), from the planning model's state."""
        return left, right

    def object_positions(self) -> np.ndarray:
        """(objects, 3) object positions in the planning model now."""
        return np.stack([self.data.qpos[a:a + 3].copy() for a in self._obj_qadr])

    def mocap_pose(self, arm: int) -> np.ndarray:
        k = self._mocap[arm]
        return np.concatenate([self.data.mocap_pos[k], self.data.mocap_quat[k]])

    def limits(self, task: AlohaTask) -> tuple[np.ndarray, np.ndarray]:
        """(velocity, acceleration) limits per task joint the plan is retimed to: VELOCITY_FRACTION and
        LIMIT_FRACTION of the embodiment's (a follower finger takes its leader's)."""
        if self._limits is None:
            spec = load_embodiment(task.info.embodiment)
            index = {n: i for i, n in enumerate(spec.joint_names)}
            names = list(task.joint_names)
            for follower, leader in FOLLOWERS.items():
                names[follower] = names[leader]
            cols = [index[n] for n in names]
            self._limits = (VELOCITY_FRACTION * np.asarray(spec.max_velocity, dtype=np.float64)[cols],
                            LIMIT_FRACTION * np.asarray(spec.max_acceleration, dtype=np.float64)[cols])
        return self._limits

    def reset(self, task: SimTask, seed: int) -> None:
        if not isinstance(task, AlohaTask):
            raise TypeError(f"{type(self).__name__} plans for ALOHA scenes, not {type(task).__name__}")
        if not self._obj_qadr:
            self._obj_qadr = [int(self.model.jnt_qposadr[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, n)])
                              for n in task.OBJECT_JOINTS]
        objects = task.object_poses()
        start = task.joint_state()[0]
        self.start = self._start_mocap(start)
        left, right = self.waypoints(objects)
        self.path = self._run(objects, start, left, right, self.PLAN_STEPS, task._substeps)
        vmax, amax = self.limits(task)
        # the finger rows hold commanded openings: start them where the fingers are
        # (contacts make the planning model's joints jitter from step to step: smoothed over ~30 ms)
        path = _smooth(np.vstack([start[None], self.path]), PATH_SMOOTHING)
        plan = retime(path, vmax, amax, task.info.control_period)[1:]
        moving = np.flatnonzero(np.abs(plan - plan[-1]).max(axis=1) > SETTLED)
        plan = plan[:moving[-1] + 2] if len(moving) else plan[:1]  # the motion, without the final hold
        steps = task.max_steps
        self.plan_length = len(plan)  # control periods the retimed motion takes (> steps: cut short)
        if len(plan) < steps:
            plan = np.vstack([plan, np.repeat(plan[-1:], steps - len(plan), axis=0)])
        self.plan = plan[:steps]

    def _start_mocap(self, start: np.ndarray) -> list[np.ndarray]:
        """The mocap poses whose welds hold the grippers where the joint configuration `start` puts
        them, so that the planning model starts exactly there (nothing snaps)."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self._qadr] = start
        mujoco.mj_forward(m, d)
        poses = []
        for body, eq in zip(self._grip_body, self._weld):
            relpos, relquat = m.eq_data[eq, 3:6], m.eq_data[eq, 6:10]
            # the weld holds gripper = mocap * relpose (anchor at the gripper's origin)
            inv = np.zeros(4)
            mujoco.mju_negQuat(inv, relquat / np.linalg.norm(relquat))
            quat = quat_mul(d.xquat[body], inv)
            offset = np.zeros(3)
            mujoco.mju_rotVecQuat(offset, relpos, quat)
            poses.append(np.concatenate([d.xpos[body] - offset, quat]))
        return poses

    def _run(self, objects, start, left: Waypoints, right: Waypoints, steps: int, substeps: int) -> np.ndarray:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self._qadr] = start
        for adr, obj in zip(self._obj_qadr, objects):
            d.qpos[adr:adr + 7] = obj
        closed = finger_position(0.0)
        d.ctrl[self._finger_act] = [closed, -closed, closed, -closed]
        for k, pose in zip(self._mocap, self.start):
            d.mocap_pos[k], d.mocap_quat[k] = pose[:3], pose[3:]
        mujoco.mj_forward(m, d)
        plan = np.zeros((steps, 16))
        for t in range(steps):
            if t in self.REPLAN_AT:
                left, right = self.replan(t, left, right)
            grips = []
            for k, path in zip(self._mocap, (left, right)):
                xyz, quat, grip = path.at(t)
                d.mocap_pos[k], d.mocap_quat[k] = xyz, quat
                grips.append(finger_position(grip))
            d.ctrl[self._finger_act] = [grips[0], -grips[0], grips[1], -grips[1]]
            mujoco.mj_step(m, d, nstep=substeps)
            row = d.qpos[self._qadr].copy()
            row[6], row[14] = grips  # the commanded opening, not where the fingers got to
            for follower, leader in FOLLOWERS.items():
                row[follower] = -row[leader]
            plan[t] = row
        return plan

    def act(self, task: SimTask) -> np.ndarray:
        if not len(self.plan):
            raise RuntimeError("act() before reset(): no plan")
        return self.plan[min(task.steps, len(self.plan) - 1)].copy()


class TransferCubeExpert(AlohaScriptedExpert):
    """Right arm: above the cube, down, close, to the meeting point; left arm: to the meeting
    point, close on the cube, right opens and both move apart."""

    EE_XML = "bimanual_viperx_end_effector_transfer_cube.xml"

    def waypoints(self, objects):
        box = objects[0, :3]
        pick = quat_mul(INIT_RIGHT[3:], axis_angle([0, 1, 0], -60))
        meet_left = axis_angle([1, 0, 0], 90)
        meet = np.array([0.0, 0.5, 0.25])
        left = Waypoints([
            (0, self.start[0][:3], self.start[0][3:], 0),
            (100, meet + [-0.1, 0, -0.02], meet_left, 1),  # approach the meeting point
            (260, meet + [0.02, 0, -0.02], meet_left, 1),  # around the cube
            (310, meet + [0.02, 0, -0.02], meet_left, 0),  # close
            (360, meet + [-0.1, 0, -0.02], meet_left, 0),  # pull it away (no need to turn it)
            (400, meet + [-0.1, 0, -0.02], meet_left, 0),
        ])
        right = Waypoints([
            (0, self.start[1][:3], self.start[1][3:], 0),
            (90, box + [0, 0, 0.08], pick, 1),  # above the cube
            (130, box + [0, 0, -0.015], pick, 1),  # down
            (170, box + [0, 0, -0.015], pick, 0),  # close
            (200, meet + [0.05, 0, 0], pick, 0),  # towards the meeting point
            (220, meet, pick, 0),
            (310, meet, pick, 1),  # let go
            (360, meet + [0.1, 0, 0], pick, 1),  # move away
            (400, meet + [0.1, 0, 0], pick, 1),
        ])
        return left, right


class InsertionExpert(AlohaScriptedExpert):
    """Left arm picks up the socket, right arm the peg, both lift them to the meeting point; then
    the peg is lined up with the socket and pushed in, aimed from where the two objects actually
    are in the planning model (measured twice: before lining up and before pushing in)."""

    EE_XML = "bimanual_viperx_end_effector_insertion.xml"
    PLAN_STEPS = 500
    ALIGN, INSERT, END = 300, 350, 440  # steps: start lining up, start pushing in, fully in
    REPLAN_AT = (ALIGN, INSERT)
    # peg centre - socket centre along x when the peg's end meets the pin's (0.06 + 0.04 m), less
    # 12 mm of push (the replayed arms fall a little short of the planned path)
    CONTACT_DX = 0.10
    PUSH = 0.012
    STANDOFF = 0.04  # m between the peg's end and the pin's while lining up

    def waypoints(self, objects):
        peg, socket = objects[0, :3], objects[1, :3]
        self._pick_right = quat_mul(INIT_RIGHT[3:], axis_angle([0, 1, 0], -60))
        self._pick_left = quat_mul(INIT_LEFT[3:], axis_angle([0, 1, 0], 60))
        meet = np.array([0.0, 0.5, 0.15])
        left = Waypoints([
            (0, self.start[0][:3], self.start[0][3:], 0),
            (120, socket + [0, 0, 0.08], self._pick_left, 1),  # above the socket
            (170, socket + [0, 0, -0.03], self._pick_left, 1),  # down
            (220, socket + [0, 0, -0.03], self._pick_left, 0),  # close
            (285, meet + [-0.1, 0, 0], self._pick_left, 0),  # to the meeting point, and stay
            (self.END, meet + [-0.1, 0, 0], self._pick_left, 0),
        ])
        right = Waypoints([
            (0, self.start[1][:3], self.start[1][3:], 0),
            (120, peg + [0, 0, 0.08], self._pick_right, 1),  # above the peg
            (170, peg + [0, 0, -0.03], self._pick_right, 1),  # down
            (220, peg + [0, 0, -0.03], self._pick_right, 0),  # close
            (285, meet + [0.12, 0, 0], self._pick_right, 0),  # to the meeting point
            (self.END, meet + [0.12, 0, 0], self._pick_right, 0),
        ])
        return left, right

    def replan(self, step, left, right):
        peg, socket = self.object_positions()
        now = self.mocap_pose(1)
        dx = self.CONTACT_DX + (self.STANDOFF if step == self.ALIGN else -self.PUSH)
        # move the right gripper by the peg's error from its goal (the peg moves with the gripper)
        goal = now[:3] + (socket + [dx, 0, 0] - peg)
        until = self.INSERT if step == self.ALIGN else self.END
        right = Waypoints([
            (step, now[:3], now[3:], 0),
            (until, goal, self._pick_right, 0),
            (until + 1, goal, self._pick_right, 0),
        ])
        return left, right


def run_episode(task: SimTask, expert: Expert, seed: int, max_steps: int | None = None) -> dict:
    """One expert episode without rendering: {"seed", "success", "max_reward", "final_reward", "steps"}."""
    task.reset(seed)
    expert.reset(task, seed)
    steps = task.max_steps if max_steps is None else min(max_steps, task.max_steps)
    best = task.reward()
    for _ in range(steps):
        task.step(expert.act(task))
        best = max(best, task.reward())
    return {"seed": seed, "success": bool(best >= 4), "max_reward": best, "final_reward": task.reward(),
            "steps": steps}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="success rate of an ALOHA expert over seeded episodes")
    ap.add_argument("task", choices=["aloha_transfer_cube", "aloha_insertion"])
    ap.add_argument("episodes", type=int, nargs="?", default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    task, expert = make_task(args.task), make_expert(args.task)
    wins, t0 = 0, time.perf_counter()
    for seed in range(args.seed, args.seed + args.episodes):
        r = run_episode(task, expert, seed)
        wins += r["success"]
        print(f"seed {seed}: success {r['success']} max reward {r['max_reward']:.0f} final {r['final_reward']:.0f}",
              flush=True)
    dt = time.perf_counter() - t0
    print(f"{args.task}: {wins}/{args.episodes} ({100 * wins / args.episodes:.0f}%), {dt / args.episodes:.2f} s/episode")
    task.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
