"""kairos-bench live runs the shipped profile on a held-out recording in process and through the real
world-model node and writes its figures (the speed targets are read from its output, never
asserted here)."""
import json
import subprocess
import sys


def test_bench_live_writes_json(tmp_path):
    res = subprocess.run([sys.executable, "-m", "kairos_ros.tools.bench", "live", "--bags", "data/demo_transfer_cube",
                          "--max-observations", "25", "--out", str(tmp_path)], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    data = json.loads((tmp_path / "live.json").read_text())
    part = data["in_process"]
    assert {"composition", "encode", "history", "sample", "output", "message", "frame_sampling",
            "decode"} <= set(part["stages"])
    assert part["stages"]["sample"]["count"] == 25 and part["bare_sampler"]["count"] == 25 and part["frame_jobs"] >= 1
    node = data["node"]
    assert node["chunks"] >= 5 and node["observation_to_chunk"]["count"] >= 1, node  # how many: speed, not asserted
    assert any(k.startswith("stage.sample.") for k in node["node_diagnostics"]), node["node_diagnostics"]
    assert len(data["machine"]["loadavg"]["before"]) == 3
    assert "bare sampler" in res.stdout and "Observation publish -> ActionChunk" in res.stdout
