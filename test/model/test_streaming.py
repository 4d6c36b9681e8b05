"""Streaming mode: feeding frames one at a time gives what one full causal forward gives, across the
GatedDeltaNet state carry, the eviction of K/V that left the windows and the sliding RoPE origin;
the action expert's view of the state is the official action mode's view of those frames."""
from dataclasses import replace

import pytest
import torch

from kairos_ros.model.config import get_preset
from kairos_ros.model.memory import WorldMemory
from kairos_ros.model.sampler import sample_actions
from kairos_ros.model.wam import KairosWAM
from kairos_ros.model.world_state import WorldState, shift_frames

FRAMES = 13  # > 9: the DSWA window (8 frames back) is exceeded and old K/V are evicted
PER_FRAME = 2 * 3
TOL = 1e-5


def _model(cfg=None, seed=0):
    torch.manual_seed(seed)
    model = KairosWAM(cfg or get_preset("kairos-test")).eval()
    for p in model.parameters():  # the default init leaves adaLN at zero; make every path matter
        p.data.add_(0.05 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module")
def setup():
    model = _model()
    g = torch.Generator().manual_seed(1)
    cfg = model.cfg
    lat = torch.randn(1, 16, 20, 4, 6, generator=g)
    ctx, cm = model.context(torch.randn(1, 3, cfg.video.text_dim, generator=g),
                            torch.randn(1, cfg.action.state_dim, generator=g))
    return model, lat, ctx, cm


def _stream(model, lat, ctx, cm, frames, state):
    outs, caches = [], []
    with torch.no_grad():
        for n in range(frames):
            cache, o = model.stream_step(lat[:, :, n:n + 1], ctx, cm, state)
            outs.append(o)
            caches.append(cache)
    return outs, caches


def _max_err(outs, full):
    worst = 0.0
    for n, per_layer in enumerate(outs):
        for mine, ref in zip(per_layer, full):
            worst = max(worst, (mine - ref[:, n * PER_FRAME:(n + 1) * PER_FRAME]).abs().max().item())
    return worst


def test_streaming_equals_full_causal_forward(setup):
    model, lat, ctx, cm = setup
    with torch.no_grad():
        _, full = model.encode_history(lat[:, :, :FRAMES], ctx, cm, causal=True)
    state = WorldState()
    outs, _ = _stream(model, lat, ctx, cm, FRAMES, state)
    assert _max_err(outs, full) < TOL
    assert state.frames == FRAMES and set(state.gdn) == {3}
    kept = {i: (first, k.shape[1] // PER_FRAME) for i, (first, k, _) in state.kv.items()}
    assert kept == {0: (FRAMES - 2, 2), 1: (FRAMES - 2, 2), 2: (FRAMES - 8, 8)}, "SWA keeps 2 frames, DSWA 8"
    # a full bidirectional (official) forward differs: the test would notice a non-causal stream
    with torch.no_grad():
        _, bidir = model.encode_history(lat[:, :, :FRAMES], ctx, cm)
    assert _max_err(outs, bidir) > 1e-3


def test_sliding_rope_origin_changes_nothing(setup):
    model, lat, ctx, cm = setup
    small = KairosWAM(replace(model.cfg, video=replace(model.cfg.video, rope_len=12))).eval()
    small.load_state_dict(model.state_dict())
    with torch.no_grad():
        _, full = model.encode_history(lat, ctx, cm, causal=True)
    state = WorldState()
    outs, caches = _stream(small, lat, ctx, cm, 20, state)
    assert state.origin == 8, "rebased at frames 12 and 16 by 4 positions each"
    assert _max_err(outs, full) < TOL
    ref_caches = _stream(model, lat, ctx, cm, 20, WorldState())[1]
    x = torch.randn(1, 5, model.cfg.action.action_dim)
    with torch.no_grad():
        a = small.action_velocity(x, torch.tensor([300.0]), caches[-1], ctx, cm)
        b = model.action_velocity(x, torch.tensor([300.0]), ref_caches[-1], ctx, cm)
    assert (a - b).abs().max().item() < TOL


def test_action_view_is_the_official_history_view(setup):
    model, lat, ctx, cm = setup
    x = torch.randn(1, 5, model.cfg.action.action_dim)
    with torch.no_grad():
        first, _ = model.stream_step(lat[:, :, :1], ctx, cm, WorldState())
        official, _ = model.encode_history(lat[:, :, :1], ctx, cm)  # RoboTwin: one history frame at position 0
        for mine, ref in zip(first.kv, official.kv):
            assert (mine is None) == (ref is None)
            if ref is not None:
                assert torch.equal(mine[0], ref[0]) and torch.equal(mine[1], ref[1])
        assert torch.equal(model.action_velocity(x, 500.0, first, ctx, cm),
                           model.action_velocity(x, 500.0, official, ctx, cm))
        # two action frames after 7 frames: frames 5 and 6 of the causal forward, moved to positions 0 and 1
        _, caches = _stream(model, lat, ctx, cm, 7, WorldState(action_frames=2))
        causal, _ = model.encode_history(lat[:, :, :7], ctx, cm, causal=True)
    assert caches[-1].frames == 2 and caches[-1].tokens_per_frame == PER_FRAME
    for mine, ref in zip(caches[-1].kv, causal.kv):
        if ref is None:
            assert mine is None
            continue
        k_ref = shift_frames(ref[0][:, 5 * PER_FRAME:], -5, model)
        assert (mine[0] - k_ref).abs().max().item() < TOL
        assert (mine[1] - ref[1][:, 5 * PER_FRAME:]).abs().max().item() < TOL


def test_state_size_is_constant_commit_and_reset(setup):
    model, lat, ctx, cm = setup
    state = WorldState()
    sizes = []
    with torch.no_grad():
        for n in range(FRAMES):
            cache, _ = model.stream_step(lat[:, :, n:n + 1], ctx, cm, state)
            sizes.append(sum(kv[1].numel() for kv in state.kv.values()))
        before = state.clone()
        probe, outs = model.stream_step(lat[:, :, FRAMES:FRAMES + 1], ctx, cm, state, t=400.0, commit=False)
        actions = sample_actions(model, cache, ctx, cm, 4, steps=2, generator=torch.Generator().manual_seed(0))
    assert sizes[-1] == sizes[-2] == sizes[8], "the world state stops growing once the windows are full"
    assert state.frames == before.frames and all(state.kv[i][1] is before.kv[i][1] for i in state.kv)
    assert torch.all(torch.isfinite(actions)) and actions.shape == (1, 4, model.cfg.action.action_dim)
    state.reset()
    assert state.frames == 0 and state.origin == 0 and not state.kv and not state.gdn


def test_world_memory_modes(setup):
    model, lat, ctx, cm = setup
    official = WorldMemory(model, "official", history_frames=2)
    streaming = WorldMemory(model, "streaming")
    with torch.no_grad():
        for n in range(3):
            c_off = official.observe(lat[:, :, n:n + 1], ctx, cm)
            c_str = streaming.observe(lat[:, :, n:n + 1], ctx, cm)
        ref, _ = model.encode_history(lat[:, :, 1:3], ctx, cm)  # bounded history: the last two frames
    assert official.frames == streaming.frames == 3 and c_off.frames == 2 and c_str.frames == 1
    assert all(a is None or torch.equal(a[0], b[0]) for a, b in zip(c_off.kv, ref.kv))
    official.reset()
    assert official.frames == 0 and not official.history


def test_streaming_input_errors(setup):
    model, lat, ctx, cm = setup
    state = WorldState()
    with torch.no_grad():
        with pytest.raises(ValueError, match=r"one latent frame \(B, C, 1, H, W\), got \(1, 16, 2, 4, 6\)"):
            model.stream_step(lat[:, :, :2], ctx, cm, state)
        model.stream_step(lat[:, :, :1], ctx, cm, state)
        with pytest.raises(ValueError, match="frame of 4 tokens; the world state holds frames of 6"):
            model.stream_step(lat[:, :, 1:2, :4, :4], ctx, cm, state)
    with pytest.raises(ValueError, match="action_frames = 0"):
        WorldState(action_frames=0)
    with pytest.raises(ValueError, match="unknown temporal mode 'bidirectional'"):
        WorldMemory(model, "bidirectional")
