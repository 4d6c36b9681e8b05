"""One video-layer implementation (video_stack.py) behind every forward: the modules import in one
direction, the history encode that stops at the last K/V the action expert reads gives the same
cache bit for bit, and the joint forward's action half is action mode over the history K/V."""
import subprocess
import sys

import pytest
import torch

from kairos_ros.model import video_stack
from kairos_ros.model.config import get_preset
from kairos_ros.model.wam import KairosWAM


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = KairosWAM(get_preset("kairos-test")).eval()
    for p in model.parameters():  # the default init leaves adaLN at zero; make every path matter
        p.data.add_(0.05 * torch.randn_like(p))
    g = torch.Generator().manual_seed(1)
    lat = torch.randn(1, 16, 4, 4, 6, generator=g)
    ctx, cm = model.context(torch.randn(1, 3, model.cfg.video.text_dim, generator=g),
                            torch.randn(1, model.cfg.action.state_dim, generator=g))
    return model, lat, ctx, cm


def test_world_state_does_not_import_the_model():
    code = ("import sys; import kairos_ros.model.world_state, kairos_ros.model.video_stack; "
            "print(sorted(m for m in sys.modules if m == 'kairos_ros.model.wam'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_kv_only_history_is_the_same_cache(setup):
    model, lat, ctx, cm = setup
    with torch.no_grad():
        full, outs = model.encode_history(lat, ctx, cm)
        fast, partial = model.encode_history(lat, ctx, cm, kv_only=True)
    kinds = [b.kind for b in model.video_dit.blocks]
    last = video_stack.last_kv_layer(model.video_dit.blocks)
    assert kinds[last] != "GATED" and all(k == "GATED" for k in kinds[last + 1:])
    assert len(partial) == last and len(outs) == len(kinds)
    for a, b in zip(full.kv, fast.kv):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    x = torch.randn(1, 5, model.cfg.action.action_dim)
    with torch.no_grad():
        assert torch.equal(model.action_velocity(x, 400.0, full, ctx, cm), model.action_velocity(x, 400.0, fast, ctx, cm))


def test_a_stack_stopped_one_layer_early_is_noticed(setup, monkeypatch):
    """The equivalence check above can fail: a stack that stops before the last K/V layer differs."""
    model, lat, ctx, cm = setup
    with torch.no_grad():
        full, _ = model.encode_history(lat, ctx, cm)
        real = video_stack.last_kv_layer
        monkeypatch.setattr(video_stack, "last_kv_layer", lambda blocks: real(blocks) - 1)
        early, _ = model.encode_history(lat, ctx, cm, kv_only=True)
    assert any(a is not None and (b is None or not torch.equal(a[0], b[0])) for a, b in zip(full.kv, early.kv))


def test_joint_action_half_is_action_mode(setup):
    model, lat, ctx, cm = setup
    steps = torch.zeros(1, 4 * 6)
    steps[:, 2 * 6:] = 600.0  # two history frames, two noisy frames
    x = torch.randn(1, 5, model.cfg.action.action_dim)
    with torch.no_grad():
        joint = model.joint_forward(lat, steps, 2, x, torch.tensor([300.0]), ctx, cm)
        cache, _ = model.encode_history(lat[:, :, :2], ctx, cm)
        alone = model.action_velocity(x, torch.tensor([300.0]), cache, ctx, cm)
    assert torch.allclose(joint["pred_action"], alone, atol=1e-6)
    assert len(joint["action_layers"]) == len(model.action_dit.blocks)
