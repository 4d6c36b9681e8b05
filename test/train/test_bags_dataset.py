"""lib.dataset: a bag decodes once through the perception code into the observations kairos-eval
replays, and a second load comes from the cache."""
from __future__ import annotations

import numpy as np
import pytest

from kairos_ros.eval.offline import evaluate_bag
from kairos_ros.lib.dataset import (DatasetError, DecodeSettings, Episode, find_bags, load_bag, settings_from_profile,
                                    split_episodes)
from kairos_ros.train.data import sample_batch

FIXTURES = "test/fixtures/bags"


@pytest.mark.parametrize("name", ["dual_arm_sqlite3", "hand_compressed_mcap"])
def test_episode_is_what_kairos_eval_observes(tmp_path, monkeypatch, name):
    import kairos_ros.eval.offline as offline

    bag = f"{FIXTURES}/{name}"
    settings = DecodeSettings(tile_width=32, tile_height=32)
    first = load_bag(bag, settings, tmp_path)
    assert not first.cached and len(first.episodes) == 1
    ep = first.episodes[0]
    assert isinstance(ep, Episode) and ep.frames.dtype == np.uint8 and ep.frames.ndim == 4
    assert ep.instruction == "pick up the red block and place it in the blue bowl"  # the bag's /instruction
    seen = []
    real = offline.FrameMatcher.observe
    monkeypatch.setattr(offline.FrameMatcher, "observe",
                        lambda self, stamp, frame: (seen.append((stamp, frame.copy())), real(self, stamp, frame))[1])
    evaluate_bag(bag, "hold", tile_width=32, tile_height=32, horizon=2)
    assert len(seen) == len(ep.frames) > 20
    assert np.allclose([s for s, _ in seen], ep.stamps)
    assert all(np.array_equal(f, g) for (_, f), g in zip(seen, ep.frames))
    # the state at each frame: the recorded joint states (interpolated), close to the synchronised ones
    assert ep.observed_slots.shape == (len(ep.frames), ep.spec.dim)
    assert np.abs(ep.slots(ep.times) - ep.observed_slots).max() < 0.1
    again = load_bag(bag, settings, tmp_path)
    assert again.cached and np.array_equal(again.episodes[0].frames, ep.frames)
    assert np.array_equal(again.episodes[0].slots(ep.times[:5] + 0.013), ep.slots(ep.times[:5] + 0.013))
    assert len(list(tmp_path.glob("*.npz"))) == 1
    other = load_bag(bag, DecodeSettings(tile_width=48, tile_height=32), tmp_path)  # settings are in the key
    assert not other.cached and other.episodes[0].frames.shape[2] == ep.frames.shape[2] * 3 // 2
    b = sample_batch([ep], np.random.default_rng(0), 4, history=2, horizon=4, step_period=0.05, future_frames=1,
                     state_velocity=3)
    assert b.history.shape[1:] == (2,) + ep.frames.shape[1:] and b.actions.shape == (4, 4, ep.spec.dim)


def test_profile_settings_and_bag_discovery(tmp_path):
    s = settings_from_profile("config/aloha.yaml", tile_width=32)
    assert s.camera_topics == ["/cameras/head/image_raw", "/cameras/left_wrist/image_raw",
                               "/cameras/right_wrist/image_raw"]
    assert (s.layout, s.tile_width, s.tile_height, s.rate) == ("robotwin", 32, 48, 10.0)
    assert s.instruction == "transfer the red cube to the other arm"  # the profile's world_model.instruction
    assert [b.name for b in find_bags([FIXTURES])] == ["dual_arm_sqlite3", "hand_compressed_mcap", "single_arm_mcap"]
    assert [b.name for b in find_bags(["data/demo_dual_arm/demo_dual_arm.mcap"])] == ["demo_dual_arm"]
    with pytest.raises(DatasetError, match="neither a rosbag2 folder"):
        find_bags([tmp_path])
    ep = load_bag("data/demo_dual_arm", s, None).episodes[0]  # the profile's three cameras, robotwin
    assert ep.frames.shape[1:] == (144, 64, 3) and ep.cfg.camera_names == ("head", "left_wrist", "right_wrist")
    assert split_episodes(1, 0.1, 0) == ([0], [])
    train, val = split_episodes(10, 0.1, 3)
    assert len(val) == 1 and sorted(train + val) == list(range(10)) and split_episodes(10, 0.1, 3) == (train, val)


def test_action_topic_gives_the_chunk_labels(tmp_path):
    """--action-topic: the chunk rows come from the commanded positions (/joint_commands of a
    simulator recording), the state from /joint_states; both survive the cache; a topic that is
    missing or not JointState is refused naming the bag."""
    from kairos_ros.core.embodiment import state_to_slots
    from kairos_ros.lib import bagio
    from kairos_ros.lib.bagsource import load_joint_series
    from kairos_ros.tools.sim_cli import main as sim_main

    demos = tmp_path / "demos"
    assert sim_main(["record", "--task", "aloha_transfer_cube", "--episodes", "1", "--seed", "3", "--image-size",
                     "64x48", "--max-duration", "2.0", "--keep-failed", "--quiet", str(demos)]) == 0
    [bag] = find_bags([demos])
    base = settings_from_profile("config/aloha.yaml", tile_width=32, tile_height=32)
    states = load_bag(bag, base, tmp_path).episodes[0]
    settings = settings_from_profile("config/aloha.yaml", tile_width=32, tile_height=32, action_topic="/joint_commands")
    ep = load_bag(bag, settings, tmp_path).episodes[0]
    reader = bagio.open_reader(bag)
    try:
        commands = load_joint_series(reader, "/joint_commands", list(ep.spec.joint_names), list(ep.spec.ignore_joints),
                                     ep.spec.name)
    finally:
        reader.close()
    stamps, positions = np.asarray(commands.stamps), np.asarray(commands.positions)
    t = stamps[10:30] - ep.stamps[0]  # on the command stamps: no interpolation
    assert np.allclose(ep.action_slots(t), state_to_slots(ep.spec, positions[10:30]), atol=1e-6)
    assert np.array_equal(ep.slots(t), states.slots(t))  # the state is still the measured one
    assert np.abs(ep.action_slots(t) - ep.slots(t)).max() > 1e-3  # the commands lead the states
    assert np.array_equal(states.action_slots(t), states.slots(t))  # no action topic: the states
    again = load_bag(bag, settings, tmp_path)
    assert again.cached and np.array_equal(again.episodes[0].action_slots(t), ep.action_slots(t))
    b = sample_batch([ep], np.random.default_rng(0), 3, history=2, horizon=4, step_period=0.05)
    for row, (n, acts) in enumerate(zip(b.index, b.actions)):
        assert np.allclose(acts, ep.action_slots(ep.times[n] + 0.05 * np.arange(1, 5)))
    # --start-fraction: windows at the episode's start, the history padded with the first frame and
    # the velocity fitted over the held first state (zero), as the backend pads a short history
    b = sample_batch([ep], np.random.default_rng(1), 40, history=4, horizon=4, step_period=0.05, state_velocity=3,
                     start_fraction=1.0)
    assert set(b.index) == {0, 1, 2, 3}
    for n, frames, vel in zip(b.index, b.history, b.velocity):
        want = [ep.frames[max(k, 0)] for k in range(n - 3, n + 1)]
        assert all(np.array_equal(f, w) for f, w in zip(frames, want))
        if n == 0:
            assert np.abs(vel).max() < 1e-9
    assert min(sample_batch([ep], np.random.default_rng(1), 40, history=4, horizon=4, step_period=0.05,
                            state_velocity=3).index) >= 3  # default: full histories only
    for topic, words in [("/nope", "action topic '/nope' is not in the bag"),
                         ("/instruction", "must hold sensor_msgs/msg/JointState")]:
        with pytest.raises(DatasetError, match=words) as info:
            load_bag(bag, settings_from_profile("config/aloha.yaml", action_topic=topic), None)
        assert str(bag) in str(info.value)
