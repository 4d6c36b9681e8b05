"""shadow_hand_grasp: the Shadow hand closes its fingers and thumb around a cube on its palm and
holds it.

The hand is gymnasium-robotics' Shadow Dexterous Hand model (assets/hand: robot.xml with its
shared defaults, tendons and 20 position actuators, read where pip installed it), palm up as in
gymnasium-robotics' manipulation scenes. A 5 cm cube (free joint) is dropped on the palm at a
seeded random offset (+-1 cm) and yaw; reset() lets it settle (0.4 s of physics with the hand
open, the same for the same seed) and starts the clock at 0.

- Joints on /joint_states: the 24 hinge joints of urdf_adapters/shadow_hand/robot.urdf in its
  order (the MJCF names with ':' made '_'). Each finger's J0 is coupled to its J1 by the model's
  tendon (a URDF mimic joint): its target in step() is ignored. The other 20 targets go to the 20
  position actuators (clipped to their control ranges, which equal the joint ranges).
- Cameras: "head" (the bringup profile config/shadow_hand.yaml: /cameras/head/image_raw); the
  MJCF has no camera, so it is a free camera: lookat (1, 0.96, 0.14), distance 0.5 m, azimuth
  55 deg, elevation -25 deg.
- Success: the cube has been grasped for `hold_time` (0.5 s) without a break: at least three
  digits (thumb or fingers) touch it and its centre stays within 8 cm of the palm plate's centre.
  Reward: the fraction of the five digits touching the cube now (0..1).

Scripted expert (hand_expert.GraspExpert): 47 of 50 seeded episodes (seeds 0..49) end successful
at the 5 s episode end (94 %; 49 of 50 reach success at some time); first success at a median
1.64 s after reset. Timings on this host (2 shared CPU cores, Mesa llvmpipe through EGL): one
control step (20 ms = 10 physics steps of 2 ms) 0.4-0.6 ms; a 224x224 frame about 8 ms in fast
mode (no shadows, no MSAA); reset (with the settling) about 9 ms.
"""
from __future__ import annotations

import importlib.util
import os

from kairos_ros.lib.sim.render import RendererPool  # sets MUJOCO_GL before mujoco is imported

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from kairos_ros.lib.sim.base import SimTask, TaskInfo  # noqa: E402
from kairos_ros.lib.urdf_math import sanitize  # noqa: E402

CONTROL_PERIOD = 0.02
HEAD_CAMERA = dict(lookat=(1.0, 0.96, 0.14), distance=0.5, azimuth=55.0, elevation=-25.0)
CUBE_HALF = 0.025
# Where the cube is dropped (its centre; the palm faces up around x = 1, y = 0.87).
DROP_CENTRE = (1.0, 0.87, 0.2)
DROP_OFFSET = 0.01  # m, uniform in x and y
SETTLE_TIME = 0.4  # s of physics in reset() (hand open) for the cube to come to rest
DIGITS = ("ff", "mf", "rf", "lf", "th")
FOLLOWERS = ("FFJ0", "MFJ0", "RFJ0", "LFJ0")


def hand_assets_dir() -> str:
    """gymnasium-robotics' hand assets folder (found without importing the package)."""
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("gymnasium-robotics is not installed (pip install -r requirements.txt)")
    return os.path.join(list(spec.submodule_search_locations)[0], "envs", "assets", "hand")


def _scene_xml(root: str) -> str:
    return f"""<mujoco model="shadow_hand_grasp">
  <compiler angle="radian" coordinate="local" meshdir="{root}/../stls/hand" texturedir="{root}/../textures"/>
  <option timestep="0.002" iterations="20"><flag warmstart="enable"/></option>
  <include file="{root}/shared.xml"/>
  <visual><global offwidth="640" offheight="480"/><quality shadowsize="0" offsamples="0"/></visual>
  <asset><include file="{root}/shared_asset.xml"/></asset>
  <worldbody>
    <geom name="floor0" pos="1 1 0" size="1 1 1" type="plane" condim="3" material="floor_mat"/>
    <include file="{root}/robot.xml"/>
    <body name="object" pos="{DROP_CENTRE[0]} {DROP_CENTRE[1]} {DROP_CENTRE[2]}">
      <freejoint name="object:joint"/>
      <geom name="object" type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}" rgba="0.85 0.2 0.15 1"
            condim="4" density="567"/>
    </body>
    <light directional="true" ambient="0.2 0.2 0.2" diffuse="0.8 0.8 0.8" specular="0.3 0.3 0.3"
           castshadow="false" pos="0 1 4" dir="0 0 -1" name="light0"/>
  </worldbody>
</mujoco>"""


def build_model() -> mujoco.MjModel:
    return mujoco.MjSpec.from_string(_scene_xml(hand_assets_dir())).compile()


def _digit(body_name: str) -> str | None:
    """Which digit a hand body belongs to (None for the palm, wrist, forearm and metacarpal)."""
    name = body_name.split(":", 1)[-1]
    for digit in DIGITS:
        if name.startswith(digit) and not name.endswith(("knuckle", "metacarpal", "base")):
            return digit
    return None


class ShadowHandGrasp(SimTask):
    """Grasp the cube on the palm and hold it (see the module docstring)."""

    def __init__(self, hold_time: float = 0.5, episode_length: float = 5.0):
        self.model = build_model()
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.info = TaskInfo(
            name="shadow_hand_grasp", embodiment="shadow_hand", cameras=("head",),
            control_period=CONTROL_PERIOD, episode_length=float(episode_length),
            instruction="grasp the red cube and hold it",
            description="Shadow hand, palm up: close the fingers and thumb around a 5 cm cube dropped on "
                        f"the palm at a seeded pose and hold it for {hold_time:g} s")
        self.hand_joints = [j for j in range(m.njnt) if m.joint(j).name.startswith("robot0:")]
        self.joint_names = [sanitize(m.joint(j).name) for j in self.hand_joints]
        self._qadr = np.array([m.jnt_qposadr[j] for j in self.hand_joints])
        self._dadr = np.array([m.jnt_dofadr[j] for j in self.hand_joints])
        self.lower = np.array([m.jnt_range[j, 0] for j in self.hand_joints])
        self.upper = np.array([m.jnt_range[j, 1] for j in self.hand_joints])
        # actuator a drives joint_names[self._act_index[a]]
        index = {j: i for i, j in enumerate(self.hand_joints)}
        self._act_index = np.array([index[m.actuator_trnid[a, 0]] for a in range(m.nu)])
        self.followers = [i for i, name in enumerate(self.joint_names) if name.endswith(FOLLOWERS)]
        self.n_substeps = int(round(CONTROL_PERIOD / m.opt.timestep))
        self.hold_time = float(hold_time)
        self.object_body = m.body("object").id
        self._object_qadr = m.jnt_qposadr[m.joint("object:joint").id]
        self.palm_geom = m.geom("robot0:C_palm0").id  # the palm plate's centre
        self._body_digit = [_digit(m.body(b).name) for b in range(m.nbody)]
        self._renderers = RendererPool(m)
        self._held_since = None
        self.reset(0)

    # --- episode -------------------------------------------------------------------------------
    def open_targets(self) -> np.ndarray:
        """The open hand (every joint at 0, or the nearest end of its range) as targets (24,)."""
        return np.clip(np.zeros(len(self.joint_names)), self.lower, self.upper)

    def reset(self, seed: int) -> None:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        rng = np.random.default_rng(seed)
        dx, dy = rng.uniform(-DROP_OFFSET, DROP_OFFSET, 2)
        yaw = rng.uniform(-np.pi, np.pi)
        a = self._object_qadr
        d.qpos[a:a + 3] = (DROP_CENTRE[0] + dx, DROP_CENTRE[1] + dy, DROP_CENTRE[2])
        d.qpos[a + 3:a + 7] = (np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2))
        open_q = self.open_targets()
        d.qpos[self._qadr] = open_q
        d.ctrl[:] = open_q[self._act_index]
        for _ in range(int(round(SETTLE_TIME / m.opt.timestep))):
            mujoco.mj_step(m, d)
        d.time = 0.0
        mujoco.mj_forward(m, d)
        self._held_since = None
        self._update_hold()

    def step(self, targets: np.ndarray) -> None:
        targets = np.asarray(targets, dtype=np.float64).reshape(-1)
        if targets.shape != (len(self.joint_names),):
            raise ValueError(f"targets: expected shape ({len(self.joint_names)},), got {targets.shape}")
        if not np.all(np.isfinite(targets)):
            raise ValueError("targets must be finite")
        m, d = self.model, self.data
        ctrl = targets[self._act_index]  # the J0 followers have no actuator
        d.ctrl[:] = np.clip(ctrl, m.actuator_ctrlrange[:, 0], m.actuator_ctrlrange[:, 1])
        for _ in range(self.n_substeps):
            mujoco.mj_step(m, d)
        self._update_hold()

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.qpos[self._qadr].copy(), self.data.qvel[self._dadr].copy()

    @property
    def time(self) -> float:
        return float(self.data.time)

    # --- scene state (privileged) --------------------------------------------------------------
    def object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        a = self._object_qadr
        return self.data.qpos[a:a + 3].copy(), self.data.qpos[a + 3:a + 7].copy()

    def touching(self) -> set:
        """The digits ("ff", "mf", "rf", "lf", "th") whose phalanges touch the cube now."""
        d, m = self.data, self.model
        digits = set()
        for i in range(d.ncon):
            c = d.contact[i]
            b1, b2 = m.geom_bodyid[c.geom1], m.geom_bodyid[c.geom2]
            if b1 == self.object_body:
                other = b2
            elif b2 == self.object_body:
                other = b1
            else:
                continue
            digit = self._body_digit[other]
            if digit is not None:
                digits.add(digit)
        return digits

    def grasped(self) -> bool:
        """At least three digits (thumb or fingers) touch the cube, which is within 8 cm of the palm."""
        digits = self.touching()
        near = np.linalg.norm(self.data.xpos[self.object_body] - self.data.geom_xpos[self.palm_geom]) < 0.08
        return bool(near) and len(digits) >= 3

    def _update_hold(self) -> None:
        if self.grasped():
            if self._held_since is None:
                self._held_since = self.time
        else:
            self._held_since = None

    def held_for(self) -> float:
        """Seconds the cube has been grasped without a break (0 when it is not grasped now)."""
        return 0.0 if self._held_since is None else self.time - self._held_since

    def reward(self) -> float:
        return len(self.touching()) / len(DIGITS)

    def success(self) -> bool:
        return self._held_since is not None and self.held_for() >= self.hold_time - 1e-9

    # --- rendering -----------------------------------------------------------------------------
    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        if camera != "head":
            raise ValueError(f"camera '{camera}' is not one of {self.info.cameras}")
        return self._renderers.render(self.data, HEAD_CAMERA, width, height)

    def close(self) -> None:
        self._renderers.close()
