"""scripts/train_default_model.sh: the recipe of the bundled weights runs its stages in order, skips
finished ones and resumes an interrupted training stage. The real stages take hours (the model
card's figures), so kairos-sim and kairos-train are replaced here by stand-ins that log their
arguments and leave the files the real ones leave: the stage logic is what is tested, the tools
themselves have their own tests."""
import os
import stat
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "train_default_model.sh"

SIM = """#!/bin/bash
echo "sim $*" >> "$LOG"; out="${@: -1}"; mkdir -p "$out"
"""
TRAIN = """#!/bin/bash
echo "train $*" >> "$LOG"; mkdir -p "$1"
if [ -n "$FAIL_IN" ] && [ "$(basename "$1")" = "$FAIL_IN" ]; then touch "$1/checkpoint.pt"; exit 3; fi
rm -f "$1/checkpoint.pt"; echo '{}' > "$1/train.json"
"""


def _run(tmp_path, fail_in=""):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    for name, text in (("kairos-sim", SIM), ("kairos-train", TRAIN)):
        path = venv / "bin" / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "log"
    log.write_text("")
    env = {**os.environ, "VENV": str(venv), "LOG": str(log), "FAIL_IN": fail_in}
    res = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "work")], env=env, capture_output=True, text=True,
                         timeout=60)
    return res.returncode, log.read_text().splitlines()


def test_stages_in_order_then_skipped(tmp_path):
    rc, calls = _run(tmp_path)
    assert rc == 0
    assert [c.split()[0] + " " + c.split()[1 if c.startswith("train") else 7] for c in calls] == [
        f"sim {w}" for w in ("1000", "1200", "30000")] + [f"train {tmp_path}/work/{n}" for n in ("tc2", "tc3", "tc4")]
    dart = [c for c in calls if "30000" in c][0]
    assert "--action-noise 0.006" in dart
    tc4 = [c for c in calls if "/tc4" in c][0]
    assert f"--init-from {tmp_path}/work/tc3" in tc4 and "demos/dart" in tc4 and "--resume" not in tc4
    assert all("--profile config/aloha.yaml" in c and "--action-topic /joint_commands" in c
               for c in calls if c.startswith("train"))
    rc, again = _run(tmp_path)
    assert rc == 0 and again == []  # everything was finished: nothing runs twice


def test_interrupted_stage_resumes(tmp_path):
    rc, calls = _run(tmp_path, fail_in="tc3")
    assert rc == 3 and calls[-1].startswith(f"train {tmp_path}/work/tc3")
    rc, calls = _run(tmp_path)
    assert rc == 0
    assert [c.split()[1] for c in calls] == [f"{tmp_path}/work/tc3", f"{tmp_path}/work/tc4"]
    assert calls[0].endswith("--resume") and not calls[1].endswith("--resume")
