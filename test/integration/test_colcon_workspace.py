"""The ROS-install path: colcon discovers both packages (kairos_msgs is nested inside kairos_ros)
and builds them; the executables land where `ros2 run` and launch_ros look for them.

colcon comes from PyPI here and builds against the ROS 2 PyPI wheels (Kilted); on a real Humble,
Jazzy or Kilted install the same command builds against the distribution.
"""
import os
import shutil
import subprocess
import sys

import pytest

from integration.rosutil import REPO

COLCON = shutil.which("colcon", path=os.path.dirname(sys.executable))
pytestmark = pytest.mark.skipif(COLCON is None, reason="colcon is not installed in this environment")


def _copy_repo(dst):
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split("\n")
    for rel in filter(None, files):
        src = os.path.join(REPO, rel)
        if os.path.isfile(src) and not rel.startswith(("test/", "data/")):
            os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dst, rel))


def test_colcon_discovers_and_builds_both_packages(tmp_path):
    ws = tmp_path / "ws"
    _copy_repo(str(ws / "src" / "kairos_ros"))
    env = dict(os.environ, AMENT_PREFIX_PATH=sys.prefix, CMAKE_PREFIX_PATH=sys.prefix)
    listed = subprocess.run([COLCON, "list", "--base-paths", "src", "src/kairos_ros/kairos_msgs"], cwd=ws,
                            env=env, capture_output=True, text=True, check=True).stdout
    assert "kairos_msgs" in listed and "kairos_ros" in listed, listed
    # Without the second base path colcon stops at the outer package: the README says so.
    plain = subprocess.run([COLCON, "list", "--base-paths", "src"], cwd=ws, env=env, capture_output=True,
                           text=True, check=True).stdout
    assert "kairos_msgs" not in plain
    build = subprocess.run([COLCON, "build", "--base-paths", "src", "src/kairos_ros/kairos_msgs",
                            "--cmake-args", "-DBUILD_TESTING=OFF", f"-DPython3_EXECUTABLE={sys.executable}"],
                           cwd=ws, env=env, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    lib = ws / "install" / "kairos_ros" / "lib" / "kairos_ros"
    for exe in ("perception_node", "world_model_node", "adapter_node", "kairos-bringup", "kairos-play"):
        assert (lib / exe).is_file(), f"{exe} missing from {lib}"
    share = ws / "install" / "kairos_ros" / "share" / "kairos_ros"
    assert (share / "launch" / "bringup.launch.py").is_file()
    assert (share / "config" / "aloha.yaml").is_file()
    assert (share / "urdf_adapters" / "aloha" / "robot.urdf").is_file()
    assert (ws / "install" / "share" / "ament_index" / "resource_index" / "packages" / "kairos_ros").exists() or \
        (ws / "install" / "kairos_ros" / "share" / "ament_index" / "resource_index" / "packages" / "kairos_ros").exists()
    msgs = ws / "install" / "kairos_msgs"
    assert list(msgs.rglob("_observation.py")), "kairos_msgs Python interfaces were not generated"
