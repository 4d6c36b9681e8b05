"""kairos-make-bag: deterministic, readable in both storages, joints within limits, sane stamps."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.lib import bagio
from kairos_ros.lib.synthetic_bag import make_bag
from kairos_ros.tools.make_bag import main, parse_args

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bags"
DEMO = Path(__file__).resolve().parents[2] / "data" / "demo_dual_arm"
SMALL = ["--duration", "1", "--width", "32", "--height", "24", "--seed", "5"]


def read_all(path):
    """[(topic, log_ns, raw bytes, message)] in log-time order."""
    reader = bagio.open_reader(path)
    try:
        return [(c.topic, t, bytes(raw), reader.deserialize(raw, c.msgtype)) for c, t, raw in reader.messages()]
    finally:
        reader.close()


def generate(folder: Path, *extra) -> list:
    assert main([str(folder), *SMALL, *extra]) == 0
    return read_all(folder)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_same_arguments_give_identical_payloads(tmp_path, storage):
    args = ["--storage", storage, "--embodiment", "dual_arm", "--cameras", "3", "--bgr8-camera", "left_wrist",
            "--compressed-camera", "right_wrist"]
    first = generate(tmp_path / "a" / "bag", *args)
    second = generate(tmp_path / "b" / "bag", *args)
    assert [(t, ns, raw) for t, ns, raw, _ in first] == [(t, ns, raw) for t, ns, raw, _ in second]
    other_seed = read_all(tmp_path / "c") if main([str(tmp_path / "c"), *SMALL[:-1], "6", *args]) == 0 else []
    assert [raw for *_x, raw, _ in first] != [raw for *_x, raw, _ in other_seed]
    if storage == "mcap":  # no wall-clock time anywhere: the whole file is reproducible
        assert (tmp_path / "a/bag/bag.mcap").read_bytes() == (tmp_path / "b/bag/bag.mcap").read_bytes()


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_contents_read_back(tmp_path, storage):
    from PIL import Image as PILImage

    msgs = generate(tmp_path / "bag", "--storage", storage, "--embodiment", "dual_arm", "--cameras", "3",
                    "--bgr8-camera", "left_wrist", "--compressed-camera", "right_wrist", "--compressed-format", "png")
    topics = {}
    for topic, _ns, _raw, msg in msgs:
        topics.setdefault(topic, []).append(msg)
    assert sorted(topics) == ["/cameras/head/image_raw", "/cameras/left_wrist/image_raw",
                              "/cameras/right_wrist/image_raw/compressed", "/instruction", "/joint_commands",
                              "/joint_states"]
    assert len(topics["/instruction"]) == 1 and topics["/instruction"][0].data
    assert len(topics["/joint_states"]) == 50 and len(topics["/cameras/head/image_raw"]) == 10
    head, wrist = topics["/cameras/head/image_raw"][0], topics["/cameras/left_wrist/image_raw"][0]
    assert (head.encoding, head.width, head.height, head.step) == ("rgb8", 32, 24, 96)
    assert wrist.encoding == "bgr8"
    comp = topics["/cameras/right_wrist/image_raw/compressed"][0]
    assert "png" in comp.format
    assert np.asarray(PILImage.open(io.BytesIO(bytes(comp.data)))).shape == (24, 32, 3)
    spec = load_embodiment("dual_arm")
    names = list(spec.joint_names)
    assert names[:2] == ["vx300s_left_waist", "vx300s_left_shoulder"]
    assert all(list(m.name) == names for m in topics["/joint_commands"])
    assert all(list(m.name) == names + list(spec.ignore_joints) for m in topics["/joint_states"])


@pytest.mark.parametrize("embodiment,follower,master,multiplier", [
    ("single_arm", "robot_panda0_finger_joint2", "robot_panda0_finger_joint1", 1.0),
    ("aloha", "vx300s_right_right_finger", "vx300s_right_left_finger", -1.0),  # the mirrored finger
    ("shadow_hand", "robot0_FFJ0", "robot0_FFJ1", 0.00805 / 0.00705),  # the tendon coupling
])
def test_ignored_joints_are_published_as_urdf_mimics(tmp_path, embodiment, follower, master, multiplier):
    spec = load_embodiment(embodiment)
    msgs = generate(tmp_path / "bag", "--embodiment", embodiment, "--cameras", "1")
    state = next(m for t, _n, _r, m in msgs if t == "/joint_states")
    command = next(m for t, _n, _r, m in msgs if t == "/joint_commands")
    assert list(state.name) == list(spec.joint_names) + list(spec.ignore_joints)
    assert list(command.name) == list(spec.joint_names)
    names = list(state.name)
    f, m = names.index(follower), names.index(master)
    assert state.position[f] == pytest.approx(multiplier * state.position[m], rel=1e-6)
    assert state.velocity[f] == pytest.approx(multiplier * state.velocity[m], rel=1e-6)


def test_robot_names_and_aliases_give_the_same_bag(tmp_path):
    by_alias = generate(tmp_path / "a", "--embodiment", "dexterous_hand", "--cameras", "1")
    by_name = generate(tmp_path / "b", "--embodiment", "shadow_hand", "--cameras", "1")
    assert [(t, ns, raw) for t, ns, raw, _ in by_alias] == [(t, ns, raw) for t, ns, raw, _ in by_name]


@pytest.mark.parametrize("embodiment", ["franka_panda", "aloha", "dexterous_hand"])
def test_joints_within_limits_and_commands_lead(tmp_path, embodiment):
    spec = load_embodiment(embodiment)
    msgs = generate(tmp_path / "bag", "--embodiment", embodiment, "--cameras", "1", "--command-lead", "0.1")
    n = len(spec.joint_names)
    states = np.stack([m.position[:n] for t, _n, _r, m in msgs if t == "/joint_states"])
    commands = np.stack([m.position for t, _n, _r, m in msgs if t == "/joint_commands"])
    velocities = np.stack([m.velocity[:n] for t, _n, _r, m in msgs if t == "/joint_states"])
    lower, upper = np.asarray(spec.lower, dtype=float), np.asarray(spec.upper, dtype=float)
    for arr in (states, commands):
        assert np.all(arr >= np.where(np.isfinite(lower), lower, -np.inf))
        assert np.all(arr <= np.where(np.isfinite(upper), upper, np.inf))
    assert np.all(np.ptp(states, axis=0) > 0)  # every joint moves
    np.testing.assert_allclose(commands[:-5], states[5:], atol=1e-12)  # 0.1 s lead = 5 samples at 50 Hz
    finite_diff = np.diff(states, axis=0) * 50.0
    np.testing.assert_allclose(finite_diff, 0.5 * (velocities[1:] + velocities[:-1]), atol=0.02)
    # the synthetic robot moves as the real one could: within half its velocity and acceleration limits
    assert np.all(np.abs(velocities) <= 0.5 * spec.max_velocity + 1e-9)
    accel = np.diff(velocities, axis=0) * 50.0
    assert np.all(np.abs(accel) <= 0.5 * spec.max_acceleration * 1.01)


@pytest.mark.parametrize("bag", [FIXTURES / "single_arm_mcap", FIXTURES / "dual_arm_sqlite3",
                                 FIXTURES / "hand_compressed_mcap", DEMO])
def test_committed_bags_are_reproducible_and_sane(tmp_path, bag):
    meta = (bag / "metadata.yaml").read_text()
    assert "version: 8" in meta
    committed = read_all(bag)
    stamps = [ns for _t, ns, _r, _m in committed]
    assert stamps == sorted(stamps)
    for topic, ns, _raw, msg in committed:
        if hasattr(msg, "header"):
            assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == ns, topic
    assert sum(p.stat().st_size for p in bag.iterdir()) < 2 * 1024 * 1024
    info = yaml.safe_load(meta)["rosbag2_bagfile_information"]
    recorded = json.loads(info["custom_data"]["kairos.make_bag"])
    args = parse_args([str(tmp_path / bag.name)])
    vars(args).update(recorded)
    make_bag(args)
    fresh = read_all(tmp_path / bag.name)
    assert [(t, ns) for t, ns, _r, _m in fresh] == [(t, ns) for t, ns, _r, _m in committed]
    # Byte-identical on the machine that wrote them; elsewhere another numpy (SIMD sin) or
    # libjpeg may differ in the last bit, so the golden comparison allows for that.
    for (_t, _ns, raw, new), (topic, _ns2, old_raw, old) in zip(fresh, committed):
        if raw != old_raw:
            assert_same_content(topic, new, old)


def decoded(msg) -> np.ndarray:
    from PIL import Image as PILImage

    if hasattr(msg, "format"):
        return np.asarray(PILImage.open(io.BytesIO(bytes(msg.data))).convert("RGB"), dtype=np.float64)
    return np.asarray(msg.data, dtype=np.float64).reshape(msg.height, msg.width, 3)


def assert_same_content(topic: str, new, old) -> None:
    if hasattr(new, "position"):
        assert list(new.name) == list(old.name), topic
        np.testing.assert_allclose(new.position, old.position, atol=1e-9, err_msg=topic)
        np.testing.assert_allclose(new.velocity, old.velocity, atol=1e-9, err_msg=topic)
    elif hasattr(new, "data") and hasattr(new, "header"):
        assert getattr(new, "encoding", None) == getattr(old, "encoding", None), topic
        assert np.mean(np.abs(decoded(new) - decoded(old))) < 1.0, topic
    else:
        assert new == old, topic


def test_bad_arguments_exit_2(tmp_path, capsys):
    for argv, needle in ((["--cameras", "4"], "--cameras 4"),
                         (["--bgr8-camera", "nose"], "nose"),
                         (["--duration", "0"], "--duration 0")):
        with pytest.raises(SystemExit) as exc:
            main([str(tmp_path / "x"), *argv])
        assert exc.value.code == 2
        assert needle in capsys.readouterr().err
    assert main([str(tmp_path / "y"), "--embodiment", "octopus", *SMALL]) == 2
    assert "octopus" in capsys.readouterr().err
    (tmp_path / "z").mkdir()
    assert main([str(tmp_path / "z"), *SMALL]) == 2
    assert "exists" in capsys.readouterr().err
