"""Fast headless MuJoCo rendering shared by the simulated scenes.

"Fast mode": no multisample anti-aliasing (model.vis.quality.offsamples = 0, set before the
renderer's GL context is made) and no shadows (mjRND_SHADOW cleared after every scene update).
On a software GL (Mesa llvmpipe through EGL) an ALOHA camera then takes a few milliseconds per
frame instead of tens.

MUJOCO_GL defaults to egl when unset; import this module (or call `ensure_gl()`) before the first
`import mujoco` anywhere in the process, since MuJoCo picks its GL backend on import.

    from kairos_ros.lib.sim.render import FastRenderer
    r = FastRenderer(model, 320, 240)
    rgb = r.render(data, "top")                        # a named camera of the model
    rgb = r.render(data, dict(lookat=(0, 0.5, 0), distance=1.2, azimuth=90, elevation=-40))
    r.close()

One renderer draws at one size; `RendererPool` keeps one per (width, height) for callers that
ask for several sizes.
"""
from __future__ import annotations

import importlib.util
import os


def ensure_gl() -> str:
    """Choose the headless GL backend (egl unless MUJOCO_GL is already set); returns it."""
    return os.environ.setdefault("MUJOCO_GL", "egl")


def _load_triton_first() -> None:
    """Mesa's software renderer and triton each bring their own LLVM: once a GL context has loaded
    Mesa's, importing triton (torch does, e.g. when an optimiser is built) crashes the process with
    a segmentation fault. Loaded the other way round both work, so triton, where installed, is
    imported before the first renderer is made."""
    if importlib.util.find_spec("triton") is not None:
        try:
            import triton  # noqa: F401
        except Exception:  # noqa: BLE001 - a broken triton install only loses this ordering
            pass


ensure_gl()

import mujoco  # noqa: E402  (MUJOCO_GL must be set first)
import numpy as np  # noqa: E402

FREE_CAMERA_KEYS = ("lookat", "distance", "azimuth", "elevation")


def free_camera(spec: dict) -> mujoco.MjvCamera:
    """An MjvCamera of type FREE from dict(lookat=(x, y, z), distance=m, azimuth=deg, elevation=deg)."""
    unknown = set(spec) - set(FREE_CAMERA_KEYS)
    if unknown:
        raise ValueError(f"free camera keys {sorted(unknown)} are not among {list(FREE_CAMERA_KEYS)}")
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    cam.lookat[:] = np.asarray(spec.get("lookat", (0.0, 0.0, 0.0)), dtype=np.float64)
    cam.distance = float(spec.get("distance", 1.0))
    cam.azimuth = float(spec.get("azimuth", 90.0))
    cam.elevation = float(spec.get("elevation", -45.0))
    return cam


class FastRenderer:
    """RGB frames of one MjModel at one size, without shadows or MSAA.

    The model's offscreen buffer is grown to (width, height) when it is smaller and its
    multisampling is switched off (both are model.vis settings, changed in place: the same model
    object is then rendered fast by every renderer made from it).
    """

    def __init__(self, model: mujoco.MjModel, width: int, height: int):
        _load_triton_first()
        if width < 1 or height < 1:
            raise ValueError(f"render size {width}x{height} must be positive")
        self.model = model
        self.width, self.height = int(width), int(height)
        model.vis.quality.offsamples = 0
        model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), self.width)
        model.vis.global_.offheight = max(int(model.vis.global_.offheight), self.height)
        self._renderer = mujoco.Renderer(model, height=self.height, width=self.width)
        self._cameras: dict = {}

    def _camera(self, camera):
        if isinstance(camera, dict):
            return free_camera(camera)
        if isinstance(camera, mujoco.MjvCamera):
            return camera
        if isinstance(camera, (int, np.integer)):
            if not -1 <= int(camera) < self.model.ncam:
                raise ValueError(f"camera id {camera} is not in -1..{self.model.ncam - 1}")
            return int(camera)
        cid = self._cameras.get(camera)
        if cid is None:
            cid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
            if cid < 0:
                names = [mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(self.model.ncam)]
                raise ValueError(f"camera '{camera}' is not in the model (cameras: {names})")
            self._cameras[camera] = cid
        return cid

    def render(self, data: mujoco.MjData, camera) -> np.ndarray:
        """(height, width, 3) uint8 RGB of `data` seen from `camera`: a model camera's name or id,
        a free-camera dict (lookat, distance, azimuth, elevation) or an MjvCamera."""
        if self._renderer is None:
            raise RuntimeError("FastRenderer is closed")
        self._renderer.update_scene(data, camera=self._camera(camera))
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class RendererPool:
    """One FastRenderer per (width, height) for a model, made when first asked for."""

    def __init__(self, model: mujoco.MjModel):
        self.model = model
        self._renderers: dict = {}

    def render(self, data: mujoco.MjData, camera, width: int, height: int) -> np.ndarray:
        key = (int(width), int(height))
        r = self._renderers.get(key)
        if r is None:
            r = self._renderers[key] = FastRenderer(self.model, *key)
        return r.render(data, camera)

    def close(self) -> None:
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()
