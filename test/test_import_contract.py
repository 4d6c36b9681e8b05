"""The import contracts (.importlinter, docs/architecture.md) hold, and they fail on what they forbid:
lint-imports runs on a copy of the package, once as it is and once with upward and sideways imports,
an rclpy import and an import cycle added."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}  # this copy of kairos_ros, not the installed one
    return subprocess.run([str(LINT), "--config", str(root / ".importlinter"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def copy_package(dst: Path) -> Path:
    shutil.copytree(REPO / "kairos_ros", dst / "kairos_ros", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(REPO / ".importlinter", dst / ".importlinter")
    return dst


def append(path: Path, line: str) -> None:
    with open(path, "a") as f:
        f.write(f"\n{line}\n")


def test_contracts_hold_and_catch_upward_rclpy_and_cyclic_imports(tmp_path):
    root = copy_package(tmp_path)
    clean = lint(root)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Contracts: 3 kept, 0 broken." in clean.stdout

    append(root / "kairos_ros" / "core" / "stamps.py", "import kairos_ros.nodes.common  # upward: core -> nodes")
    append(root / "kairos_ros" / "lib" / "bagio.py", "from kairos_ros.eval import report  # upward: lib -> eval")
    append(root / "kairos_ros" / "train" / "data.py", "import kairos_ros.eval.report  # sideways: train -> eval")
    append(root / "kairos_ros" / "params" / "sim.py", "import rclpy  # rclpy below the nodes")
    (root / "kairos_ros" / "core" / "cycle_a.py").write_text("import kairos_ros.core.cycle_b\n")
    (root / "kairos_ros" / "core" / "cycle_b.py").write_text("import kairos_ros.core.cycle_a\n")
    broken = lint(root)
    out = broken.stdout + broken.stderr
    assert broken.returncode != 0, out
    assert "kairos_ros.core is not allowed to import kairos_ros.nodes" in out, out
    assert "kairos_ros.lib is not allowed to import kairos_ros.eval" in out, out
    assert "kairos_ros.train is not allowed to import kairos_ros.eval" in out, out
    assert "kairos_ros.params.sim -> rclpy" in out, out
    assert "No cycles are allowed in kairos_ros.core" in out, out
    assert "Contracts: 0 kept, 3 broken." in out, out
