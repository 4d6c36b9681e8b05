"""The action expert over a video cache: the function a flow-matching sampler calls 10-30 times
per chunk, written for few tensor operations (on a CPU, per-op overhead rivals the arithmetic).

The action expert's one layer implementation (action mode, the joint forward's action half and
training all run it; parity-tested against the official modules): per layer, adaLN (scale,
shift, gate), q/k/v in one GEMM, the q and k RMSNorms and RoPE in one pass each, attention over [history video K/V ;
action K/V] at SWA/DSWA layers (actions only at GATED layers), cross-attention to the context,
FFN. What does not change between flow steps (context embedding and its per-layer K/V, the
video K/V per head, fused weights) is prepared once per (cache, context, mask).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from kairos_ros.model.layers import apply_rope, attend, heads, rms


@dataclass
class ActionInputs:
    ctx_emb: torch.Tensor  # (B, L, Da) embedded context
    ctx_kv: list  # per layer (K, V) (B, H, L, hd) of the context
    ctx_mask: torch.Tensor | None  # (B, 1, 1, L) bool; None when all valid
    video_kv: list  # per layer (K, V) (B, H, n, hd) contiguous, or None (GATED)
    qkv: list  # per layer (weight (3W, Da), bias (3W,)) of self_attn.q/k/v
    qk_norm: list  # per layer (2, W): norm_q.weight, norm_k.weight
    modulation: torch.Tensor  # (L, 6, Da) with +1 folded into the two scale chunks
    rope: dict = field(default_factory=dict)  # horizon -> factors (A, hd/2) complex128, (1, A, 1, hd/2) complex64
    kv_buffers: dict = field(default_factory=dict)  # horizon -> layer -> [video ; action] K, V


def _version(t: torch.Tensor | None):
    """In-place modification counter (inference tensors have none; they are treated as constant)."""
    return None if t is None or t.is_inference() else t._version


def prepare(model, cache, context, ctx_mask) -> ActionInputs:
    """Memoised on the cache while gradients are off (sampling); rebuilt every call otherwise."""
    memo = cache._memo
    key = (_version(context), _version(ctx_mask), torch.is_inference_mode_enabled())
    refs = memo.get("refs", (None, None))
    if not torch.is_grad_enabled() and refs[0] is context and refs[1] is ctx_mask and memo["key"] == key:
        return memo["inputs"]
    a, n_heads = model.action_dit, model.cfg.action.num_heads
    ctx_emb = a.text_embedding(context.to(a.action_encoder.weight.dtype))
    video_kv = [None if kv is None else (heads(kv[0], n_heads).contiguous(), heads(kv[1], n_heads).contiguous())
                for kv in cache.kv]
    sa = [b.self_attn for b in a.blocks]
    qkv = [(torch.cat([s.q.weight, s.k.weight, s.v.weight]), torch.cat([s.q.bias, s.k.bias, s.v.bias])) for s in sa]
    qk_norm = [torch.stack([s.norm_q.weight, s.norm_k.weight]) for s in sa]
    one = torch.zeros(6, 1, dtype=ctx_emb.dtype, device=ctx_emb.device)
    one[0] = one[3] = 1.0  # (1 + scale) for the attention and FFN modulations
    modulation = torch.cat([b.modulation for b in a.blocks]) + one  # (L, 6, Da)
    mask = None if ctx_mask is None or bool(ctx_mask.all()) else ctx_mask[:, None, None, :]  # (B, 1, 1, L)
    inputs = ActionInputs(ctx_emb, [b.context_kv(ctx_emb) for b in a.blocks], mask, video_kv, qkv, qk_norm,
                          modulation)
    if not torch.is_grad_enabled():
        memo.update(refs=(context, ctx_mask), key=key, inputs=inputs)
    return inputs


def _rope(x: torch.Tensor, factors: tuple) -> torch.Tensor:
    """x (B, A, H', hd) times the action RoPE factors; float32 in four ops, other dtypes generically."""
    if x.dtype != torch.float32:
        return apply_rope(x, factors[0])
    b, n, h, d = x.shape
    return torch.view_as_real(torch.view_as_complex(x.view(b, n, h, d // 2, 2)) * factors[1]).view(b, n, h, d)


def rope_factors(model, inp: ActionInputs, horizon: int, device) -> tuple:
    if horizon not in inp.rope:
        f = model.action_dit.action_rope(horizon, device)  # (A, hd/2) complex128
        inp.rope[horizon] = (f, f.to(torch.complex64)[None, :, None, :])
    return inp.rope[horizon]


def _keys(inp: ActionInputs, i: int, k, v):
    """[history video ; action] K, V (B, H, n + A, hd). Without gradients the video part is copied
    once into buffers kept with the cache (so one cache serves one sampler at a time)."""
    video = inp.video_kv[i]
    if torch.is_grad_enabled():
        return torch.cat([video[0], k], 2), torch.cat([video[1], v], 2)
    bufs = inp.kv_buffers.setdefault(k.shape[2], {})
    if i not in bufs:
        bufs[i] = (torch.cat([video[0], k], 2), torch.cat([video[1], v], 2))
        return bufs[i]
    kb, vb = bufs[i]
    n = video[0].shape[2]
    kb[:, :, n:], vb[:, :, n:] = k, v
    return kb, vb


def action_layers(model, inp: ActionInputs, x: torch.Tensor, t_mod: torch.Tensor, rope: tuple):
    """x (B, A, Da) action tokens, t_mod (B, 6, Da) -> per-layer outputs [(B, A, Da)]."""
    a = model.action_dit
    b, n, d = x.shape
    width, nh = model.cfg.action.attn_dim, model.cfg.action.num_heads
    eps = model.cfg.action.eps
    mods = (inp.modulation + t_mod[:, None]).unsqueeze(3)  # (B, L, 6, 1, Da)
    outs = []
    for i, blk in enumerate(a.blocks):
        s0, b0, g0, s1, b1, g1 = mods[:, i].unbind(1)  # scale, shift, gate (attention); same (FFN)
        qkv = F.linear(torch.addcmul(b0, F.layer_norm(x, (d,), eps=eps), s0), *inp.qkv[i]).view(b, n, 3, width)
        qk = rms(qkv[:, :, :2], inp.qk_norm[i], eps).view(b, n, 2 * nh, -1)
        qk = _rope(qk, rope).transpose(1, 2)  # (B, 2H, A, hd)
        q, k = qk[:, :nh], qk[:, nh:]
        v = qkv[:, :, 2].unflatten(-1, (nh, -1)).transpose(1, 2)
        if inp.video_kv[i] is not None:  # SWA/DSWA: [history video ; actions]; GATED: actions only
            k, v = _keys(inp, i, k, v)
        o = attend(q, k, v).transpose(1, 2).reshape(b, n, width)
        sa, ca, ffn = blk.self_attn, blk.cross_attn, blk.ffn  # F.linear on the weights: no Module call overhead
        x = torch.addcmul(x, g0, F.linear(o, sa.o.weight, sa.o.bias))
        y = F.layer_norm(x, (d,), blk.cross_attn_norm.weight, blk.cross_attn_norm.bias, eps)
        cq = rms(F.linear(y, ca.q.weight, ca.q.bias), ca.norm_q.weight, eps).view(b, n, nh, -1).transpose(1, 2)
        co = attend(cq, *inp.ctx_kv[i], inp.ctx_mask)
        x = x + F.linear(co.transpose(1, 2).reshape(b, n, width), ca.o.weight, ca.o.bias)
        h = torch.addcmul(b1, F.layer_norm(x, (d,), eps=eps), s1)
        h = F.linear(F.silu(F.linear(h, ffn[0].weight, ffn[0].bias)), ffn[2].weight, ffn[2].bias)
        x = torch.addcmul(x, g1, h)
        outs.append(x)
    return outs
