"""Semantic parity with the official Kairos modules (fixtures computed by the official code on the
CPU for a tiny configuration; see test/fixtures/kairos_parity/README.md). Every tensor in the
fixture file is compared; one the test does not produce fails the test."""
import os

import pytest
import torch
from safetensors.torch import load_file

from kairos_ros.model import masks
from kairos_ros.model.config import get_preset
from kairos_ros.model.wam import KairosWAM

FIX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "kairos_parity")
ATOL = 2e-5
ACTION_T = {"A": 500.0, "B": 812.5}


@pytest.fixture(scope="module")
def fixtures():
    inp = load_file(os.path.join(FIX, "inputs.safetensors"))
    out = load_file(os.path.join(FIX, "outputs.safetensors"))
    model = KairosWAM(get_preset("kairos-parity")).eval()
    state = {k: v.float() for k, v in load_file(os.path.join(FIX, "state_dict_fp16.safetensors")).items()}
    model.load_state_dict(state, strict=True)
    return model, inp, out


def _put(got, prefix, pre, names=("x", "t", "t_mod", "context")):
    for name in names:
        got[f"{prefix}.{'tokens' if name == 'x' and 'action' in prefix else name}"] = getattr(pre, name)


def _run(model, inp) -> dict:
    got = {}
    with torch.no_grad():
        for case in "AB":
            ctx, cm = model.context(inp["text_context"], inp["robot_state"], inp.get(f"{case}.text_mask"))
            got[f"{case}.context"], got[f"{case}.context_mask"] = ctx, cm
            cache, video_layers = model.encode_history(inp[f"{case}.history_latents"], ctx, cm)
            _put(got, f"{case}.video_pre", cache["video_pre"])
            for i, x in enumerate(video_layers):
                got[f"{case}.video.layer{i}.out"] = x
            for i, kv in enumerate(cache["kv"]):
                if kv is not None:
                    got[f"{case}.kv_cache.layer{i}.k"], got[f"{case}.kv_cache.layer{i}.v"] = kv
            pred, action_layers, pre = model.action_velocity(inp[f"{case}.noisy_action"], torch.tensor([ACTION_T[case]]),
                                                             cache, ctx, cm, return_layers=True)
            got[f"{case}.pred_action"] = pred
            _put(got, f"{case}.action_pre", pre)
            for i, x in enumerate(action_layers):
                got[f"{case}.action.layer{i}.out"] = x
        ctx, cm = model.context(inp["text_context"], inp["robot_state"])
        steps = torch.zeros(1, 24)
        steps[:, 8:] = 700.0  # history frames 0-1 at t = 0, future frames at 700
        res = model.joint_forward(inp["C.latents"], steps, 2, inp["C.noisy_action"], torch.tensor([500.0]), ctx, cm)
        got["C.pred_video"], got["C.pred_action"] = res["pred_video"], res["pred_action"]
        _put(got, "C.video_pre", res["video_pre"], ("x", "t", "t_mod"))
        for i, x in enumerate(res["video_layers"]):
            got[f"C.video.layer{i}.out"] = x
        for i, x in enumerate(res["action_layers"]):
            got[f"C.action.layer{i}.out"] = x
        got["D.pred_video"] = model.video_forward(inp["C.latents"], steps, 2, ctx, cm)
    return got


def _masks(case: str, frames: int, history: int) -> dict:
    per, n_act = 4, 8
    got = {f"{case}.mask.action_only@FA": torch.ones(n_act, n_act, dtype=torch.bool)}
    for kind in ("SWA", "DSWA"):
        got[f"{case}.mask.video_only@{kind}"] = masks.video_mask(frames, per, kind, 3, 4, history)
        got[f"{case}.mask.video_action_mixed@{kind}"] = masks.mixed_mask(frames, per, n_act, kind, 3, 4, history)
        got[f"{case}.mask.action_with_video_cache@{kind}"] = masks.action_with_cache_mask(frames * per, history * per, n_act)
    return got


def test_every_fixture_tensor_matches(fixtures):
    model, inp, out = fixtures
    got = _run(model, inp)
    for case, frames, history in (("A", 1, 1), ("B", 6, 6), ("C", 6, 2)):
        got.update(_masks(case, frames, history))
    missing = sorted(set(out) - set(got))
    assert not missing, f"fixture tensors not compared: {missing}"
    worst = {}
    for name, ref in out.items():
        mine = got[name]
        assert tuple(mine.shape) == tuple(ref.shape), f"{name}: shape {tuple(mine.shape)} != {tuple(ref.shape)}"
        if ref.dtype == torch.bool:
            assert torch.equal(mine.bool(), ref), f"{name}: mask differs"
        else:
            worst[name] = (mine.float() - ref.float()).abs().max().item()
    bad = {k: v for k, v in worst.items() if v > ATOL}
    assert not bad, f"beyond atol {ATOL}: {bad}"
    assert len(out) == 85 and len(worst) == 62  # the fixture file: 62 float tensors + 23 boolean masks


def test_video_never_attends_actions(fixtures):
    model, inp, _ = fixtures
    ctx, cm = model.context(inp["text_context"], inp["robot_state"])
    steps = torch.zeros(1, 24)
    steps[:, 8:] = 700.0
    with torch.no_grad():
        a = model.joint_forward(inp["C.latents"], steps, 2, inp["C.noisy_action"], torch.tensor([500.0]), ctx, cm)
        b = model.joint_forward(inp["C.latents"], steps, 2, inp["C.noisy_action"] * -3, torch.tensor([100.0]), ctx, cm)
    assert torch.equal(a["pred_video"], b["pred_video"])
    assert not torch.allclose(a["pred_action"], b["pred_action"])
