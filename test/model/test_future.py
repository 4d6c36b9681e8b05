"""Predicted future frames: the official joint video+action loop and the streaming frame-by-frame
loop, the video shift schedule and the distilled levels, on random (perturbed) weights."""
import math

import pytest
import torch

from kairos_ros.model.config import get_preset
from kairos_ros.model.future import sample_official, sample_streaming, to_rgb8, video_sigmas
from kairos_ros.model.sampler import distilled_sigmas, sample_actions, shifted_sigmas, video_shift
from kairos_ros.model.wam import KairosWAM
from kairos_ros.model.world_state import WorldState


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = KairosWAM(get_preset("kairos-test")).eval()
    with torch.no_grad():
        for p in m.parameters():  # zero-initialised modulations would hide mixing bugs
            p.add_(0.05 * torch.randn_like(p))
    return m


def inputs(m, frames=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    cfg = m.cfg
    lat = torch.randn(1, 16, frames, 4, 6, generator=g)
    with torch.no_grad():
        ctx, cm = m.context(torch.randn(1, 3, cfg.video.text_dim, generator=g),
                            torch.randn(1, cfg.action.state_dim, generator=g))
    return lat, ctx, cm


def test_video_shift_schedule():
    assert video_shift(256, 1) == pytest.approx(math.exp(0.5))
    assert video_shift(8192, 1) == pytest.approx(math.exp(0.9))
    assert video_shift(256, 4) == pytest.approx(2 * math.exp(0.5))  # x sqrt(latent frames)
    assert video_shift(4224, 1) == pytest.approx(math.exp(0.7))  # linear in tokens per frame
    s = video_sigmas("euler", 10, 24 * 40, 2)
    assert s == pytest.approx(shifted_sigmas(10, video_shift(960, 2)).tolist())
    with pytest.raises(ValueError, match="unknown video schedule 'magic'"):
        video_sigmas("magic", 4, 16, 1)


def test_distilled_levels_pass_through_shift_5():
    s = distilled_sigmas().tolist()
    expect = [5 * x / (1 + 4 * x) for x in (1.0, 0.8, 0.5, 0.1)] + [0.0]
    assert s == pytest.approx(expect)


def test_joint_actions_equal_action_mode(model):
    """Action tokens attend only the history video, so the joint loop's actions equal the action
    mode's from the same noise; and the video does not depend on the actions."""
    lat, ctx, cm = inputs(model)
    noise = torch.randn(1, 5, model.cfg.action.action_dim, generator=torch.Generator().manual_seed(7))
    future, joint = sample_official(model, lat, ctx, cm, 2, 4, torch.Generator().manual_seed(3), horizon=5,
                                    action_noise=noise)
    with torch.no_grad():
        cache, _ = model.encode_history(lat, ctx, cm)
    alone = sample_actions(model, cache, ctx, cm, 5, steps=4, noise=noise)
    assert future.shape == (1, 16, 2, 4, 6) and joint.shape == (1, 5, model.cfg.action.action_dim)
    assert (joint - alone).abs().max() < 1e-4 * alone.abs().max()
    other, _ = sample_official(model, lat, ctx, cm, 2, 4, torch.Generator().manual_seed(3), horizon=5,
                               action_noise=torch.randn_like(noise) * 3)
    video_only, none = sample_official(model, lat, ctx, cm, 2, 4, torch.Generator().manual_seed(3))
    assert none is None
    assert torch.allclose(other, future, atol=1e-5) and torch.allclose(video_only, future, atol=1e-5)


def test_official_single_step_is_one_euler_step(model):
    lat, ctx, cm = inputs(model)
    gen_seed = 5
    out, _ = sample_official(model, lat, ctx, cm, 1, 1, torch.Generator().manual_seed(gen_seed))
    noise = torch.randn(1, 16, 1, 4, 6, generator=torch.Generator().manual_seed(gen_seed))
    steps = torch.zeros(1, 3 * 2 * 3)
    steps[:, 2 * 2 * 3:] = 1000.0  # sigma 1 on the future tokens, 0 on the two history frames
    with torch.no_grad():
        v = model.video_forward(torch.cat([lat, noise], 2), steps, 2, ctx, cm)[:, :, 2:]
    assert torch.allclose(out, noise - v, atol=1e-5)


def test_streaming_future_leaves_the_state_and_matches_a_manual_step(model):
    lat, ctx, cm = inputs(model, frames=3)
    state = WorldState()
    with torch.no_grad():
        for n in range(3):
            model.stream_step(lat[:, :, n:n + 1], ctx, cm, state)
    frames, kv = state.frames, {i: v[1].clone() for i, v in state.kv.items()}
    out = sample_streaming(model, state, (1, 16, 4, 6), ctx, cm, 2, 3, torch.Generator().manual_seed(2))
    assert out.shape == (1, 16, 2, 4, 6) and torch.all(torch.isfinite(out))
    assert state.frames == frames and all(torch.equal(kv[i], state.kv[i][1]) for i in kv)
    again = sample_streaming(model, state, (1, 16, 4, 6), ctx, cm, 2, 3, torch.Generator().manual_seed(2))
    assert torch.equal(out, again)
    one = sample_streaming(model, state, (1, 16, 4, 6), ctx, cm, 1, 1, torch.Generator().manual_seed(4))
    noise = torch.randn(1, 16, 1, 4, 6, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        cache, outs = model.stream_step(noise, ctx, cm, state, t=1000.0, commit=False)
        v = model.video_dit.unpatchify(outs[-1], cache.video_pre.t, cache.video_pre.grid)
    assert torch.allclose(one, noise - v, atol=1e-5)
    with pytest.raises(ValueError, match="holds no frame yet"):
        sample_streaming(model, WorldState(), (1, 16, 4, 6), ctx, cm, 1, 1)


def test_distilled_video_runs_and_differs_from_euler(model):
    lat, ctx, cm = inputs(model)
    euler, _ = sample_official(model, lat, ctx, cm, 1, 4, torch.Generator().manual_seed(1))
    dist, none = sample_official(model, lat, ctx, cm, 1, 4, torch.Generator().manual_seed(1), schedule="distilled",
                                 horizon=5)
    assert none is None and torch.all(torch.isfinite(dist)) and not torch.allclose(euler, dist)


def test_to_rgb8():
    x = torch.tensor([-1.0, 0.0, 1.0, 3.0]).view(1, 1, 1, 1, 4).expand(1, 2, 3, 1, 4)
    frames = to_rgb8(x)
    assert len(frames) == 2 and frames[0].shape == (1, 4, 3) and frames[0].dtype.name == "uint8"
    assert frames[0][0, :, 0].tolist() == [0, 128, 255, 255]
