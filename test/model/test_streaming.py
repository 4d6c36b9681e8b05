"""Streaming: feeding frames one at a time gives what one full causal forward gives, across the
GatedDeltaNet state carry and the eviction of K/V that left the windows (random weights, fp32)."""
import torch

from kairos_ros.model.config import get_preset
from kairos_ros.model.sampler import sample_actions
from kairos_ros.model.wam import KairosWAM
from kairos_ros.model.world_state import WorldState

FRAMES = 13  # > 9: the DSWA window (8 frames back) is exceeded and old K/V are evicted


def setup():
    torch.manual_seed(0)
    model = KairosWAM(get_preset("kairos-test")).eval()
    for p in model.parameters():  # the default init leaves adaLN at zero; make every path matter
        p.data.add_(0.05 * torch.randn_like(p))
    cfg = model.cfg
    lat = torch.randn(1, 16, FRAMES, 4, 6)
    ctx, cm = model.context(torch.randn(1, 3, cfg.video.text_dim), torch.randn(1, cfg.action.state_dim))
    return model, lat, ctx, cm


def test_streaming_equals_full_causal_forward():
    model, lat, ctx, cm = setup()
    per_frame = 2 * 3
    with torch.no_grad():
        _, full = model.encode_history(lat, ctx, cm, causal=True)
        state = WorldState()
        for n in range(FRAMES):
            _, outs = model.stream_step(lat[:, :, n:n + 1], ctx, cm, state)
            for layer, (mine, ref) in enumerate(zip(outs, full)):
                want = ref[:, n * per_frame:(n + 1) * per_frame]
                err = (mine - want).abs().max().item()
                assert err < 1e-5, f"frame {n} layer {layer}: {err}"
    assert state.frames == FRAMES
    dswa = [i for i, b in enumerate(model.video_dit.blocks) if b.kind == "DSWA"][0]
    assert state.kv[dswa][1].shape[1] == 9 * per_frame, "DSWA keeps the current frame and 8 before it"


def test_state_size_is_constant_and_reset_clears_it():
    model, lat, ctx, cm = setup()
    state = WorldState()
    sizes = []
    with torch.no_grad():
        for n in range(FRAMES):
            cache, _ = model.stream_step(lat[:, :, n:n + 1], ctx, cm, state)
            sizes.append(sum(kv[1].numel() for kv in state.kv.values()))
        actions = sample_actions(model, cache, ctx, cm, 4, steps=2, generator=torch.Generator().manual_seed(0))
    assert sizes[-1] == sizes[-2] == sizes[9], "the world state must stop growing once the windows are full"
    assert torch.all(torch.isfinite(actions))
    state.reset()
    assert state.frames == 0 and not state.kv and not state.gdn
