"""panda_pick_block: a Franka Panda picks a block from the table and lifts it.

The robot is gymnasium-robotics' Franka Panda (the Franka Kitchen model's arm and hand, read where
pip installed it), in a light scene of our own instead of the kitchen (142k faces, close-up
cameras): a table whose top is the robot's base plane (z = 0), a 4 cm block on a free joint placed
at a seeded random position and yaw in front of the robot, a work area drawn on the table (visual
only: where the block may appear), three cameras and position actuators on the 7 arm joints and
the fingers. The robot's bodies are gravity-compensated (as Franka's own controller does), so the
position actuators track their targets without a steady sag.

- Joints on /joint_states: the 9 joints of urdf_adapters/franka_panda/robot.urdf, in its order
  (the MJCF names with ':' made '_'); robot_panda0_finger_joint2 is the mimic of finger_joint1:
  its target in step() is ignored and finger_joint1's drives both fingers.
- Cameras: "head" (the bringup profile config/franka_panda.yaml: /cameras/head/image_raw), a
  view of the table from in front of the robot; render() also draws "wrist" (on the hand, along
  the gripper) and "side".
- Success: the block is more than `lift_height` (10 cm) above its resting height and touches both
  fingers. Reward (staged, 0..3): 1 block touched by a finger, 2 held between both fingers,
  3 held and lifted above the height (= success).

Scripted expert (panda_expert.PickBlockExpert): 50 of 50 seeded episodes (seeds 0..49) succeed,
first success about 3.1 s after reset. Timings on this host (2 shared CPU cores, Mesa llvmpipe
through EGL): one control step (20 ms = 10 physics steps of 2 ms) 0.2-0.5 ms, with the expert's IK
about 1 ms; a 224x224 frame 9-15 ms in fast mode (no shadows, no MSAA).
"""
from __future__ import annotations

import importlib.util
import os

from kairos_ros.lib.sim.render import RendererPool  # sets MUJOCO_GL before mujoco is imported

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from kairos_ros.lib.sim.base import SimTask, TaskInfo  # noqa: E402
from kairos_ros.lib.urdf_math import sanitize  # noqa: E402

ARM_JOINTS = tuple(f"robot:panda0_joint{i}" for i in range(1, 8))
FINGER_JOINTS = ("robot:panda0_finger_joint1", "robot:panda0_finger_joint2")
# Gripper above the work area, pointing down, fingers closing along the world y axis.
HOME = np.array([0.0, -0.25, 0.0, -2.25, 0.0, 0.43, 0.0])
FINGER_OPEN = 0.04
BLOCK_HALF = 0.02
# Where the block's centre may appear (m, world frame = robot base frame) and its yaw (rad).
BLOCK_X = (0.40, 0.60)
BLOCK_Y = (-0.15, 0.15)
BLOCK_YAW = (-np.pi / 4, np.pi / 4)
CONTROL_PERIOD = 0.02
# Fixed scene cameras: name -> (position, point looked at).
SCENE_CAMERAS = {"head": ((1.2, 0.0, 0.8), (0.3, 0.0, 0.2)), "side": ((0.45, -1.3, 0.6), (0.4, 0.0, 0.25))}
TIMESTEP = 0.002


def franka_assets_dir() -> str:
    """gymnasium-robotics' Franka assets folder (found without importing the package)."""
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("gymnasium-robotics is not installed (pip install -r requirements.txt)")
    return os.path.join(list(spec.submodule_search_locations)[0], "envs", "assets", "kitchen_franka", "franka_assets")


def look_at_xyaxes(pos, target, up=(0.0, 0.0, 1.0)) -> str:
    """MJCF xyaxes of a camera at pos looking at target (a camera looks along its -z)."""
    pos, target, up = (np.asarray(v, dtype=float) for v in (pos, target, up))
    forward = target - pos
    forward /= np.linalg.norm(forward)
    x = np.cross(forward, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, forward)
    return " ".join(f"{v:.6f}" for v in (*x, *y))


def _scene_xml(root: str) -> str:
    cameras = "\n".join(
        f'    <camera name="{name}" pos="{" ".join(map(str, pos))}" xyaxes="{look_at_xyaxes(pos, target)}" fovy="55"/>'
        for name, (pos, target) in SCENE_CAMERAS.items())
    arm_kp = (870, 870, 870, 870, 120, 120, 120)
    arm_force = (87, 87, 87, 87, 12, 12, 12)
    actuators = "\n".join(
        f'<position name="act_joint{i + 1}" joint="{j}" kp="{kp}" forcelimited="true" forcerange="-{f} {f}"'
        f' inheritrange="1"/>'
        for i, (j, kp, f) in enumerate(zip(ARM_JOINTS, arm_kp, arm_force)))
    fingers = "\n".join(
        f'<position name="act_finger{i + 1}" joint="{j}" kp="500" forcelimited="true" forcerange="-70 70"'
        f' inheritrange="1"/>' for i, j in enumerate(FINGER_JOINTS))
    return f"""<mujoco model="panda_pick_block">
  <include file="{root}/assets.xml"/>
  <compiler meshdir="{root}/meshes"/>
  <option timestep="{TIMESTEP}" integrator="implicitfast"/>
  <visual><global offwidth="640" offheight="480"/><quality shadowsize="0" offsamples="0"/></visual>
  <asset>
    <texture name="floor_tex" type="2d" builtin="checker" rgb1=".25 .28 .32" rgb2=".2 .22 .26" width="256" height="256"/>
    <material name="floor_mat" texture="floor_tex" texrepeat="4 4"/>
  </asset>
  <worldbody>
    <light name="key" directional="true" castshadow="false" pos="0.5 0.5 2" dir="-0.2 -0.3 -1" diffuse=".7 .7 .7"/>
    <light name="fill" directional="true" castshadow="false" pos="1 -1 2" dir="-0.4 0.5 -1" diffuse=".3 .3 .3"/>
    <geom name="floor" type="plane" pos="0 0 -0.75" size="3 3 0.1" material="floor_mat" contype="0" conaffinity="0"/>
    <geom name="table" type="box" pos="0.35 0 -0.375" size="0.65 0.6 0.375" rgba=".62 .52 .40 1"
          friction="1 0.005 0.0001"/>
    <geom name="work_area" type="box" pos="0.5 0 0.0005" size="0.125 0.175 0.0005" rgba=".45 .62 .48 1"
          contype="0" conaffinity="0"/>
{cameras}
    <body name="robot_base" pos="0 0 0">
      <include file="{root}/chain.xml"/>
    </body>
    <body name="block" pos="0.5 0 {BLOCK_HALF}">
      <freejoint name="block_joint"/>
      <geom name="block" type="box" size="{BLOCK_HALF} {BLOCK_HALF} {BLOCK_HALF}" rgba=".85 .15 .12 1" mass="0.05"
            friction="1.2 0.005 0.0001" condim="4"/>
    </body>
  </worldbody>
  <actuator>
{actuators}
{fingers}
  </actuator>
</mujoco>"""


def build_model() -> mujoco.MjModel:
    """The compiled scene (the arm's control ranges are its joint ranges)."""
    spec = mujoco.MjSpec.from_string(_scene_xml(franka_assets_dir()))
    for body in spec.bodies:
        if body.name.startswith("panda0_"):
            body.gravcomp = 1.0
    link7 = spec.body("panda0_link7")
    # Between the finger pads, 2 cm short of the fingertips; same frame as the model's end_effector.
    link7.add_site(name="grip", pos=[0, 0, 0.24], euler=[0, 0, -np.pi / 4], size=[0.008, 0, 0],
                   rgba=[0, 1, 0, 0], group=3)
    # Wrist camera: on the hand, looking along the fingers (image up = away from the hand's cable side).
    link7.add_camera(name="wrist", pos=[0.07, -0.07, 0.12], fovy=70,
                     quat=_wrist_quat())
    return spec.compile()


def _wrist_quat() -> list:
    # In link7's frame the gripper points along +z; the camera (looking along its -z) sits beside the
    # hand and looks along +z, tilted towards the fingers' axis.
    target = np.array([0.0, 0.0, 0.26])
    pos = np.array([0.07, -0.07, 0.12])
    forward = target - pos
    forward /= np.linalg.norm(forward)
    up = np.array([0.0, 0.0, -1.0])
    x = np.cross(forward, up)
    x /= np.linalg.norm(x)
    y = np.cross(x, forward)
    mat = np.column_stack([x, y, -forward])
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat.reshape(-1))
    return quat.tolist()


class PandaPickBlock(SimTask):
    """Pick the red block from the table and lift it (see the module docstring)."""

    def __init__(self, lift_height: float = 0.10, episode_length: float = 8.0):
        self.model = build_model()
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.info = TaskInfo(
            name="panda_pick_block", embodiment="franka_panda", cameras=("head",),
            control_period=CONTROL_PERIOD, episode_length=float(episode_length),
            instruction="pick up the red block and lift it",
            description="Franka Panda on a table: pick a 4 cm block from a seeded random pose and lift it "
                        f"more than {lift_height * 100:.0f} cm, held between the fingers")
        self.extra_cameras = ("wrist", "side")
        joints = ARM_JOINTS + FINGER_JOINTS
        ids = [m.joint(name).id for name in joints]
        self.joint_names = [sanitize(name) for name in joints]
        self._qadr = np.array([m.jnt_qposadr[j] for j in ids])
        self._dadr = np.array([m.jnt_dofadr[j] for j in ids])
        self.lower = np.array([m.jnt_range[j, 0] for j in ids])
        self.upper = np.array([m.jnt_range[j, 1] for j in ids])
        self.lift_height = float(lift_height)
        self.n_substeps = int(round(CONTROL_PERIOD / m.opt.timestep))
        self.block_body = m.body("block").id
        self.block_geom = m.geom("block").id
        self._block_qadr = m.jnt_qposadr[m.joint("block_joint").id]
        self.finger_bodies = (m.body("panda0_leftfinger").id, m.body("panda0_rightfinger").id)
        self.grip_site = m.site("grip").id
        self.table_top = 0.0
        self._renderers = RendererPool(m)
        self.block_yaw = 0.0
        self.reset(0)

    # --- episode -------------------------------------------------------------------------------
    def reset(self, seed: int) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        rng = np.random.default_rng(seed)
        x = rng.uniform(*BLOCK_X)
        y = rng.uniform(*BLOCK_Y)
        yaw = rng.uniform(*BLOCK_YAW)
        self.block_yaw = float(yaw)
        d.qpos[self._qadr[:7]] = HOME
        d.qpos[self._qadr[7:]] = FINGER_OPEN
        a = self._block_qadr
        d.qpos[a:a + 3] = (x, y, self.table_top + BLOCK_HALF)
        d.qpos[a + 3:a + 7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
        d.ctrl[:7] = HOME
        d.ctrl[7:9] = FINGER_OPEN
        mujoco.mj_forward(m, d)

    def step(self, targets: np.ndarray) -> None:
        targets = np.asarray(targets, dtype=np.float64).reshape(-1)
        if targets.shape != (len(self.joint_names),):
            raise ValueError(f"targets: expected shape ({len(self.joint_names)},), got {targets.shape}")
        if not np.all(np.isfinite(targets)):
            raise ValueError("targets must be finite")
        q = np.clip(targets, self.lower, self.upper)
        d = self.data
        d.ctrl[:7] = q[:7]
        d.ctrl[7] = d.ctrl[8] = q[7]  # finger_joint2 is finger_joint1's mimic
        for _ in range(self.n_substeps):
            mujoco.mj_step(self.model, d)

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.qpos[self._qadr].copy(), self.data.qvel[self._dadr].copy()

    @property
    def time(self) -> float:
        return float(self.data.time)

    # --- scene state (privileged: for the expert and the reward) ---------------------------------
    def block_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,), quaternion wxyz (4,)) of the block."""
        a = self._block_qadr
        return self.data.qpos[a:a + 3].copy(), self.data.qpos[a + 3:a + 7].copy()

    def grip_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,), rotation matrix (3, 3)) of the grip site between the fingers."""
        return self.data.site_xpos[self.grip_site].copy(), self.data.site_xmat[self.grip_site].reshape(3, 3).copy()

    def finger_contacts(self) -> tuple[bool, bool]:
        """Whether the block touches the left / right finger."""
        left = right = False
        d, m = self.data, self.model
        for i in range(d.ncon):
            c = d.contact[i]
            b1, b2 = m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]
            if self.block_body not in (b1, b2):
                continue
            other = b2 if b1 == self.block_body else b1
            left |= other == self.finger_bodies[0]
            right |= other == self.finger_bodies[1]
        return bool(left), bool(right)

    def lift(self) -> float:
        """Height of the block above its resting height (m)."""
        return float(self.data.qpos[self._block_qadr + 2] - self.table_top - BLOCK_HALF)

    def reward(self) -> float:
        left, right = self.finger_contacts()
        if left and right:
            return 3.0 if self.lift() > self.lift_height else 2.0
        return 1.0 if (left or right) else 0.0

    def success(self) -> bool:
        return self.reward() >= 3.0

    # --- rendering -----------------------------------------------------------------------------
    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        if camera not in self.info.cameras and camera not in self.extra_cameras:
            raise ValueError(f"camera '{camera}' is not one of {self.info.cameras + self.extra_cameras}")
        return self._renderers.render(self.data, camera, width, height)

    def close(self) -> None:
        self._renderers.close()
