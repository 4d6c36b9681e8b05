"""bringup.launch.py builds the same node set as kairos-bringup.

(The launch file was also run once by hand against ros2/launch 3.7.1 and launch_ros from source on
this machine: all nodes started from lib/kairos_ros, the bag replayed, SIGINT stopped every node.)

launch and launch_ros are not published on PyPI, so they cannot exist on these machines: this test
puts minimal stand-ins for the handful of launch classes the file uses into sys.modules, records
what the file asks for, and compares it with kairos_ros.bringup.graph.describe_graph. On a ROS
install the real `ros2 launch kairos_ros bringup.launch.py` runs the same code path.
"""
import importlib.util
import os
import sys
import types

import pytest

from integration.rosutil import REPO
from kairos_ros.bringup.graph import describe_graph


class _Recorder:
    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    values: dict = {}

    def __init__(self, name):
        self.name = name

    def perform(self, context):
        return context[self.name]


def _load_launch_file(monkeypatch):
    launch = types.ModuleType("launch")
    launch.LaunchDescription = _Recorder
    actions = types.ModuleType("launch.actions")
    actions.DeclareLaunchArgument = _Recorder
    actions.ExecuteProcess = _Recorder
    actions.SetEnvironmentVariable = _Recorder
    actions.OpaqueFunction = _Recorder
    actions.LogInfo = _Recorder
    subs = types.ModuleType("launch.substitutions")
    subs.LaunchConfiguration = _LaunchConfiguration
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")
    ros_actions.Node = _Recorder
    for name, mod in {"launch": launch, "launch.actions": actions, "launch.substitutions": subs,
                      "launch_ros": launch_ros, "launch_ros.actions": ros_actions}.items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location("bringup_launch", os.path.join(REPO, "launch", "bringup.launch.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _context(module, **overrides):
    ctx = {name: default for name, default, _ in module.ARGS}
    ctx.update(overrides)
    return ctx


@pytest.mark.parametrize("embodiment,backend", [("dual_arm", "hold"), ("single_arm", "extrapolate")])
def test_launch_file_matches_graph(monkeypatch, embodiment, backend):
    module = _load_launch_file(monkeypatch)
    desc = module.generate_launch_description()
    declared = {a.args[0] for a in desc.args[0] if a.args and isinstance(a.args[0], str)}
    assert {"embodiment", "backend", "config", "use_sim_time", "bag"} <= declared
    actions = [a for a in module._launch_setup(_context(module, embodiment=embodiment, backend=backend))
               if "name" in a.kwargs]
    expected = describe_graph(embodiment, backend)
    assert [a.kwargs["name"] for a in actions] == [p.name for p in expected]
    for action, proc in zip(actions, expected):
        assert action.kwargs["package"] == "kairos_ros"
        assert action.kwargs["executable"] == proc.executable
        assert action.kwargs["parameters"] == [*proc.param_files, proc.parameters]
        assert proc.parameters["embodiment"] == embodiment
        assert proc.parameters["use_sim_time"] is False


def test_launch_file_with_bag_adds_player_and_sim_time(monkeypatch):
    module = _load_launch_file(monkeypatch)
    bag = os.path.join(REPO, "data", "demo_dual_arm")
    actions = [a for a in module._launch_setup(_context(module, bag=bag)) if "name" in a.kwargs]
    names = [a.kwargs["name"] for a in actions]
    assert names[-1] == "player"
    assert actions[-1].kwargs["cmd"][:3] == [sys.executable, "-m", "kairos_ros.tools.play"]
    assert bag in actions[-1].kwargs["cmd"]
    assert all(a.kwargs["parameters"][-1]["use_sim_time"] is True for a in actions[:-1])


def test_launch_file_removes_stale_shared_memory_and_says_so(monkeypatch):
    import kairos_ros.core.shm as shm

    module = _load_launch_file(monkeypatch)
    calls = []
    monkeypatch.setattr(shm, "clean_stale_fastdds", lambda: calls.append(1) or ["fastdds_0", "fastdds_0_el"])
    logs = [a.kwargs["msg"] for a in module._launch_setup(_context(module)) if "msg" in a.kwargs]
    assert calls == [1]
    assert logs == ["removed 2 stale Fast DDS shared-memory files from /dev/shm"]
    monkeypatch.setattr(shm, "clean_stale_fastdds", lambda: [])
    assert not [a for a in module._launch_setup(_context(module)) if "msg" in a.kwargs]


def test_launch_file_rejects_bad_backend(monkeypatch):
    module = _load_launch_file(monkeypatch)
    with pytest.raises(ValueError, match="backend 'nope'"):
        module._launch_setup(_context(module, backend="nope"))


def test_setup_installs_launch_config_and_executables():
    """setup.py ships launch/, config/, urdf_adapters/ and puts scripts where ros2 run looks."""
    with open(os.path.join(REPO, "setup.py")) as f:
        text = f.read()
    for folder in ("launch", "config", "urdf_adapters"):
        assert f'tree("{folder}")' in text
    with open(os.path.join(REPO, "setup.cfg")) as f:
        cfg = f.read()
    assert "script_dir=$base/lib/kairos_ros" in cfg and "install_scripts=$base/lib/kairos_ros" in cfg
    for exe in ("perception_node", "world_model_node", "adapter_node"):
        assert f"{exe} = kairos_ros.nodes.{exe}:main" in text
