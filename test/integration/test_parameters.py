"""A bad parameter value refuses start-up with a message naming the parameter and the value."""
import os
import subprocess

import pytest
import yaml

from integration.rosutil import REPO
from kairos_ros.bringup.graph import ProcessSpec
from kairos_ros.bringup.supervisor import command_for


def start(module, params=None, files=(), timeout=60):
    spec = ProcessSpec("n", "n", module, list(files), dict(params or {}))
    cmd = command_for(spec)
    cmd[cmd.index("__node:=n")] = "__node:=" + module.rsplit(".", 1)[-1].replace("_node", "")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("module,params,expect", [
    ("kairos_ros.nodes.perception_node", {"camera_topics": ["/c"], "rate_hz": -1.0}, "parameter 'rate_hz' = -1.0"),
    ("kairos_ros.nodes.perception_node", {"camera_topics": ["/c"], "layout": "mosaic"}, "parameter 'layout' = 'mosaic'"),
    ("kairos_ros.nodes.perception_node", {"camera_topics": ["/c"], "rate_hz": "fast"}, "rate_hz"),
    ("kairos_ros.nodes.perception_node", {}, "camera_topics"),
    ("kairos_ros.nodes.world_model_node", {"backend": "magic"}, "parameter 'backend' = 'magic'"),
    ("kairos_ros.nodes.world_model_node", {"horizon": 0}, "parameter 'horizon' = 0"),
    ("kairos_ros.nodes.world_model_node", {"backend": "kairos", "temporal_mode": "official", "history_frames": 4,
                                           "history_length": 2, "allow_random_weights": True},
     "parameter 'history_length' = 2 must be >= history_frames 4"),
    ("kairos_ros.nodes.world_model_node", {"backend": "official"}, "official_allow_pickle: true"),
    ("kairos_ros.nodes.adapter_node", {"embodiment": "hexapod"}, "hexapod"),
    ("kairos_ros.nodes.adapter_node", {}, "embodiment"),
])
def test_bad_parameter_refuses_start(module, params, expect):
    result = start(module, params)
    assert result.returncode == 2, result.stdout + result.stderr
    assert expect in result.stderr, result.stderr


def test_history_shorter_than_the_velocity_fit_refuses_start(tmp_path):
    """A checkpoint whose proprio input carries velocities fitted over 3 observations (its codec and
    text encoder left random, which the test allows) cannot run on a history of 2."""
    from dataclasses import replace

    from kairos_ros.core.embodiment import load_embodiment
    from kairos_ros.model.config import get_preset
    from kairos_ros.model.nano_format import save_dit
    from kairos_ros.model.wam import KairosWAM

    spec = load_embodiment("dual_arm")
    base = get_preset("kairos-nano")
    net = KairosWAM(replace(base, action=replace(base.action, action_dim=spec.dim, state_dim=2 * spec.dim)))
    n = spec.dim
    stats = {f"{w}/default/global_{k}": [0.0 if k == "mean" else 1.0] * (2 * n if w == "state" else n)
             for w in ("action", "state") for k in ("mean", "std")}
    dit = str(tmp_path / "dit.safetensors")
    save_dit(net, dit, list(spec.slot_names), list(spec.slot_names), stats, "zscore", state_velocity=3)
    result = start("kairos_ros.nodes.world_model_node", {"backend": "kairos", "dit_checkpoint": dit,
                                                         "allow_random_weights": True, "history_length": 2})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "parameter 'history_length' = 2 must be >= 3" in result.stderr, result.stderr


def test_unknown_parameter_in_file_refuses_start(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"adapter": {"ros__parameters": {"embodiment": "dual_arm", "max_chunk_agee": 1.0}}}))
    result = start("kairos_ros.nodes.adapter_node", files=[str(path)])
    assert result.returncode == 2
    assert "unknown parameter 'max_chunk_agee'" in result.stderr


PROFILES = {"franka_panda": "franka_panda", "aloha": "aloha", "shadow_hand": "shadow_hand",
            "aloha_kairos_4b": "aloha"}  # profile -> the embodiment it drives


def test_every_profile_is_checked():
    shipped = {f[:-5] for f in os.listdir(os.path.join(REPO, "config")) if f.endswith(".yaml")}
    assert shipped == set(PROFILES)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_config_files_validate_through_schemas(profile):
    from kairos_ros.core.params import load_ros_params_yaml, validate_params
    from kairos_ros.params.adapter import SCHEMA as ADAPTER
    from kairos_ros.params.perception import SCHEMA as PERCEPTION
    from kairos_ros.params.world_model import SCHEMA as WORLD_MODEL

    path = os.path.join(REPO, "config", f"{profile}.yaml")
    for node, schema, extra in (("perception", PERCEPTION, {}), ("world_model", WORLD_MODEL, {}),
                                ("adapter", ADAPTER, {"embodiment": PROFILES[profile]})):
        values = load_ros_params_yaml(path, node)
        assert values, f"{path} has no section for {node}"
        validate_params(schema, {**values, **extra})


def test_parameter_docs_are_current():
    from kairos_ros.tools.gen_param_docs import render

    with open(os.path.join(REPO, "docs", "parameters.md")) as f:
        assert f.read() == render(), "docs/parameters.md is stale: run python -m kairos_ros.tools.gen_param_docs"
