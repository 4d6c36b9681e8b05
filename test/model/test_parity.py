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
# Every tensor of outputs.safetensors, each compared below (a name the test does not produce fails it).
AB_NAMES = (  # cases A and B (action mode), prefixed "A." / "B."
    "action.layer0.out", "action.layer1.out", "action.layer2.out", "action.layer3.out",
    "action_pre.context", "action_pre.t", "action_pre.t_mod", "action_pre.tokens", "context", "context_mask",
    "kv_cache.layer0.k", "kv_cache.layer0.v", "kv_cache.layer1.k", "kv_cache.layer1.v", "kv_cache.layer2.k",
    "kv_cache.layer2.v", "mask.action_only@FA", "mask.action_with_video_cache@DSWA",
    "mask.action_with_video_cache@SWA", "mask.video_action_mixed@DSWA", "mask.video_action_mixed@SWA",
    "mask.video_only@DSWA", "mask.video_only@SWA", "pred_action", "video.layer0.out", "video.layer1.out",
    "video.layer2.out", "video.layer3.out", "video_pre.context", "video_pre.t", "video_pre.t_mod", "video_pre.x")
C_NAMES = (  # case C (joint video + action)
    "C.action.layer0.out", "C.action.layer1.out", "C.action.layer2.out", "C.action.layer3.out",
    "C.mask.action_only@FA", "C.mask.action_with_video_cache@DSWA", "C.mask.action_with_video_cache@SWA",
    "C.mask.video_action_mixed@DSWA", "C.mask.video_action_mixed@SWA", "C.mask.video_only@DSWA",
    "C.mask.video_only@SWA", "C.pred_action", "C.pred_video", "C.video.layer0.out", "C.video.layer1.out",
    "C.video.layer2.out", "C.video.layer3.out", "C.video_pre.t", "C.video_pre.t_mod", "C.video_pre.x")
D_NAMES = ("D.pred_video",)  # case D (video only)
COMPARED = tuple(f"{c}.{n}" for c in "AB" for n in AB_NAMES) + C_NAMES + D_NAMES


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
            _put(got, f"{case}.video_pre", cache.video_pre)
            for i, x in enumerate(video_layers):
                got[f"{case}.video.layer{i}.out"] = x
            for i, kv in enumerate(cache.kv):
                if kv is not None:
                    got[f"{case}.kv_cache.layer{i}.k"], got[f"{case}.kv_cache.layer{i}.v"] = kv
            t = torch.tensor([ACTION_T[case]])
            pred, action_layers, pre = model.action_velocity(inp[f"{case}.noisy_action"], t,
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
        got[f"{case}.mask.action_with_video_cache@{kind}"] = masks.action_with_cache_mask(frames * per, history * per,
                                                                                           n_act)
    return got


def test_every_fixture_tensor_matches(fixtures):
    model, inp, out = fixtures
    got = _run(model, inp)
    for case, frames, history in (("A", 1, 1), ("B", 6, 6), ("C", 6, 2)):
        got.update(_masks(case, frames, history))
    assert len(COMPARED) == len(set(COMPARED)) == 85
    assert set(COMPARED) == set(out), f"fixture file vs list: {sorted(set(COMPARED) ^ set(out))}"
    missing = sorted(set(COMPARED) - set(got))
    assert not missing, f"fixture tensors not produced: {missing}"
    worst = {}
    for name in COMPARED:
        mine, ref = got[name], out[name]
        assert tuple(mine.shape) == tuple(ref.shape), f"{name}: shape {tuple(mine.shape)} != {tuple(ref.shape)}"
        if ref.dtype == torch.bool:
            assert torch.equal(mine.bool(), ref), f"{name}: mask differs"
        else:
            worst[name] = (mine.double() - ref.double()).abs().max().item()
    bad = {k: v for k, v in worst.items() if not v <= ATOL}  # NaN fails too
    assert not bad, f"beyond atol {ATOL}: {bad}"
    assert len(worst) == 62  # 62 float tensors + 23 boolean masks
    assert torch.equal(got["D.pred_video"], got["C.pred_video"]), "video never attends actions"


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
