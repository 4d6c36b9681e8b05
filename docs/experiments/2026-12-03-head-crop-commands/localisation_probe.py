"""Does a kairos-nano policy read the cube from the pixels, or from the motion already under way?

For each held-out transfer-cube recording, the chunk predicted from the first observations is
compared with what the expert commanded (right waist and wrist rotate at the chunk's last row,
which turn towards the cube): from 1 and 2 observations, from the first 4 observations (the robot
has started moving), and from the first observation repeated 4 times (the robot at rest, as it is
when a closed-loop episode starts). A policy that localises the cube follows the truth in every
column; one that copies the motion follows it only where motion is visible.

    python localisation_probe.py PROFILE.yaml HELDOUT_DIR [ACTION_TOPIC]

PROFILE: a bringup profile whose world_model section points at the weights (and whose perception
section holds the crops they were trained with); HELDOUT_DIR: bags by kairos-sim record on seeds
never trained on.
"""
import copy
import sys

import numpy as np

from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib.dataset import find_bags, load_bag, settings_from_profile
from kairos_ros.lib.sim.closed_loop import load_profile, make_world_backend
from kairos_ros.train.evaluate import _observations

COLUMNS = (7, 12)  # right waist, right wrist rotate (aloha slots)


def main(profile_path: str, heldout: str, action_topic: str = "/joint_commands") -> None:
    spec = load_embodiment("aloha")
    profile = load_profile(profile_path, "kairos", "aloha")
    backend = make_world_backend(profile, spec)
    instruction = profile.world_model["instruction"]
    settings = settings_from_profile(profile_path, action_topic=action_topic)
    np.set_printoptions(precision=2, suppress=True, linewidth=200)
    print("bag | 1 obs | 2 obs | 4 obs (moving) | first obs x4 (at rest) | truth")
    for bag in find_bags([heldout]):
        ep = load_bag(bag, settings, None).episodes[0]
        first4 = _observations(ep, 3, 4, instruction)
        rest = []
        for i in range(4):
            o = copy.copy(first4[0])
            o.stamp = first4[0].stamp + 0.1 * i
            rest.append(o)
        row = []
        for history in (first4[:1], first4[:2], first4, rest):
            backend.reset()
            row.append(np.asarray(backend.predict(history, 32, 0.05).chunk.values)[31, list(COLUMNS)])
        truth = ep.action_slots(ep.times[0] + 0.05 * np.arange(1, 33))[31, list(COLUMNS)]
        print(bag.name, *row, truth, sep=" | ")


if __name__ == "__main__":
    main(*sys.argv[1:])
