"""The `kairos` backend at run time (kairos-nano, random weights explicitly allowed: no trained
weights exist on these machines): refusal without weights, streaming and official temporal modes,
predicted frames through the codec, and bad input raising so the node drops and resets."""
import os

import numpy as np
import pytest
import torch

from kairos_helpers import obs
from kairos_ros.backends import make_backend

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "kairos_parity",
                       "state_dict_fp16.safetensors")


def backend(spec, **kw):
    return make_backend("kairos", spec, **{"allow_random_weights": True, "flow_steps": 2, **kw})


def test_refuses_without_weights(specs):
    with pytest.raises(ValueError, match=r"parameter 'dit_checkpoint' is empty: .*missing: \['dit_checkpoint', "
                                         r"'codec_checkpoint', 'text_checkpoint'\]"):
        make_backend("kairos", specs["dual"])
    with pytest.raises(ValueError, match="bad parameters"):
        make_backend("kairos", specs["dual"], colour="red")


def test_random_weights_are_labelled(specs):
    b = backend(specs["arm"])
    assert "RANDOM WEIGHTS" in b.startup_warning and "RANDOM WEIGHTS: dit, codec, text" in b.model
    assert b.net.cfg.action.action_dim == 8 and b.action_slots == list(specs["arm"].slot_names)  # nano resized


def test_streams_new_frames_only(specs):
    spec = specs["dual"]
    b = backend(spec)
    history = [obs(spec, 1.0), obs(spec, 1.1)]
    pred = b.predict(history, 8, 0.05)
    assert pred.chunk.values.shape == (8, 14) and np.all(np.isfinite(pred.chunk.values)) and pred.frames == []
    assert b.world_state_frames == 1 and b.skipped_frames == 1  # behind the camera: the newest frame only
    pred = b.predict(history + [obs(spec, 1.2)], 8, 0.05)
    assert b.world_state_frames == 2 and pred.chunk.model == b.model
    again = b.predict(history + [obs(spec, 1.2)], 8, 0.05)  # nothing new: the state is reused, not re-fed
    assert b.world_state_frames == 2 and np.all(np.isfinite(again.chunk.values))
    b.reset()
    assert b.world_state_frames == 0 and b.state.frames == 0


def test_official_mode_keeps_a_bounded_history(specs):
    spec = specs["dual"]
    b = backend(spec, temporal_mode="official", history_frames=2)
    history = []
    for i in range(4):
        history.append(obs(spec, 1.0 + 0.1 * i))
        b.predict(history, 8, 0.05)
    assert b.world_state_frames == 5 and len(b.memory.history) == 2  # the first prediction padded one frame
    assert b.memory.history_latents().shape[2] == 2


def test_official_mode_pads_a_short_history_at_rest(specs):
    """Fewer observations than history_frames (the first steps after a start): the oldest is
    repeated before itself at the camera spacing, the robot at rest, which is what kairos-train's
    start windows learn (train.data.window); the model never sees a history shape it was not
    trained on. Two observations later the memory holds [o0, o0, o0, o1]."""
    spec = specs["dual"]
    b = backend(spec, temporal_mode="official", history_frames=4, frame_period=0.1)
    o0, o1 = obs(spec, 1.0), obs(spec, 1.1)
    o1.composed = np.full_like(o1.composed, 200)
    padded = b.at_rest([o0])
    assert [round(o.stamp, 3) for o in padded] == [0.7, 0.8, 0.9, 1.0] and all(o.composed is o0.composed for o in padded)
    assert o0.stamp == 1.0  # the caller's observation is not changed
    b.predict([o0], 8, 0.05)
    b.predict([o0, o1], 8, 0.05)
    codec = b.codec
    with torch.inference_mode():
        enc = [codec.encode(torch.from_numpy(np.stack([o.composed])).permute(0, 3, 1, 2).float() / 127.5 - 1)
               for o in (o0, o0, o0, o1)]
    assert torch.allclose(b.memory.history_latents(), torch.cat(enc, dim=2))
    assert len(b.at_rest([obs(spec, 1.0 + 0.1 * i) for i in range(5)])) == 5  # full histories unchanged
    streaming = backend(spec)
    assert len(streaming.at_rest([o0])) == 1  # streaming mode keeps its own state: no padding


@pytest.mark.parametrize("mode,steps", [("streaming", 0), ("official", 0), ("official", 3)])
def test_predicted_frames_are_decoded_model_output(specs, mode, steps):
    spec = specs["dual"]
    b = backend(spec, num_predicted_frames=3, temporal_mode=mode, video_steps=steps)
    last = obs(spec, 1.0)
    pred = b.predict([last], 8, 0.05)
    assert len(pred.frames) == 3 and pred.frame_times == pytest.approx([8 * 0.05 * k / 3 for k in (1, 2, 3)])
    assert all(f.shape == (64, 80, 3) and f.dtype == np.uint8 for f in pred.frames)
    assert not any(np.array_equal(f, last.composed) for f in pred.frames)  # not the last frame repeated
    assert not np.array_equal(pred.frames[0], pred.frames[1])


def test_video_every_and_frame_period(specs):
    spec = specs["dual"]
    b = backend(spec, num_predicted_frames=2, video_every=2, frame_period=0.25)
    counts = [len(b.predict([obs(spec, 1.0 + 0.1 * i)], 8, 0.05).frames) for i in range(3)]
    assert counts == [2, 0, 2]
    assert b.predict([obs(spec, 2.0)], 8, 0.05).frame_times == []
    assert b.predict([obs(spec, 2.1)], 8, 0.05).frame_times == pytest.approx([0.25, 0.5])


def test_image_size_is_checked(specs):
    spec = specs["dual"]
    b = backend(spec)
    with pytest.raises(ValueError, match=r"image size 80x60 \(width x height\) is not a multiple of 16: .*width 80 "
                                         r"and height 60"):
        b.predict([obs(spec, 2.0, size=(60, 80))], 8, 0.05)
    fixed = backend(spec, image_width=96, image_height=64)
    with pytest.raises(ValueError, match=r"composed image 80x64 \(width x height\) differs from image_width x "
                                         r"image_height 96x64"):
        fixed.check_observation(obs(spec, 2.0))
    fixed.check_observation(obs(spec, 2.0, size=(64, 96)))
    with pytest.raises(ValueError, match="image_width x image_height = 100x64: both must be positive multiples of 16"):
        backend(spec, image_width=100, image_height=64)


def test_bad_inputs_raise(specs):
    spec = specs["dual"]
    b = backend(spec)
    bad = np.zeros(14)
    bad[3] = np.nan
    with pytest.raises(ValueError, match="non-finite robot state"):
        b.predict([obs(spec, 3.0, q=bad)], 8, 0.05)
    huge = np.zeros(14)
    huge[0] = 3e38  # finite, but no statistics clamp it: the model's output overflows
    with pytest.raises(ValueError, match="non-finite"):
        b.predict([obs(spec, 3.1, q=huge)], 8, 0.05)
    for name, value in (("temporal_mode", "causal"), ("video_schedule", "dpm"), ("history_frames", 65),
                        ("normalization", "robust")):
        with pytest.raises(ValueError, match=f"parameter '{name}' = "):
            backend(spec, **{name: value})


def test_nan_weights_give_no_chunk(specs, tmp_path):
    from kairos_ros.model.nano_format import save_dit

    spec = specs["dual"]
    b = backend(spec)
    with torch.no_grad():
        b.net.action_dit.head.bias[2] = float("nan")
    path = str(tmp_path / "nan.safetensors")
    unit = {f"{w}/default/global_{k}": [float(k == "std")] * 14 for w in ("action", "state") for k in ("mean", "std")}
    save_dit(b.net, path, b.action_slots, b.state_slots, stats=unit)
    nan = backend(spec, dit_checkpoint=path)
    assert "RANDOM WEIGHTS: codec, text" in nan.model
    with pytest.raises(ValueError, match="non-finite action chunk"):
        nan.predict([obs(spec, 4.0)], 8, 0.05)


def test_wrong_checkpoint_is_refused(specs):
    with pytest.raises(ValueError, match="does not fit the model"):
        backend(specs["dual"], dit_checkpoint=FIXTURE)


def test_staged_prediction_hands_the_chunk_over_before_the_frames(specs, monkeypatch):
    """predict_staged gives the chunk to its callback before any predicted frame is sampled, and the
    result carries that same chunk plus the frames; the baselines call back at the end."""
    b = make_backend("kairos", specs["arm"], allow_random_weights=True, flow_steps=2, num_predicted_frames=1,
                     temporal_mode="official", history_frames=2)
    order = []
    video = b._video
    monkeypatch.setattr(b, "_video", lambda *a: (order.append("frames"), video(*a))[1])
    got = []
    pred = b.predict_staged([obs(specs["arm"], 1.0)], 6, 0.05, lambda c: (order.append("chunk"), got.append(c)))
    assert order == ["chunk", "frames"] and got[0] is pred.chunk and len(pred.frames) == 1
    hold = make_backend("hold", specs["arm"], num_predicted_frames=1)
    seen = []
    pred = hold.predict_staged([obs(specs["arm"], 1.0)], 6, 0.05, seen.append)
    assert seen == [pred.chunk]


def test_official_history_keeps_the_camera_spacing_when_inference_is_slow(specs):
    """Predicting on every third observation only (slow inference), the official mode still re-encodes
    the newest history_frames observations, not every third one; streaming skips (and counts) them."""
    spec = specs["dual"]
    history = [obs(spec, 1.0 + 0.1 * i) for i in range(7)]
    official = backend(spec, temporal_mode="official", history_frames=3)
    official.predict(history[:1], 8, 0.05)
    official.predict(history[:4], 8, 0.05)  # three new observations since the last prediction
    codec = official.codec
    with torch.inference_mode():
        want = torch.cat([codec.encode(torch.from_numpy(np.stack([o.composed])).permute(0, 3, 1, 2).float() / 127.5 - 1)
                          for o in history[1:4]], dim=2)
    assert official.skipped_frames == 0 and torch.allclose(official.memory.history_latents(), want)
    streaming = backend(spec)
    streaming.predict(history[:1], 8, 0.05)
    streaming.predict(history[:4], 8, 0.05)
    assert streaming.skipped_frames == 2 and streaming.world_state_frames == 2


def test_action_noise_scale(specs):
    """0: the deterministic chunk (the same history gives the same chunk however often it is asked);
    1 (the default): fresh noise each time; outside [0, 1]: refused by name."""
    arm = specs["arm"]
    chunks = {}
    for scale in (0.0, 1.0):
        b = make_backend("kairos", arm, allow_random_weights=True, flow_steps=2, action_noise_scale=scale)
        chunks[scale] = [b.predict([obs(arm, 1.0)], 4, 0.05).chunk.values for _ in range(2)]
    assert np.array_equal(*chunks[0.0]) and not np.allclose(*chunks[1.0])
    with pytest.raises(ValueError, match=r"parameter 'action_noise_scale' = 1.5 must be in \[0, 1\]"):
        make_backend("kairos", arm, allow_random_weights=True, action_noise_scale=1.5)
