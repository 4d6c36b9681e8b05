"""The user's loop on a tiny configuration (issue 11): record demonstrations of a simulated task as
rosbag2, train kairos-nano on those bags for a few steps, and evaluate the result closed loop in
fast mode with a profile that points at the new weights. Sizes are cut down to keep CI fast; the
shipped weights come from the same commands at full size (README)."""
import json

import pytest
import torch
import yaml

from kairos_ros.tools.sim_cli import main as sim_main
from kairos_ros.train.cli import main as train_main

TINY_TRAIN = ["--codec-steps", "2", "--steps", "2", "--batch", "2", "--history-frames", "2", "--future-frames", "1",
              "--horizon", "8", "--threads", "2", "--no-progress", "--eval-samples", "1", "--eval-flow-steps", "1"]


def test_record_train_evaluate(tmp_path):
    demos = tmp_path / "demos"
    assert sim_main(["record", "--task", "aloha_transfer_cube", "--episodes", "2", "--seed", "2000",
                     "--image-size", "64x48", "--max-duration", "2.5", "--keep-failed", "--quiet", str(demos)]) == 0
    index = json.loads((demos / "index.json").read_text())
    assert len([e for e in index["episodes"] if e["kept"]]) == 2
    out = tmp_path / "weights"
    assert train_main([str(out), "--bags", str(demos), "--profile", "config/aloha.yaml", "--cache-dir",
                       str(tmp_path / "cache"), *TINY_TRAIN]) == 0
    record = json.loads((out / "train.json").read_text())
    assert record["source"] == "bags" and record["validation_episodes"] == 1
    # fine-tuning on: the codec kept as it is, the model trained on with start-of-episode windows
    tuned = tmp_path / "tuned"
    assert train_main([str(tuned), "--bags", str(demos), "--profile", "config/aloha.yaml", "--cache-dir",
                       str(tmp_path / "cache"), "--init-from", str(out), "--start-fraction", "0.5",
                       "--action-topic", "/joint_commands", *TINY_TRAIN]) == 0
    assert (tuned / "codec.safetensors").read_bytes() != b""
    from safetensors.torch import load_file
    before, after = load_file(str(out / "codec.safetensors")), load_file(str(tuned / "codec.safetensors"))
    assert all(torch.equal(before[k], after[k]) for k in before)
    first = load_file(str(out / "dit.safetensors"))
    assert any(not torch.equal(first[k], v) for k, v in load_file(str(tuned / "dit.safetensors")).items())
    args = json.loads((tuned / "train.json").read_text())["command"]
    assert "--init-from" in args and "--start-fraction 0.5" in args
    for bad in (["--start-fraction", "1.5"], ["--init-from", str(tmp_path / "nothing")]):
        with pytest.raises(SystemExit) as exit_info:
            train_main([str(tmp_path / "bad"), "--bags", str(demos), *bad, *TINY_TRAIN])
        assert exit_info.value.code == 2
    # a bringup profile for the new weights: the shipped one with the checkpoint paths and sizes changed
    profile = yaml.safe_load(open("config/aloha.yaml"))
    world = profile["world_model"]["ros__parameters"]
    world.update({"dit_checkpoint": str(out / "dit.safetensors"), "codec_checkpoint": str(out / "codec.safetensors"),
                  "text_checkpoint": str(out / "text.safetensors"), "history_frames": 2, "horizon": 8,
                  "flow_steps": 1})
    config = tmp_path / "profile.yaml"
    config.write_text(yaml.safe_dump(profile))
    report_dir = tmp_path / "eval"
    assert sim_main(["evaluate", "--task", "aloha_transfer_cube", "--backend", "hold,kairos", "--episodes", "1",
                     "--seed", "7", "--config", str(config), "--max-duration", "1.0", str(report_dir)]) == 0
    report = json.loads((report_dir / "report.json").read_text())
    assert set(report["backends"]) == {"hold", "kairos"}
    kairos = report["backends"]["kairos"]
    assert kairos["episodes"] == 1 and kairos["chunks"] >= 5 and kairos["latency_p50"] > 0
    assert (report_dir / "report.md").read_text().count("| kairos |") == 1
    assert (report_dir / "success.png").stat().st_size > 1000


def test_report_names_what_it_counts(tmp_path):
    """Fast mode counts executed chunks; live mode only the adapter's published trajectories (holds
    included), and its report must not call them executed chunks."""
    from kairos_ros.lib.sim.evaluate import write_report

    row = {"episodes": 2, "successes": 1, "success_rate": 0.5, "ci95": [0.1, 0.9], "mean_time_to_success": 5.0,
           "chunks": 80, "trajectories": 82, "refusals": {"velocity": 3}, "rejected_by_controller": 0,
           "latency_p50": 0.08, "latency_p99": 0.1, "mean_max_reward": 2.0}
    for mode in ("fast", "live"):
        out = tmp_path / mode
        out.mkdir()
        write_report(out, {"task": "aloha_transfer_cube", "mode": mode, "seeds": [0, 1], "profile": "p.yaml",
                           "backends": {"kairos": row}})
        text = (out / "report.md").read_text()
        assert "| 82/80 |" in text and "velocity 3" in text
        assert ("chunks executed" in text) == (mode == "fast")
        assert ("trajectories published / chunks" in text) == (mode == "live")
