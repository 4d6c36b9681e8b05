"""ALOHA bimanual scenes (gym-aloha's MJCF models, stepped with MuJoCo directly).

Two tasks from gym-aloha, with its own success definitions (reward 0..4, success = reward 4):
  AlohaTransferCube  the right arm picks up the red cube and hands it to the left arm;
                     reward 4 = the left gripper holds the cube off the table.
  AlohaInsertion     the left arm picks up the blue socket, the right arm the red peg, and the
                     peg goes into the socket; reward 4 = the peg touches the pin inside it.

Joint space: the 16 MJCF joints in model order (per arm waist, shoulder, elbow, forearm_roll,
wrist_angle, wrist_rotate, left_finger, right_finger), named as on /joint_states by the ALOHA
adapter (urdf_adapters/aloha/adapter.yaml: '/' -> '_'). Arms in radians, fingers in metres. The
adapter drives each gripper's left finger (slot 0..1 -> 0.021..0.057 m, the actuator's own
control range); its right finger is a mimic follower (position = -left finger), so step() ignores
the followers' targets and commands -left. Position control at 50 Hz: one step() is 10 MuJoCo
steps of 2 ms with the models' own position actuators (gym-aloha's physics, without dm_control
and without rendering). Limits come from the same model's joint ranges.

reset(seed) places the objects from np.random.default_rng(seed) over gym-aloha's sampling ranges
(cube x 0.0..0.2, y 0.4..0.6, z 0.05; peg x 0.1..0.2 and socket x -0.2..-0.1, y 0.4..0.6), arms at
gym-aloha's START_ARM_POSE; the same seed gives the same state bit for bit.

Cameras: head = the model's overhead "top" camera, left_wrist / right_wrist = the wrist cameras.
"""
from __future__ import annotations

from kairos_ros.lib.sim.render import RendererPool, ensure_gl

ensure_gl()

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from gym_aloha.constants import ASSETS_DIR, START_ARM_POSE  # noqa: E402

from kairos_ros.lib.sim.base import SimTask, TaskInfo  # noqa: E402

CONTROL_PERIOD = 0.02  # s (50 Hz, gym-aloha's DT)
CAMERAS = ("head", "left_wrist", "right_wrist")
CAMERA_MAP = {"head": "top", "left_wrist": "left_wrist", "right_wrist": "right_wrist"}
ARMS = ("vx300s_left", "vx300s_right")
ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "left_finger", "right_finger")
MJCF_JOINTS = tuple(f"{arm}/{j}" for arm in ARMS for j in ARM_JOINTS)
JOINT_NAMES = tuple(n.replace("/", "_") for n in MJCF_JOINTS)
# index of each follower finger -> index of its leader (position = -leader)
FOLLOWERS = {7: 6, 15: 14}
# index of each leader finger (driven by the adapter in metres)
FINGERS = (6, 14)


def assets_dir():
    return ASSETS_DIR


def start_arm_pose() -> np.ndarray:
    """gym-aloha's START_ARM_POSE (16 joint positions, fingers in metres)."""
    return np.asarray(START_ARM_POSE, dtype=np.float64)


def load_model(xml_name: str) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_path(str(assets_dir() / xml_name))


def joint_addresses(model: mujoco.MjModel) -> tuple[np.ndarray, np.ndarray]:
    """(qpos addresses, dof addresses) of MJCF_JOINTS in `model`."""
    ids = []
    for name in MJCF_JOINTS:
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if jid < 0:
            raise ValueError(f"joint '{name}' is not in the model")
        ids.append(jid)
    ids = np.asarray(ids)
    return model.jnt_qposadr[ids].copy(), model.jnt_dofadr[ids].copy()


def contact_pairs(model: mujoco.MjModel, data: mujoco.MjData) -> set:
    """Active contacts as unordered pairs of geom names."""
    pairs = set()
    for i in range(data.ncon):
        c = data.contact[i]
        pairs.add(frozenset((mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, c.geom1),
                             mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, c.geom2))))
    return pairs


def touching(pairs: set, a: str, *others: str) -> bool:
    return any(frozenset((a, b)) in pairs for b in others)


class AlohaTask(SimTask):
    """Common ALOHA scene: a joint-space gym-aloha model, the objects placed per seed."""

    XML = ""
    OBJECT_JOINTS: tuple = ()  # free joints of the objects, in sampling order
    info: TaskInfo

    def __init__(self):
        self.model = load_model(self.XML)
        self.data = mujoco.MjData(self.model)
        self.joint_names = list(JOINT_NAMES)
        self._qadr, self._dadr = joint_addresses(self.model)
        jids = [mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in MJCF_JOINTS]
        rng = self.model.jnt_range[jids]
        self.lower = rng[:, 0].astype(np.float64).copy()
        self.upper = rng[:, 1].astype(np.float64).copy()
        # actuator of each joint (position actuators, one per joint in the joint-space models)
        act_of = {int(self.model.actuator_trnid[a, 0]): a for a in range(self.model.nu)}
        self._act = np.asarray([act_of[j] for j in jids])
        self._ctrl_lo = self.model.actuator_ctrlrange[self._act, 0].copy()
        self._ctrl_hi = self.model.actuator_ctrlrange[self._act, 1].copy()
        self._obj_qadr = [int(self.model.jnt_qposadr[mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, n)])
                          for n in self.OBJECT_JOINTS]
        self._substeps = int(round(self.info.control_period / self.model.opt.timestep))
        self._steps = 0
        self._renderers = RendererPool(self.model)
        self.seed = None
        self.reset(0)

    # -- scene ---------------------------------------------------------------------------------
    def sample_objects(self, rng: np.random.Generator) -> list[np.ndarray]:
        """One 7-D pose (x, y, z, qw, qx, qy, qz) per OBJECT_JOINTS entry."""
        raise NotImplementedError

    def object_poses(self) -> np.ndarray:
        """(objects, 7) current object poses (privileged state, as the experts read it)."""
        return np.stack([self.data.qpos[a:a + 7].copy() for a in self._obj_qadr])

    def reset(self, seed: int) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        pose = start_arm_pose()
        d.qpos[self._qadr] = pose
        d.ctrl[self._act] = np.clip(pose, self._ctrl_lo, self._ctrl_hi)
        for adr, obj in zip(self._obj_qadr, self.sample_objects(np.random.default_rng(seed))):
            d.qpos[adr:adr + 7] = obj
        mujoco.mj_forward(m, d)
        self._steps = 0
        self.seed = seed

    def command(self, targets) -> np.ndarray:
        """The actuator controls step() applies for `targets` (J,): leaders' targets clipped to the
        actuators' ranges, each follower finger at -its leader."""
        t = np.asarray(targets, dtype=np.float64).reshape(-1)
        if t.shape != (len(JOINT_NAMES),):
            raise ValueError(f"targets have shape {t.shape}, expected ({len(JOINT_NAMES)},) for {len(JOINT_NAMES)} joints")
        t = t.copy()
        for follower, leader in FOLLOWERS.items():
            t[follower] = -t[leader]
        if not np.all(np.isfinite(t)):
            raise ValueError(f"targets are not finite: {t}")
        return np.clip(t, self._ctrl_lo, self._ctrl_hi)

    def step(self, targets) -> None:
        self.data.ctrl[self._act] = self.command(targets)
        mujoco.mj_step(self.model, self.data, nstep=self._substeps)
        self._steps += 1

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.qpos[self._qadr].copy(), self.data.qvel[self._dadr].copy()

    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        name = CAMERA_MAP.get(camera, camera)
        return self._renderers.render(self.data, name, width, height)

    @property
    def time(self) -> float:
        return self._steps * self.info.control_period

    @property
    def steps(self) -> int:
        """Control periods since reset."""
        return self._steps

    @property
    def max_steps(self) -> int:
        return int(round(self.info.episode_length / self.info.control_period))

    def success(self) -> bool:
        return self.reward() >= 4

    def close(self) -> None:
        self._renderers.close()


class AlohaTransferCube(AlohaTask):
    XML = "bimanual_viperx_transfer_cube.xml"
    OBJECT_JOINTS = ("red_box_joint",)
    info = TaskInfo(name="aloha_transfer_cube", embodiment="aloha", cameras=CAMERAS, control_period=CONTROL_PERIOD,
                    episode_length=8.0, instruction="transfer the red cube to the other arm",
                    description="ALOHA (gym-aloha): the right arm picks up the red cube and hands it to the left arm")

    def sample_objects(self, rng):
        xyz = rng.uniform([0.0, 0.4, 0.05], [0.2, 0.6, 0.05])
        return [np.concatenate([xyz, [1.0, 0.0, 0.0, 0.0]])]

    def reward(self) -> float:
        pairs = contact_pairs(self.model, self.data)
        right = touching(pairs, "red_box", "vx300s_right/10_right_gripper_finger")
        left = touching(pairs, "red_box", "vx300s_left/10_left_gripper_finger")
        table = touching(pairs, "red_box", "table")
        reward = 0
        if right:
            reward = 1
        if right and not table:  # lifted
            reward = 2
        if left:  # attempted transfer
            reward = 3
        if left and not table:  # transferred
            reward = 4
        return float(reward)


SOCKET_GEOMS = ("socket-1", "socket-2", "socket-3", "socket-4")


class AlohaInsertion(AlohaTask):
    XML = "bimanual_viperx_insertion.xml"
    OBJECT_JOINTS = ("red_peg_joint", "blue_socket_joint")
    info = TaskInfo(name="aloha_insertion", embodiment="aloha", cameras=CAMERAS, control_period=CONTROL_PERIOD,
                    episode_length=12.0, instruction="insert the red peg into the blue socket",
                    description="ALOHA (gym-aloha): the left arm lifts the socket, the right arm the peg, "
                                "and the peg goes into the socket")

    def sample_objects(self, rng):
        peg = rng.uniform([0.1, 0.4, 0.05], [0.2, 0.6, 0.05])
        socket = rng.uniform([-0.2, 0.4, 0.05], [-0.1, 0.6, 0.05])
        quat = [1.0, 0.0, 0.0, 0.0]
        return [np.concatenate([peg, quat]), np.concatenate([socket, quat])]

    def reward(self) -> float:
        pairs = contact_pairs(self.model, self.data)
        right = touching(pairs, "red_peg", "vx300s_right/10_right_gripper_finger")
        left = any(touching(pairs, s, "vx300s_left/10_left_gripper_finger") for s in SOCKET_GEOMS)
        peg_table = touching(pairs, "red_peg", "table")
        socket_table = any(touching(pairs, s, "table") for s in SOCKET_GEOMS)
        peg_socket = touching(pairs, "red_peg", *SOCKET_GEOMS)
        reward = 0
        if left and right:  # both touched
            reward = 1
        if left and right and not peg_table and not socket_table:  # both grasped
            reward = 2
        if peg_socket and not peg_table and not socket_table:  # peg and socket touching
            reward = 3
        if touching(pairs, "red_peg", "pin"):  # inserted
            reward = 4
        return float(reward)
