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
    actions.EmitEvent = _Recorder
    actions.RegisterEventHandler = _Recorder
    actions.TimerAction = _Recorder
    handlers = types.ModuleType("launch.event_handlers")
    handlers.OnProcessExit = _Recorder
    events = types.ModuleType("launch.events")
    events.Shutdown = _Recorder
    subs = types.ModuleType("launch.substitutions")
    subs.LaunchConfiguration = _LaunchConfiguration
    launch_ros = types.ModuleType("launch_ros")
    ros_actions = types.ModuleType("launch_ros.actions")
    ros_actions.Node = _Recorder
    for name, mod in {"launch": launch, "launch.actions": actions, "launch.substitutions": subs,
                      "launch.event_handlers": handlers, "launch.events": events,
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
    # through bringup.child: SIGTERM to the player when the launch process dies
    assert actions[-1].kwargs["cmd"][:4] == [sys.executable, "-m", "kairos_ros.bringup.child", "kairos_ros.tools.play"]
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


def _exit_handlers(actions):
    return {h.args[0].kwargs["target_action"].kwargs["name"]: h.args[0].kwargs["on_exit"]
            for h in actions if h.args and "target_action" in getattr(h.args[0], "kwargs", {})}


class _Exited:
    def __init__(self, returncode):
        self.returncode = returncode


class _Context:
    def __init__(self, is_shutdown=False):
        self.is_shutdown = is_shutdown


def test_launch_ends_when_any_process_exits(monkeypatch):
    """Like kairos-bringup: a node that exits ends the launch, naming it and its exit code; the bag
    player's end ends it after a grace period; nothing is added while the launch shuts down."""
    module = _load_launch_file(monkeypatch)
    bag = os.path.join(REPO, "data", "demo_dual_arm")
    actions = module._launch_setup(_context(module, bag=bag))
    handlers = _exit_handlers(actions)
    assert set(handlers) == {"perception", "world_model", "adapter", "visualizer", "player"}
    logged, shutdown = handlers["world_model"](_Exited(-9), _Context())
    assert shutdown.kwargs["event"].kwargs["reason"] == "node 'world_model' exited with code -9"
    assert "world_model" in logged.kwargs["msg"]
    assert handlers["world_model"](_Exited(0), _Context())[-1].kwargs["event"].kwargs["reason"] == \
        "node 'world_model' exited with code 0"
    _, timer = handlers["player"](_Exited(0), _Context())
    assert timer.kwargs["actions"][0].kwargs["event"].kwargs["reason"] == "bag finished"
    assert handlers["player"](_Exited(1), _Context())[-1].kwargs["event"].kwargs["reason"] == \
        "bag player 'player' exited with code 1"
    assert handlers["adapter"](_Exited(-2), _Context(is_shutdown=True)) is None


@pytest.mark.parametrize("name,value,message", [
    ("rate", "abc", "rate:='abc' is not a number"),
    ("rate", "0", "rate:='0' must be a number > 0"),
    ("visualize", "maybe", "visualize:='maybe' is not a boolean"),
    ("rviz", "ture", "rviz:='ture' is not a boolean"),
    ("loop", "2", "loop:='2' is not a boolean"),
    ("use_sim_time", "yes please", "use_sim_time:='yes please' is not a boolean"),
    ("embodiment", "dual_armm", r"embodiment:='dual_armm': unknown embodiment 'dual_armm' \(known: \['aloha', "
                                r"'franka_panda', 'shadow_hand'\]; aliases: .*dual_arm = aloha"),
])
def test_launch_file_names_a_bad_argument(monkeypatch, name, value, message):
    module = _load_launch_file(monkeypatch)
    bag = os.path.join(REPO, "data", "demo_dual_arm") if name == "rate" else ""
    with pytest.raises(ValueError, match=message):
        module._launch_setup(_context(module, bag=bag, **{name: value}))


def test_launch_file_refuses_a_misspelt_profile_section(monkeypatch, tmp_path):
    module = _load_launch_file(monkeypatch)
    with open(os.path.join(REPO, "config", "aloha.yaml")) as f:
        text = f.read()
    bad = tmp_path / "typo.yaml"
    bad.write_text(text.replace("\nadapter:\n", "\nadaptr:\n"))
    with pytest.raises(ValueError, match=r"section 'adaptr' is not a node of the graph \(did you mean 'adapter'\?\); "
                                         r"the nodes are perception, world_model, adapter, visualizer"):
        module._launch_setup(_context(module, config=str(bad)))
