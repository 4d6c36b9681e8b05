"""Task scenes and their experts by name (imported only when asked for: MuJoCo loads lazily)."""
from __future__ import annotations

import importlib

# name -> (task class, expert class), as "module:Class"
TASKS = {
    "aloha_transfer_cube": ("kairos_ros.lib.sim.aloha:AlohaTransferCube",
                            "kairos_ros.lib.sim.aloha_expert:TransferCubeExpert"),
    "aloha_insertion": ("kairos_ros.lib.sim.aloha:AlohaInsertion", "kairos_ros.lib.sim.aloha_expert:InsertionExpert"),
    "panda_pick_block": ("kairos_ros.lib.sim.panda:PandaPickBlock", "kairos_ros.lib.sim.panda_expert:PickBlockExpert"),
    "shadow_hand_grasp": ("kairos_ros.lib.sim.hand:ShadowHandGrasp", "kairos_ros.lib.sim.hand_expert:GraspExpert"),
}


def _load(ref: str):
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def task_names() -> list[str]:
    return sorted(TASKS)


def _entry(name: str) -> tuple:
    if name not in TASKS:
        raise ValueError(f"unknown task '{name}' (known: {', '.join(task_names())})")
    return TASKS[name]


def make_task(name: str, **kwargs):
    """A new SimTask for the named scene (kwargs go to its constructor)."""
    return _load(_entry(name)[0])(**kwargs)


def make_expert(name: str, **kwargs):
    """A new scripted Expert for the named scene."""
    return _load(_entry(name)[1])(**kwargs)
