"""kairos-train: episodes are what the perception node would publish from the project's bags, the
codec learns, and the written checkpoint loads through the kairos backend with the settings it
was trained for (and only with those)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kairos_ros.backends import make_backend
from kairos_ros.core.embodiment import load_embodiment
from kairos_ros.core.types import JointStateData, ObservationData
from kairos_ros.eval.offline import evaluate_bag
from kairos_ros.tools.make_bag import main as make_bag_main
from kairos_ros.train.cli import main as train_main
from kairos_ros.train.data import Episode, EpisodeConfig, sample_batch, slot_statistics
from kairos_ros.train.loop import TrainConfig, to_pixels, train_codec

CAMS = ("head", "left_wrist", "right_wrist")


@pytest.fixture(scope="module")
def arm():
    return load_embodiment("single_arm")


def test_episode_frames_are_the_perception_pipelines(tmp_path, arm, monkeypatch):
    """A bag recorded with the same seed, replayed through the perception pipeline: the composed
    observations equal the episode's frames (cameras fire 2 ms apart in the bag, so allow a grey level)."""
    bag = tmp_path / "bag"
    assert make_bag_main([str(bag), "--embodiment", "single_arm", "--cameras", "3", "--duration", "2",
                          "--seed", "1234", "--width", "128", "--height", "96"]) == 0
    seen = []
    import kairos_ros.eval.offline as offline

    real = offline.FrameMatcher.observe
    monkeypatch.setattr(offline.FrameMatcher, "observe",
                        lambda self, stamp, frame: (seen.append((stamp, frame)), real(self, stamp, frame))[1])
    evaluate_bag(bag, "hold", layout="robotwin", tile_width=64, tile_height=48, horizon=2)
    ep = Episode(arm, EpisodeConfig(CAMS, "robotwin", 64, 48, duration=2.0), 1234)
    start = 1700000000.0  # kairos-make-bag's default --start-time
    assert len(seen) > 10
    for stamp, frame in seen:
        n = int(round((stamp - start) * 10))
        if n < len(ep.frames):
            assert np.abs(frame.astype(int) - ep.frames[n].astype(int)).mean() < 1.0, n


def test_batches_fit_their_episodes(arm):
    ep = Episode(arm, EpisodeConfig(("head",), "single", 32, 32, duration=4.0), 1001)
    b = sample_batch([ep], np.random.default_rng(0), 16, history=3, horizon=8, step_period=0.05, future_frames=2)
    assert b.history.shape == (16, 3, 32, 32, 3) and b.future.shape == (16, 2, 32, 32, 3)
    assert b.state.shape == (16, arm.dim) and b.actions.shape == (16, 8, arm.dim)
    n = b.index[0]
    assert np.array_equal(b.history[0, -1], ep.frames[n]) and np.array_equal(b.future[0, 0], ep.frames[n + 1])
    assert np.allclose(b.actions[0, 0], ep.slots([ep.times[n] + 0.05])[0])
    stats = slot_statistics([ep], horizon=8, step_period=0.05)
    assert len(stats["action/default/global_mean"]) == arm.dim and min(stats["state/default/global_std"]) > 0
    absolute = slot_statistics([ep], horizon=8, step_period=0.05, relative=False)
    # offsets over 0.4 s vary far less than the positions themselves
    assert np.all(np.array(stats["action/default/global_std"]) < np.array(absolute["action/default/global_std"]))
    with pytest.raises(ValueError, match="too short"):
        sample_batch([ep], np.random.default_rng(0), 1, history=30, horizon=32, step_period=0.5)


def test_state_velocity_is_the_backends_fit_over_camera_frames(arm):
    """Training velocities are what the backend fits over its observation history: the least-squares
    slope of the states at the last N camera frames (here checked against the motion's derivative,
    which a 3-frame fit over 0.2 s follows closely on this smooth motion)."""
    ep = Episode(arm, EpisodeConfig(("head",), "single", 32, 32, duration=4.0), 1001)
    t = 2.0
    v = ep.slot_velocity(t, 3)
    times = np.array([1.8, 1.9, 2.0])
    s = ep.slots(times)
    assert np.allclose(v, (s[2] - s[0]) / 0.2, atol=1e-5)  # a 3-point fit at even spacing: the end points
    d = (ep.slots([t + 1e-4])[0] - ep.slots([t - 1e-4])[0]) / 2e-4
    assert np.abs(v - d).max() < 0.2 * np.abs(d).max() + 1e-3
    b = sample_batch([ep], np.random.default_rng(0), 8, history=1, horizon=4, step_period=0.05, with_frames=False,
                     state_velocity=3)
    assert b.velocity.shape == (8, arm.dim) and min(b.index) >= 2  # a full fit window before each sample
    n = b.index[0]
    assert np.allclose(b.velocity[0], ep.slot_velocity(ep.times[n], 3))
    stats = slot_statistics([ep], horizon=4, step_period=0.05, state_velocity=3)
    assert len(stats["state/default/global_mean"]) == 2 * arm.dim and len(stats["action/default/global_mean"]) == arm.dim


def test_codec_learns(arm):
    ep = Episode(arm, EpisodeConfig(("head",), "single", 32, 32, duration=3.0), 1002)
    x = to_pixels(ep.frames[:16])
    torch.manual_seed(0)
    untrained = train_codec([ep], TrainConfig(codec_steps=1, batch=4))
    trained = train_codec([ep], TrainConfig(codec_steps=150, batch=4, warmup=10))
    with torch.no_grad():
        err = [(c.decoder(c.encoder(x)) - x).abs().mean().item() for c in (untrained, trained)]
    assert err[1] < 0.5 * err[0]
    z = trained.encode(x)  # normalised with the measured statistics
    assert z.shape == (16, 16, 1, 4, 4) and abs(z.mean().item()) < 0.5 and 0.3 < z.std().item() < 2.0


def test_cli_writes_a_checkpoint_the_backend_loads(tmp_path, arm):
    out = tmp_path / "nano"
    assert train_main([str(out), "--embodiment", "single_arm", "--cameras", "1", "--tile-width", "32",
                       "--tile-height", "32", "--episodes", "1", "--duration", "5", "--steps", "3",
                       "--codec-steps", "3", "--batch", "2", "--history-frames", "2", "--future-frames", "1",
                       "--horizon", "8"]) == 0
    record = json.loads((out / "train.json").read_text())
    assert record["temporal_mode"] == "official" and record["history_frames"] == 2
    assert record["action_reference"] == "state" and record["state_velocity"] == 3
    assert min(record["episode_seeds"]) >= 1000 and len(record["loss_curve"]) >= 1
    paths = {f"{p}_checkpoint": str(out / f"{p}.safetensors") for p in ("dit", "codec", "text")}
    with pytest.raises(ValueError, match="trained for temporal_mode:=official history_frames:=2"):
        make_backend("kairos", arm, **paths)
    b = make_backend("kairos", arm, temporal_mode="official", history_frames=2, image_width=32, image_height=32,
                     frame_period=0.1, flow_steps=2, num_predicted_frames=1, **paths)
    assert b.random_parts == [] and b.action_slots == list(arm.slot_names) and b.state_velocity == 3
    assert b.net.cfg.action.state_dim == 2 * arm.dim  # positions and velocities
    frame = np.zeros((32, 32, 3), np.uint8)
    js = JointStateData(1.0, list(arm.joint_names), np.zeros(len(arm.joint_names)))
    pred = b.predict([ObservationData(1.0, ["head"], [frame], js, "", composed=frame)], 8, 0.05)
    assert pred.chunk.values.shape == (8, arm.dim) and np.all(np.isfinite(pred.chunk.values))
    assert len(pred.frames) == 1 and pred.frames[0].shape == (32, 32, 3)


def test_checkpoint_after_warmup_loads_weights_only(tmp_path):
    """The learning rate past the warm-up lands in the optimiser state: it must be a plain float,
    or torch.load(weights_only=True) refuses checkpoint.pt and --resume fails (it did, from step
    `warmup` on). A checkpoint written before the fix (a numpy scalar there) still loads."""
    from kairos_ros.train.cli import load_checkpoint
    from kairos_ros.train.loop import _lr

    cfg = TrainConfig(warmup=2, steps=10)
    for step in (0, 5, 9):
        assert type(_lr(step, cfg, 1e-3, cfg.steps)) is float
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([p], lr=1e-3)
    opt.param_groups[0]["lr"] = _lr(5, cfg, 1e-3, cfg.steps)
    torch.save({"opt": opt.state_dict()}, tmp_path / "new.pt")
    assert torch.load(tmp_path / "new.pt", weights_only=True)["opt"]["param_groups"][0]["lr"] > 0
    opt.param_groups[0]["lr"] = np.float64(2e-4)  # what older runs stored
    torch.save({"opt": opt.state_dict()}, tmp_path / "old.pt")
    with pytest.raises(Exception, match="weights_only|Weights only"):
        torch.load(tmp_path / "old.pt", weights_only=True)
    assert float(load_checkpoint(tmp_path / "old.pt")["opt"]["param_groups"][0]["lr"]) == 2e-4
