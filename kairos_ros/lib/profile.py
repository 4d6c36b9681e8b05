"""Bringup profiles (config/<robot>.yaml) read the way the nodes read them, for the front ends that
run the graph's code without the graph: offline evaluation (kairos-eval), closed-loop evaluation
(kairos-sim evaluate), training (kairos-train --bags) and kairos-bringup itself.

Also the one rule for the task instruction, shared by the live graph and offline evaluation
(INSTRUCTION_RULE): the profile's world_model.instruction is the instruction at the start; every
message on the instruction topic replaces it (the newest wins). Live, the world model publishes the
profile's instruction on that topic (latched) and perception keeps the newest message; offline,
kairos-eval starts from the profile's instruction and a recorded /instruction replaces it."""
from __future__ import annotations

from dataclasses import dataclass

from kairos_ros.backends import make_backend
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.params import ParameterError, load_ros_params_yaml, validate_params
from kairos_ros.core.paths import find_data
from kairos_ros.params.adapter import SCHEMA as ADAPTER_SCHEMA
from kairos_ros.params.perception import SCHEMA as PERCEPTION_SCHEMA
from kairos_ros.params.world_model import SCHEMA as WORLD_SCHEMA
from kairos_ros.params.world_model import backend_options, check_world_model

INSTRUCTION_RULE = ("the profile's world_model.instruction at the start; each message on the instruction topic "
                    "replaces it (the newest wins)")


def default_config(embodiment: str) -> str:
    """config/<embodiment>.yaml, else the profile of the robot it names: a robot's name and its
    aliases (urdf_adapters/<robot>/adapter.yaml) share one profile, e.g. dual_arm -> config/aloha.yaml."""
    names = [embodiment]
    try:
        names += [n for n in load_embodiment(embodiment).names() if n != embodiment]
    except ValueError:
        pass  # not a robot: the error below names the file that was looked for
    for name in names:
        path = find_data("config", f"{name}.yaml")
        if path is not None:
            return path
    raise ValueError(f"no bringup profile config/{embodiment}.yaml for embodiment '{embodiment}'; "
                     "pass config:=<file>")


@dataclass
class Profile:
    """A bringup profile's perception, world_model and adapter sections, validated by the nodes' schemas."""
    path: str
    perception: dict
    world_model: dict
    adapter: dict


def load_profile(path: str, backend: str, embodiment: str, world_overrides: dict | None = None) -> Profile:
    """Read and validate a bringup profile's perception, world_model and adapter sections exactly as
    the nodes do (their schemas), with the backend chosen here. ParameterError names the problem."""
    perception = validate_params(PERCEPTION_SCHEMA, {**load_ros_params_yaml(path, "perception"),
                                                      "embodiment": embodiment})
    world_raw = {**load_ros_params_yaml(path, "world_model"), "backend": backend, "embodiment": embodiment,
                 **(world_overrides or {})}
    world = validate_params(WORLD_SCHEMA, world_raw)
    adapter = validate_params(ADAPTER_SCHEMA, {**load_ros_params_yaml(path, "adapter"), "embodiment": embodiment})
    return Profile(str(path), perception, world, adapter)


def make_world_backend(profile: Profile, spec):
    """The backend the profile's world_model section describes, built as the node builds it."""
    check_world_model(profile.world_model)
    try:
        backend = make_backend(profile.world_model["backend"], spec, **backend_options(profile.world_model))
    except (ValueError, KeyError, FileNotFoundError) as exc:
        raise ParameterError(str(exc)) from exc
    check_world_model(profile.world_model, backend)  # the loaded model's own requirements
    return backend
