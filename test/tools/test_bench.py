"""The benchmark commands run and write their figures (speed targets are read from their output,
never asserted here)."""
import json
import subprocess
import sys


def test_bench_adapter_writes_json(tmp_path):
    res = subprocess.run([sys.executable, "-m", "kairos_ros.tools.bench", "adapter", "--iterations", "30",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    data = json.loads((tmp_path / "adapter.json").read_text())
    assert set(data["embodiments"]) >= {"franka_panda", "aloha", "shadow_hand"}
    assert all(r["count"] == 30 and r["p50"] > 0 for r in data["embodiments"].values())
    assert "shadow_hand" in res.stdout and "p99" in res.stdout


def test_bench_pipeline_writes_json(tmp_path):
    res = subprocess.run([sys.executable, "-m", "kairos_ros.tools.bench", "pipeline", "--seconds", "3",
                          "--iterations", "20", "--out", str(tmp_path)], capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads((tmp_path / "pipeline.json").read_text())
    assert data["conversion"]["count"] == 20
    assert data["matched"] > 10, f"only {data['matched']} camera sets reached a trajectory"
    assert "camera stamp -> JointTrajectory publish" in res.stdout
    # The echo node answered (most of) the 100 reference pings: the bare-hop floor is in the report.
    assert data["bare_hop"]["count"] > 80 and data["bare_hop"]["p50"] > 0
    assert "bare rclpy hop" in res.stdout


def test_bench_model_writes_json(tmp_path):
    res = subprocess.run([sys.executable, "-m", "kairos_ros.tools.bench", "model", "--repeat", "2", "--lengths", "2",
                          "4", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads((tmp_path / "model.json").read_text())
    assert data["size_4b"]["video_params"] == 4_046_680_960 and data["size_4b"]["action_params"] == 955_849_742
    assert set(data["streaming"]) == {"2", "4"} and data["nano"]["chunk"]["count"] == 8
    assert "nano action chunk" in res.stdout
