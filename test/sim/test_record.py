"""kairos-sim record: expert episodes as rosbag2 bags that kairos-eval reads unchanged."""
import json

import numpy as np
import pytest
import yaml

from kairos_ros.eval.cli import main as eval_main
from kairos_ros.lib import bagio
from kairos_ros.tools.sim_cli import main as sim_main

JOINTS = 16


def _read(bag):
    out = {}
    reader = bagio.open_reader(bag)
    try:
        for conn, stamp, raw in reader.messages():
            msg = reader.deserialize(raw, conn.msgtype)
            out.setdefault(conn.topic, []).append((stamp, msg))
    finally:
        reader.close()
    return out


def _custom(bag):
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    return json.loads(meta["custom_data"]["kairos.sim"])


def test_record_full_episode_and_evaluate(tmp_path, capsys):
    """One full, successful transfer-cube episode at the tile size (about 2 s), read back and
    evaluated by kairos-eval --backend hold."""
    out = tmp_path / "demos"
    rc = sim_main(["record", "--task", "aloha_transfer_cube", "--episodes", "1", "--seed", "1",
                   "--image-size", "64x48", "--quiet", str(out)])
    assert rc == 0
    index = json.loads((out / "index.json").read_text())
    assert index["task"] == "aloha_transfer_cube"
    [entry] = index["episodes"]
    assert entry["seed"] == 1 and entry["success"] and entry["kept"] and entry["frames"] == 81
    bag = out / entry["bag"]
    assert list(bag.glob("*.mcap"))
    custom = _custom(bag)
    assert custom["seed"] == 1 and custom["success"] is True and custom["task"] == "aloha_transfer_cube"

    topics = _read(bag)
    assert [m.data for _, m in topics["/instruction"]] == ["transfer the red cube to the other arm"]
    joints = topics["/joint_states"]
    assert len(joints) == 401  # t = 0 .. 8 s at 50 Hz
    stamps = np.array([s for s, _ in joints])
    assert np.all(np.diff(stamps) == 20_000_000)
    first = joints[0][1]
    assert len(first.name) == JOINTS and "vx300s_left_left_finger" in first.name
    assert len(first.position) == JOINTS and len(first.velocity) == JOINTS
    assert first.header.stamp.sec * 10**9 + first.header.stamp.nanosec == joints[0][0]
    for cam in ("head", "left_wrist", "right_wrist"):
        frames = topics[f"/cameras/{cam}/image_raw"]
        assert len(frames) == 81
        img = frames[0][1]
        assert (img.width, img.height, img.encoding, img.step) == (64, 48, "rgb8", 64 * 3)
        assert np.asarray(img.data).reshape(48, 64, 3).std() > 10
        assert np.all(np.diff([s for s, _ in frames]) == 100_000_000)
    assert [m.data for _, m in topics["/kairos/sim/success"]] == [True]
    assert len(topics["/joint_commands"]) == 400

    report = tmp_path / "eval"
    rc = eval_main([str(bag), "--backend", "hold", "--out", str(report), "--quiet", "--max-steps", "5"])
    assert rc == 0
    summary = json.loads((report / "report.json").read_text())
    assert summary["config"]["embodiment"] == "aloha"
    assert summary["counts"]["predictions"] > 0


def test_failed_episodes_dropped_unless_kept_and_no_overwrite(tmp_path, capsys):
    """1 s episodes cannot succeed: dropped by default, kept with --keep-failed; an existing
    episode is not overwritten without --force."""
    out = tmp_path / "short"
    args = ["record", "--task", "aloha_insertion", "--episodes", "1", "--seed", "5", "--max-duration", "1",
            "--image-size", "32x24", "--max-attempts", "2", "--quiet", str(out)]
    assert sim_main(args) == 1  # no success within 1 s: nothing kept
    index = json.loads((out / "index.json").read_text())
    assert [(e["seed"], e["success"], e["kept"]) for e in index["episodes"]] == [(5, False, False), (6, False, False)]
    assert not (out / "episode_000005").exists()

    assert sim_main(args + ["--keep-failed"]) == 0
    bag = out / "episode_000005"
    assert bag.is_dir() and _custom(bag)["success"] is False
    topics = _read(bag)
    assert len(topics["/joint_states"]) == 51 and len(topics["/cameras/head/image_raw"]) == 11
    assert [m.data for _, m in topics["/kairos/sim/success"]] == [False]
    assert "insert" in topics["/instruction"][0][1].data
    before = (bag / "metadata.yaml").read_text()

    capsys.readouterr()
    assert sim_main(args + ["--keep-failed"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (bag / "metadata.yaml").read_text() == before
    assert sim_main(args + ["--keep-failed", "--force"]) == 0
    # same seed, same episode: identical joint states
    again = _read(bag)
    assert [list(m.position) for _, m in again["/joint_states"]] == [list(m.position) for _, m in topics["/joint_states"]]


@pytest.mark.parametrize("bad", [["--image-size", "64"], ["--camera-rate", "7"], ["--task", "nope"],
                                 ["--episodes", "0"], ["--action-noise", "0.5"], ["--action-noise", "-0.01"],
                                 ["--noise-period", "0"]])
def test_bad_arguments(tmp_path, bad, capsys):
    args = ["record", "--task", "aloha_transfer_cube", "--max-duration", "0.1", "--quiet", str(tmp_path / "x")]
    args = args[:1] + bad + args[1:] if bad[0] != "--task" else ["record"] + bad + args[3:]
    with pytest.raises(SystemExit) as exc:
        rc = sim_main(args)
        raise SystemExit(rc)
    assert exc.value.code == 2


def test_simulated_cameras_have_one_size():
    """The sim node's default image size, kairos-sim record's and fast evaluation's are one value
    (lib.sim.base.CAMERA_SIZE): a model trained on recordings sees the same frames live."""
    from kairos_ros.lib.sim.base import CAMERA_SIZE
    from kairos_ros.lib.sim.record import RecordOptions
    from kairos_ros.params.sim import SCHEMA

    defaults = {p.name: p.default for p in SCHEMA}
    assert (defaults["image_width"], defaults["image_height"]) == CAMERA_SIZE
    assert (RecordOptions().width, RecordOptions().height) == CAMERA_SIZE


def test_execution_offsets_smooth_bounded_and_seeded():
    from kairos_ros.lib.sim.record import execution_offsets

    lower, upper = np.array([-3.0, -1.0, 0.02]), np.array([3.0, 1.0, 0.06])
    off = execution_offsets(lower, upper, 400, 0.02, 0.01, 0.5, seed=7)
    assert off.shape == (401, 3)
    assert np.all(off[0] == 0)
    sigma = 0.01 * (upper - lower)
    assert np.all(np.abs(off) <= 2 * sigma + 1e-12)
    assert np.all(off.std(axis=0) > 0.2 * sigma)  # it does perturb every joint, in proportion to its range
    # cosine joins between knots 0.5 s apart: no step larger than the knot swing x pi / (2 x 25 steps)
    assert np.all(np.abs(np.diff(off, axis=0)) <= 4 * sigma * np.pi / 50 + 1e-12)
    assert np.array_equal(off, execution_offsets(lower, upper, 400, 0.02, 0.01, 0.5, seed=7))
    assert not np.array_equal(off, execution_offsets(lower, upper, 400, 0.02, 0.01, 0.5, seed=8))
    # some knots are zero: the arm goes back to the expert's path between excursions
    knots = off[::25]
    assert np.any(np.all(knots == 0, axis=1)[1:])


def test_perturbed_demonstration_keeps_the_expert_targets(tmp_path):
    """--action-noise: the robot executes the expert's targets plus an offset; /joint_commands keeps
    the expert's targets (the same as an unperturbed recording of the seed) and the executed ones
    are on their own topic."""
    base = ["record", "--task", "aloha_transfer_cube", "--episodes", "1", "--seed", "3", "--max-duration", "1.5",
            "--image-size", "32x24", "--keep-failed", "--quiet"]
    assert sim_main(base + [str(tmp_path / "clean")]) == 0
    assert sim_main(base + ["--action-noise", "0.01", str(tmp_path / "noisy")]) == 0
    clean = _read(tmp_path / "clean" / "episode_000003")
    noisy = _read(tmp_path / "noisy" / "episode_000003")
    assert "/kairos/sim/executed_commands" not in clean
    cmd = lambda topics, name: np.array([m.position for _, m in topics[name]])  # noqa: E731
    assert np.allclose(cmd(noisy, "/joint_commands"), cmd(clean, "/joint_commands"))
    executed = cmd(noisy, "/kairos/sim/executed_commands")
    assert executed.shape == cmd(noisy, "/joint_commands").shape
    gap = np.abs(executed - cmd(noisy, "/joint_commands")).max(axis=0)
    assert gap[0] > 1e-3  # the waist was pushed off the expert's path
    states = cmd(noisy, "/joint_states")
    assert np.abs(states - cmd(clean, "/joint_states")).max() > 1e-3  # and the robot followed it
    custom = _custom(tmp_path / "noisy" / "episode_000003")
    assert custom["action_noise"] == 0.01 and custom["noise_period"] == 0.5

