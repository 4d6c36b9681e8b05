"""bringup.launch.py under the real launch and launch_ros: how the launch ends, and that no node
outlives it.

launch and launch_ros are no PyPI packages: these tests run where they are importable (a ROS 2
install, or their sources on KAIROS_LAUNCH_PYTHONPATH, e.g. ros2/launch's launch/ and
ros2/launch_ros' launch_ros/ folders) and are skipped elsewhere. The launch file runs as
`ros2 launch kairos_ros bringup.launch.py` runs it (LaunchService, IncludeLaunchDescription),
non-interactive as from a script, where launch forwards a SIGINT to its processes on top of the one
they get from the process group. The nodes' executables come from a throw-away ament prefix whose
lib/kairos_ros/<executable> exec `python -m kairos_ros.nodes.<executable>`, so the nodes are the
launch process's children as on a colcon install.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from integration.rosutil import REPO, Listener, wait_for

NODES = ("perception", "world_model", "adapter", "visualizer")
EXECUTABLES = ("perception_node", "world_model_node", "adapter_node", "visualizer_node")

RUNNER = r"""
import sys
import launch
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

args = [tuple(a.split(":=", 1)) for a in sys.argv[2:]]
service = launch.LaunchService(argv=sys.argv[2:], noninteractive=True)
service.include_launch_description(IncludeLaunchDescription(PythonLaunchDescriptionSource(sys.argv[1]),
                                                            launch_arguments=args))
sys.exit(service.run())
"""


def _launch_env() -> dict:
    env = dict(os.environ)
    extra = os.environ.get("KAIROS_LAUNCH_PYTHONPATH", "")
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, env.get("PYTHONPATH", "")) if p)
    return env


def _launch_available() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import launch.launch_service, launch_ros.actions"],
                           env=_launch_env(), cwd="/", capture_output=True)
    return probe.returncode == 0


pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
    pytest.mark.skipif(not _launch_available(),
                       reason="launch/launch_ros are not importable (a ROS 2 install, or KAIROS_LAUNCH_PYTHONPATH)"),
]


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of every live (not zombie) process whose parent is `pid`."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat[1]) == pid and stat[0] != "Z":
            out[int(entry)] = cmdline
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Launch:
    def __init__(self, tmp_path, *args: str):
        prefix = tmp_path / "prefix"
        (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
        (prefix / "share" / "ament_index" / "resource_index" / "packages" / "kairos_ros").write_text("")
        lib = prefix / "lib" / "kairos_ros"
        lib.mkdir(parents=True)
        for exe in EXECUTABLES:
            (lib / exe).write_text(f'#!/bin/sh\nexec "{sys.executable}" -m kairos_ros.nodes.{exe} "$@"\n')
            (lib / exe).chmod(0o755)
        env = _launch_env()
        env["AMENT_PREFIX_PATH"] = os.pathsep.join(p for p in (str(prefix), env.get("AMENT_PREFIX_PATH", "")) if p)
        self.log_path = tmp_path / "launch.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-c", RUNNER, os.path.join(REPO, "launch", "bringup.launch.py"),
                                      *args], stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=str(tmp_path), start_new_session=True)
        self.pids: dict[int, str] = {}

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def wait_up(self, listener: Listener, names=NODES, timeout: float = 90.0) -> dict[int, str]:
        assert listener.wait_nodes(list(names), timeout), self.output()
        assert wait_for(lambda: len(self._record()) >= len(names), 10), (self.pids, self.output())
        return self.pids

    def _record(self) -> dict[int, str]:
        self.pids.update(_children(self.proc.pid))
        return self.pids

    def pid_of(self, name: str) -> int:
        return next(pid for pid, cmd in self.pids.items() if f"__node:={name} " in cmd + " " or
                    f"nodes.{name}_node" in cmd)

    def survivors(self) -> list[str]:
        return [f"{pid}: {cmd}" for pid, cmd in self.pids.items() if _alive(pid)]

    def close(self) -> None:
        for pid in list(self.pids):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


@pytest.fixture
def listener():
    listener = Listener("launch_stop_listener")
    yield listener
    listener.close()


def test_launch_ends_when_a_node_dies(tmp_path, listener):
    launch = Launch(tmp_path, "embodiment:=dual_arm", "backend:=hold")
    try:
        launch.wait_up(listener)
        os.kill(launch.pid_of("world_model"), signal.SIGKILL)
        assert wait_for(lambda: launch.proc.poll() is not None, 40), \
            "the launch ran on after world_model died\n" + launch.output()
        assert wait_for(lambda: not launch.survivors(), 10), launch.survivors()
        assert "node 'world_model' exited with code -9" in launch.output(), launch.output()
    finally:
        launch.close()


def test_launch_ends_when_the_bag_ends(tmp_path, listener):
    bag = os.path.join(REPO, "data", "demo_dual_arm")
    launch = Launch(tmp_path, "embodiment:=dual_arm", "backend:=hold", f"bag:={bag}", "rate:=4.0",
                    "visualize:=false")
    try:
        launch.wait_up(listener, ("perception", "world_model", "adapter"))
        assert wait_for(lambda: launch.proc.poll() is not None, 240), \
            "the launch ran on after the bag ended\n" + launch.output()
        assert wait_for(lambda: not launch.survivors(), 10), launch.survivors()
        out = launch.output()
        assert "bag finished" in out, out
        assert "process has died" not in out, out
    finally:
        launch.close()


def test_sigint_to_the_launch_group_stops_every_node_cleanly(tmp_path, listener):
    """A terminal's Ctrl-C (here: SIGINT to the process group, from a non-interactive launch, which
    forwards it once more): every node exits 0 without a traceback."""
    launch = Launch(tmp_path, "embodiment:=dual_arm", "backend:=hold")
    try:
        launch.wait_up(listener)
        os.killpg(launch.proc.pid, signal.SIGINT)
        assert wait_for(lambda: launch.proc.poll() is not None, 60), launch.output()
        out = launch.output()
        assert "process has died" not in out, out
        assert out.count("process has finished cleanly") >= len(NODES), out
        assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    finally:
        launch.close()


def test_sigterm_to_the_launch_process_leaves_no_node_behind(tmp_path, listener):
    """launch exits on SIGTERM without stopping its processes (ros2/launch#666): the nodes stop
    themselves when their parent is gone."""
    launch = Launch(tmp_path, "embodiment:=dual_arm", "backend:=hold")
    try:
        pids = dict(launch.wait_up(listener))
        os.kill(launch.proc.pid, signal.SIGTERM)
        assert wait_for(lambda: launch.proc.poll() is not None, 30), launch.output()
        assert wait_for(lambda: not launch.survivors(), 30), \
            f"nodes outlived the launch: {launch.survivors()}\n{launch.output()}"
        assert len(pids) >= len(NODES)
    finally:
        launch.close()
