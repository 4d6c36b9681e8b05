"""kairos-train --bags: a tiny run from recorded bags writes files the kairos backend loads,
--stop-after / --resume continue a run exactly, an existing output is protected, and bad bags
are refused, named, before training starts."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from kairos_ros.backends import make_backend
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.tools.make_bag import main as make_bag_main
from kairos_ros.train.cli import main as train_main

TINY = ["--tile-width", "32", "--tile-height", "32", "--codec-steps", "2", "--steps", "2", "--batch", "2",
        "--history-frames", "2", "--future-frames", "1", "--horizon", "8", "--threads", "2", "--no-progress",
        "--eval-samples", "1", "--eval-flow-steps", "1"]


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("bags")
    for i in range(3):
        assert make_bag_main([str(root / "good" / f"ep{i}"), "--embodiment", "single_arm", "--cameras", "1",
                              "--duration", "2.5", "--width", "64", "--height", "48", "--seed", str(300 + i)]) == 0
    return root


def _train(out, bags, *extra, cache=None):
    cache = cache or Path(out).parent / "cache"
    return train_main([str(out), "--bags", *map(str, bags), "--cache-dir", str(cache), *TINY, *extra])


def test_train_resume_and_load(tmp_path, bags, capsys):
    good = bags / "good"
    straight = tmp_path / "straight"
    assert _train(straight, [good]) == 0
    record = json.loads((straight / "train.json").read_text())
    assert record["source"] == "bags" and record["episodes"] == 2 and record["validation_episodes"] == 1
    assert len(record["data"]["bags"]) == 3 and record["data"]["split"]["validation"]
    assert "--bags" in record["command"] and record["machine"]["cpus"] and record["seconds"] > 0
    ev = record["evaluation"]
    assert ev["actions"]["samples"] >= 1 and np.isfinite(ev["actions"]["kairos_mae"])
    assert np.isfinite(ev["actions"]["hold_mae"]) and ev["codec"]["psnr_mean"] > 5
    assert (straight / "losses.png").stat().st_size > 1000
    assert len((straight / "losses.csv").read_text().splitlines()) == 1 + 2 + 2
    assert not (straight / "checkpoint.pt").exists()
    arm = load_embodiment("single_arm")
    paths = {f"{p}_checkpoint": str(straight / f"{p}.safetensors") for p in ("dit", "codec", "text")}
    b = make_backend("kairos", arm, temporal_mode="official", history_frames=2, image_width=32, image_height=32,
                     frame_period=0.1, flow_steps=1, **paths)
    assert b.random_parts == [] and b.state_velocity == 3
    # an interrupted run (--stop-after) continues to the very same weights
    split = tmp_path / "split"
    assert _train(split, [good], "--stop-after", "3", "--checkpoint-every", "1") == 0
    assert (split / "checkpoint.pt").is_file() and not (split / "dit.safetensors").exists()
    assert _train(split, [good]) == 2  # neither --resume nor --force
    assert "--resume" in capsys.readouterr().err
    assert _train(split, [good], "--steps", "3", "--resume") == 2  # not the checkpoint's settings
    assert "steps" in capsys.readouterr().err
    assert _train(split, [good], "--resume") == 0
    resumed = json.loads((split / "train.json").read_text())
    assert resumed["resumed"] and [r["from_step"] for r in resumed["runs"]] == [0, 3]
    for f in ("dit", "codec", "text"):
        a, c = load_file(str(straight / f"{f}.safetensors")), load_file(str(split / f"{f}.safetensors"))
        assert a.keys() == c.keys() and all(np.array_equal(a[k], c[k]) for k in a), f
    assert resumed["loss_curve"] == record["loss_curve"]
    assert _train(split, [good], "--resume") == 2  # finished: nothing to resume
    assert "finished" in capsys.readouterr().err


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_bad_bags_are_named_before_training(tmp_path, bags, capsys):
    good = bags / "good"
    cache = tmp_path / "cache"

    def refused(case, *extra, match):
        out = tmp_path / f"out-{case}"
        assert train_main([str(out), "--bags", *map(str, extra), "--cache-dir", str(cache), *TINY]) == 2, case
        err = capsys.readouterr().err
        assert all(m in err for m in match), (case, err)
        assert not out.exists() or not any(out.iterdir()), case  # nothing written: refused before training

    # a bag without joint states, one without cameras (the bag written without those topics)
    no_joints = tmp_path / "no_joints"
    no_cams = tmp_path / "no_cams"
    from rosbags.rosbag2 import Reader

    from kairos_ros.lib import bagio

    for dst, drop in ((no_joints, "/joint_states"), (no_cams, "/cameras/head/image_raw")):
        with Reader(good / "ep0") as r:
            w = bagio.open_writer(dst, "mcap")
            conns = {c.id: w.add_connection(c.topic, c.msgtype, typestore=bagio.typestore())
                     for c in r.connections if c.topic != drop}
            for c, t, raw in r.messages():
                if c.id in conns:
                    w.write(conns[c.id], t, raw)
            w.close()
    refused("joints", no_joints, match=[str(no_joints), "/joint_states"])
    refused("cameras", no_cams, "--profile", "none", match=[str(no_cams), "no sensor_msgs Image"])
    refused("profile-camera", no_cams, match=[str(no_cams), "/cameras/head/image_raw"])
    # truncated MCAP
    cut = _copy(good / "ep1", tmp_path / "cut")
    mcap = next(cut.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    refused("truncated", good / "ep0", cut, match=[str(cut), "truncated"])
    # too short for history + horizon
    short = tmp_path / "short"
    assert make_bag_main([str(short), "--embodiment", "single_arm", "--cameras", "1", "--duration", "0.5",
                          "--width", "64", "--height", "48", "--seed", "310"]) == 0
    refused("short", good / "ep0", short, match=[str(short), "shorter than history"])
    # other camera size / other joints than the first bag's
    big = tmp_path / "big"
    assert make_bag_main([str(big), "--embodiment", "single_arm", "--cameras", "1", "--duration", "2.5",
                          "--width", "96", "--height", "64", "--seed", "311"]) == 0
    refused("size", good / "ep0", big, match=[str(big), "96x64", "64x48"])
    refused("joints-mixed", good / "ep0", "test/fixtures/bags/hand_compressed_mcap", "--profile", "none",
            match=["hand_compressed_mcap", "embodiment 'shadow_hand'"])
