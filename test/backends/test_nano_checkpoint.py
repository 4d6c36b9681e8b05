"""The kairos-nano checkpoint format (model/nano_format.py) through the backend: the three files a
training job writes load without random parts, carry the layout and statistics, and bad files are
refused by name. A tiny Wan-style AutoencoderKLWan folder also serves as the nano codec."""
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kairos_helpers import obs  # noqa: E402
from kairos_ros.backends import make_backend  # noqa: E402
from kairos_ros.model.checkpoint import save_checkpoint  # noqa: E402
from kairos_ros.model.codecs import HashTextEncoder  # noqa: E402
from kairos_ros.model.nano_format import save_conv_codec, save_dit, save_hash_text  # noqa: E402


def stats(n):
    return {f"{w}/default/global_{k}": [0.1 if k == "mean" else 1.5] * n for w in ("action", "state")
            for k in ("mean", "std")}


@pytest.fixture(scope="module")
def saved(tmp_path_factory, specs):
    arm = specs["arm"]
    order = list(reversed(arm.slot_names))
    src = make_backend("kairos", arm, allow_random_weights=True, action_layout=order, seed=3)
    root = tmp_path_factory.mktemp("nano")
    paths = {"dit_checkpoint": str(root / "dit.safetensors"), "codec_checkpoint": str(root / "codec.safetensors"),
             "text_checkpoint": str(root / "text.safetensors")}
    save_dit(src.net, paths["dit_checkpoint"], order, order, stats(8), "zscore")
    save_conv_codec(src.codec, paths["codec_checkpoint"])
    save_hash_text(src.text, paths["text_checkpoint"])
    return src, paths, root


def test_round_trip_loads_everything(saved, specs):
    src, paths, _ = saved
    b = make_backend("kairos", specs["arm"], flow_steps=2, num_predicted_frames=2, **paths)
    assert b.random_parts == [] and b.startup_warning == "" and b.model == "kairos-nano (dit.safetensors)"
    assert b.action_slots == list(reversed(specs["arm"].slot_names))  # the layout came from the metadata
    assert b.action_norm.a == pytest.approx(np.full(8, 0.1)) and b.action_norm.b == pytest.approx(np.full(8, 1.5))
    for mine, theirs in ((b.net, src.net), (b.codec, src.codec), (b.text, src.text)):
        a, c = mine.state_dict(), theirs.state_dict()
        assert a.keys() == c.keys() and all(torch.equal(a[k], c[k]) for k in a)
    pred = b.predict([obs(specs["arm"], 1.0)], 8, 0.05)
    assert pred.chunk.values.shape == (8, 8) and len(pred.frames) == 2


def test_bad_metadata_is_refused(saved, specs, tmp_path):
    src, paths, _ = saved
    state = src.net.state_dict()
    bad = str(tmp_path / "bad.safetensors")
    save_checkpoint(state, bad, {"kairos.action_slots": json.dumps(["arm.joint_1"])})
    with pytest.raises(ValueError, match="kairos.action_slots lists 1 slots but the weights take 8 action values"):
        make_backend("kairos", specs["arm"], **{**paths, "dit_checkpoint": bad})
    save_checkpoint(state, bad, {"kairos.preset": "kairos-test"})
    with pytest.raises(ValueError, match="holds a 'kairos-test' model but model_preset is 'kairos-nano'"):
        make_backend("kairos", specs["arm"], **{**paths, "dit_checkpoint": bad})
    with pytest.raises(ValueError, match=r"action layout needs slots \['arm.gripper'.*embodiment 'dual'"):
        make_backend("kairos", specs["dual"], **paths)  # a checkpoint made for another robot
    text = str(tmp_path / "text.safetensors")
    save_hash_text(HashTextEncoder(64), text)
    with pytest.raises(ValueError, match="text width 64 but the model's text_dim is 128"):
        make_backend("kairos", specs["arm"], **{**paths, "text_checkpoint": text})
    with pytest.raises(ValueError, match="parameter 'codec_checkpoint' = '/no/codec': no such file"):
        make_backend("kairos", specs["arm"], **{**paths, "codec_checkpoint": "/no/codec"})


def test_wan_vae_folder_as_the_nano_codec(specs, tmp_path, monkeypatch):
    from diffusers import AutoencoderKLWan

    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    torch.manual_seed(0)
    AutoencoderKLWan(base_dim=8, dim_mult=[1, 2, 2, 2], num_res_blocks=1).save_pretrained(str(tmp_path / "vae"))
    b = make_backend("kairos", specs["dual"], allow_random_weights=True, flow_steps=1, num_predicted_frames=3,
                     codec_checkpoint=str(tmp_path / "vae"))
    assert b.codec.temporal_factor == 4 and "codec" not in b.random_parts
    pred = b.predict([obs(specs["dual"], 1.0)], 8, 0.05)  # one future latent frame -> 4 pixel frames, 3 kept
    assert len(pred.frames) == 3 and all(f.shape == (64, 80, 3) for f in pred.frames)


def test_trained_for_settings_are_required(saved, specs, tmp_path):
    """A checkpoint that says which temporal mode, history and image size it was trained for refuses
    other settings by name (and the value to set), and starts with the matching ones."""
    src, paths, _ = saved
    order = list(reversed(specs["arm"].slot_names))
    dit = str(tmp_path / "dit_official.safetensors")
    save_dit(src.net, dit, order, order, stats(8), "zscore",
             {"temporal_mode": "official", "history_frames": 3, "image_width": 80, "image_height": 64})
    p = {**paths, "dit_checkpoint": dit}
    with pytest.raises(ValueError, match=r"trained for temporal_mode:=official history_frames:=3 image_width:=80 "
                                         r"image_height:=64, but temporal_mode = 'streaming', history_frames = 1"):
        make_backend("kairos", specs["arm"], **p)
    with pytest.raises(ValueError, match=r"trained for image_width:=80 image_height:=64, but image_width = 0"):
        make_backend("kairos", specs["arm"], temporal_mode="official", history_frames=3, **p)
    b = make_backend("kairos", specs["arm"], temporal_mode="official", history_frames=3, image_width=80,
                     image_height=64, flow_steps=2, **p)
    assert b.random_parts == [] and b.predict([obs(specs["arm"], 1.0)], 4, 0.05).chunk.values.shape == (4, 8)


def test_state_relative_actions_are_offsets_from_the_robot_state(saved, specs, tmp_path):
    """kairos.action_reference = state: the same weights and noise give the absolute checkpoint's
    chunk plus the robot state's slot values (and Imagine scores candidates the same way)."""
    src, paths, _ = saved
    order = list(reversed(specs["arm"].slot_names))
    chunks = {}
    for ref in ("absolute", "state"):
        dit = str(tmp_path / f"dit_{ref}.safetensors")
        save_dit(src.net, dit, order, order, stats(8), "zscore", action_reference=ref)
        b = make_backend("kairos", specs["arm"], flow_steps=2, seed=5, **{**paths, "dit_checkpoint": dit})
        assert b.relative == (ref == "state")
        q = np.linspace(-0.3, 0.4, 8)
        chunks[ref] = b.predict([obs(specs["arm"], 1.0, q=q)], 6, 0.05).chunk.values
    assert np.allclose(chunks["state"] - chunks["absolute"], q[None, :], atol=1e-5)
    with pytest.raises(ValueError, match="action_reference 'delta' must be one of"):
        save_dit(src.net, str(tmp_path / "x.safetensors"), order, order, action_reference="delta")


def test_stepwise_statistics_scale_each_chunk_row(saved, specs, tmp_path):
    """kairos.stats_scope = stepwise: row k of the chunk is denormalised with row k's statistics, the
    chunk length is fixed by them (another horizon is refused by name), and a wrong shape is refused."""
    src, paths, _ = saved
    order = list(reversed(specs["arm"].slot_names))
    h = 6
    st = stats(8)
    st["action/default/stepwise_mean"] = [[0.0] * 8 for _ in range(h)]
    st["action/default/stepwise_std"] = [[0.01 * (k + 1)] * 8 for k in range(h)]
    chunks = {}
    for scope in ("global", "stepwise"):
        dit = str(tmp_path / f"dit_{scope}.safetensors")
        save_dit(src.net, dit, order, order, st, "zscore", stats_scope=scope)
        b = make_backend("kairos", specs["arm"], flow_steps=2, seed=5, **{**paths, "dit_checkpoint": dit})
        assert b.required_horizon == (h if scope == "stepwise" else None)
        chunks[scope] = b.predict([obs(specs["arm"], 1.0)], h, 0.05).chunk.values
    z = (chunks["global"] - 0.1) / 1.5  # the same normalised sample under both scopes
    assert np.allclose(chunks["stepwise"], z * (0.01 * np.arange(1, h + 1))[:, None], atol=1e-5)
    with pytest.raises(ValueError, match="horizon 8: the checkpoint's stepwise action statistics are for chunks of 6"):
        b.predict([obs(specs["arm"], 1.2)], 8, 0.05)
    bad = dict(st, **{"action/default/stepwise_std": [[1.0] * 7 for _ in range(h)]})
    dit = str(tmp_path / "dit_bad.safetensors")
    save_dit(src.net, dit, order, order, bad, "zscore", stats_scope="stepwise")
    with pytest.raises(ValueError):
        make_backend("kairos", specs["arm"], **{**paths, "dit_checkpoint": dit})


def test_state_velocity_feeds_positions_then_fitted_velocities(saved, specs, tmp_path, monkeypatch):
    """kairos.state_velocity = 3: the proprio input is the state slots (layout order) followed by
    their velocities, the least-squares slope over the last 3 observations, z-scored with the
    checkpoint's 16 state statistics; the metadata must be sane and consistent with the weights."""
    from dataclasses import replace

    from kairos_ros.model.checkpoint import read_header
    from kairos_ros.model.config import get_preset
    from kairos_ros.model.nano_format import dit_info
    from kairos_ros.model.wam import KairosWAM

    _, paths, _ = saved
    arm = specs["arm"]
    order = list(reversed(arm.slot_names))
    base = get_preset("kairos-nano")
    torch.manual_seed(0)
    net = KairosWAM(replace(base, action=replace(base.action, action_dim=8, state_dim=16)))
    st = stats(8)
    st["state/default/global_mean"] = [0.0] * 8 + [0.5] * 8
    st["state/default/global_std"] = [2.0] * 8 + [0.25] * 8
    dit = str(tmp_path / "dit_vel.safetensors")
    save_dit(net, dit, order, order, st, "zscore", state_velocity=3)
    assert dit_info(read_header(dit)).state_velocity == 3
    b = make_backend("kairos", arm, flow_steps=2, **{**paths, "dit_checkpoint": dit})
    seen = []
    real = b.net.context
    monkeypatch.setattr(b.net, "context", lambda words, state: (seen.append(state.clone()), real(words, state))[1])
    q0, v = np.linspace(-0.3, 0.4, 8), np.linspace(0.5, -0.2, 8)
    # the oldest observation lies outside the fit window of 3 (it would spoil a straight line)
    history = [obs(arm, t, q=q0 + v * t + (5.0 if t == 0.9 else 0.0)) for t in (0.9, 1.0, 1.1, 1.2)]
    b.predict(history, 4, 0.05)
    expect = np.concatenate([(q0 + v * 1.2)[::-1] / 2.0, (v[::-1] - 0.5) / 0.25])
    assert seen and np.allclose(seen[-1][0].numpy(), expect, atol=1e-5)
    b.reset()
    b.predict(history[-1:], 4, 0.05)  # one observation: no velocity known, zeros (or the reported velocities)
    assert np.allclose(seen[-1][0, 8:].numpy(), (0.0 - 0.5) / 0.25)
    with pytest.raises(ValueError, match=r"8 action / 8 state slots \(x1\) for a model of action_dim 8 / state_dim 16"):
        save_dit(net, str(tmp_path / "x.safetensors"), order, order, st, "zscore")
    with pytest.raises(ValueError, match="state_velocity 1 must be >= 2"):
        save_dit(net, str(tmp_path / "x.safetensors"), order, order, st, "zscore", state_velocity=1)
    bad = str(tmp_path / "bad_vel.safetensors")
    save_checkpoint(net.state_dict(), bad, {"kairos.state_velocity": "fast", "kairos.state_slots": json.dumps(order)})
    with pytest.raises(ValueError, match="kairos.state_velocity = 'fast' must be an integer >= 2"):
        make_backend("kairos", arm, **{**paths, "dit_checkpoint": bad})
    save_checkpoint(net.state_dict(), bad, {"kairos.state_slots": json.dumps(order)})
    with pytest.raises(ValueError, match="kairos.state_slots lists 8 slots but the weights take 16 state values"):
        make_backend("kairos", arm, **{**paths, "dit_checkpoint": bad})


def test_saved_checkpoint_has_the_users_file_mode(tmp_path):
    """safetensors writes through a 0600 temporary file; a checkpoint must be as readable as any
    other file the user writes (0666 less the umask), or a robot's service account cannot load
    weights trained under another account."""
    import os

    import torch

    from kairos_ros.model.checkpoint import save_checkpoint

    old = os.umask(0o022)
    try:
        save_checkpoint({"w": torch.zeros(2)}, str(tmp_path / "w.safetensors"))
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "w.safetensors").st_mode & 0o777 == os.stat(tmp_path / "plain").st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "w.safetensors"]  # no probe left behind
