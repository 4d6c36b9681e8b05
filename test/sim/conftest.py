"""Simulation tests render headless: MuJoCo picks its GL backend when first imported, so choose
EGL before any test module imports mujoco (an explicit MUJOCO_GL, e.g. osmesa, is kept)."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")
