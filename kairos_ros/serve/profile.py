"""The world_model section kairos-serve serves (in process or on Ray), read as the node reads it."""
from __future__ import annotations

import os

from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.params import load_ros_params_yaml, validate_params
from kairos_ros.params.world_model import SCHEMA, check_world_model
from kairos_ros.serve import StartError


def world_model_params(config: str, backend: str, embodiment: str, default_backend: str = "hold") -> dict:
    """The profile's world_model section with --backend and --embodiment applied (the backend: the
    flag, else the profile's, else `default_backend`; the robot: the flag, else the profile's, else
    the config file's name), validated with the node's schema and cross-checks. ParameterError or
    StartError name the problem."""
    raw = load_ros_params_yaml(config, "world_model")
    raw["backend"] = backend or raw.get("backend") or default_backend
    if raw["backend"] == "remote":
        raise StartError("backend 'remote' cannot be served (it is the client)")
    if embodiment:
        raw["embodiment"] = embodiment
    elif "embodiment" not in raw:
        stem = os.path.splitext(os.path.basename(config))[0]
        try:
            load_embodiment(stem)
        except ValueError:
            raise StartError(f"--embodiment is needed: the profile names none and '{stem}' is no robot") from None
        raw["embodiment"] = stem
    params = validate_params(SCHEMA, raw)
    check_world_model(params)
    return params
