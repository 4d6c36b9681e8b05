"""Run by test_triton.py in a subprocess, with TRITON_INTERPRET=1 set before triton is imported:
the project's Triton kernels on CPU tensors against their naive references, small odd shapes.
Prints one JSON object {case: {"nan": bool, "out_rel": float, "state_rel": float | None, ...}}."""
import json
import os
import sys

import torch

assert os.environ.get("TRITON_INTERPRET") == "1", "run with TRITON_INTERPRET=1"

from kairos_ros.ops.frame_attention import frame_window_attention  # noqa: E402
from kairos_ros.ops.frame_attention.triton_kernel import frame_attention_triton  # noqa: E402
from kairos_ros.ops.gated_delta import gated_delta_rule  # noqa: E402
from kairos_ros.ops.gated_delta.triton_kernel import gated_delta_triton  # noqa: E402


def rel(a, b):
    return ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-6)).item()


def nan(*xs):
    return any(bool(torch.isnan(x).any()) for x in xs if x is not None)


def gdn_inputs(b, t, h, dk, dv, seed, l2=True):
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(b, t, h, dk, generator=gen), torch.randn(b, t, h, dk, generator=gen)
    if not l2:
        k = k / k.norm(dim=-1, keepdim=True)
    v = torch.randn(b, t, h, dv, generator=gen)
    g, beta = -torch.rand(b, t, h, generator=gen) * 0.5, torch.rand(b, t, h, generator=gen)
    return q, k, v, g, beta, torch.randn(b, h, dk, dv, generator=gen)


results = {}
# name: (B, T, H, K, V, initial state, l2, block_v)
GDN = {"T1_K12_V20": (2, 1, 2, 12, 20, False, True, None),
       "T37_K16_V40_h0_vblocks": (1, 37, 2, 16, 40, True, True, 16),
       "T70_K8_V33_h0_nol2": (1, 70, 2, 8, 33, True, False, None),
       "T130_K32_V16_h0": (1, 130, 1, 32, 16, True, True, None),
       "T100_K20_V24_h0_vblocks": (1, 100, 1, 20, 24, True, True, 16)}
for name, (b, t, h, dk, dv, with_h0, l2, bv) in GDN.items():
    q, k, v, g, beta, s0 = gdn_inputs(b, t, h, dk, dv, seed=t, l2=l2)
    s0 = s0 if with_h0 else None
    ref, s_ref = gated_delta_rule(q, k, v, g, beta, initial_state=s0, output_final_state=True, use_qk_l2norm=l2,
                                  scale=0.4, backend="naive")
    for mode in ("recurrent", "chunked"):
        out, s_out = gated_delta_triton(q, k, v, g, beta, 0.4, s0, l2, True, mode=mode, block_v=bv)
        results[f"gdn_{mode}_{name}"] = {"nan": nan(out, s_out), "out_rel": rel(out, ref),
                                         "state_rel": rel(s_out, s_ref)}

# Through the dispatcher (recurrent kernel up to 64 tokens, chunked above): state carry-over across two
# calls equals one naive run; no state when not asked.
q, k, v, g, beta, s0 = gdn_inputs(1, 110, 2, 16, 24, seed=4)
full, s_full = gated_delta_rule(q, k, v, g, beta, initial_state=s0, output_final_state=True, backend="naive")
a, s_a = gated_delta_rule(*(x[:, :29] for x in (q, k, v, g, beta)), initial_state=s0, output_final_state=True,
                          backend="triton")
b_, s_b = gated_delta_rule(*(x[:, 29:] for x in (q, k, v, g, beta)), initial_state=s_a, output_final_state=True,
                           backend="triton")
o_none, s_none = gated_delta_rule(q, k, v, g, beta, backend="triton")
results["gdn_state_carry_over"] = {"nan": nan(a, b_, s_b), "out_rel": rel(torch.cat([a, b_], 1), full),
                                   "state_rel": rel(s_b, s_full), "no_state_is_none": s_none is None}
bf, _ = gated_delta_rule(q.bfloat16(), k.bfloat16(), v.bfloat16(), g, beta, backend="triton")
bref, _ = gated_delta_rule(q.bfloat16(), k.bfloat16(), v.bfloat16(), g, beta, backend="naive")
results["gdn_bf16"] = {"nan": nan(bf), "out_rel": rel(bf, bref), "state_rel": None,
                       "dtype_ok": bf.dtype == torch.bfloat16}

# name: (kwargs, query frames, key frames, P, D, block sizes)
FRAME = {"swa": (dict(window=3), 7, 7, 5, 16, {}),
         "dswa": (dict(window=3, dilation=4), 11, 11, 5, 32, {}),
         "causal_stream": (dict(window=3, dilation=4, causal=True, q_start_frame=10, k_start_frame=2), 1, 9, 5, 16,
                           {}),
         "history": (dict(window=2, num_history_frames=3), 6, 6, 5, 16, {}),
         "history_causal_blocks": (dict(window=3, causal=True, num_history_frames=4), 8, 8, 3, 20,
                                   dict(block_m=16, block_n=32)),
         "large_frames_dswa": (dict(window=2, dilation=2, num_history_frames=2), 5, 5, 19, 16,
                               dict(block_m=16, block_n=16)),
         "rows_without_keys": (dict(window=1, q_start_frame=5, k_start_frame=4), 2, 2, 3, 16, {})}
for name, (kw, fq, fk, p, d, blocks) in FRAME.items():
    gen = torch.Generator().manual_seed(len(name))
    q = torch.randn(2, 2, fq * p, d, generator=gen)
    k = torch.randn(2, 2, fk * p, d, generator=gen)
    v = torch.randn(2, 2, fk * p, d, generator=gen)
    ref = frame_window_attention(q, k, v, tokens_per_frame=p, backend="naive", **kw)
    if blocks:
        out = frame_attention_triton(q, k, v, tokens_per_frame=p, **kw, **blocks)
    else:
        out = frame_window_attention(q, k, v, tokens_per_frame=p, backend="triton", **kw)
    results[f"frame_{name}"] = {"nan": nan(out), "out_rel": rel(out, ref), "state_rel": None}

# Strided (B, H, N, D) views of (B, N, H, D) tensors, as the model passes them, and an explicit scale.
gen = torch.Generator().manual_seed(9)
q, k, v = (torch.randn(1, 20, 2, 16, generator=gen).transpose(1, 2) for _ in range(3))
ref = frame_window_attention(q, k, v, tokens_per_frame=4, window=2, scale=0.2, backend="naive")
out = frame_window_attention(q, k, v, tokens_per_frame=4, window=2, scale=0.2, backend="triton")
results["frame_strided_views"] = {"nan": nan(out), "out_rel": rel(out, ref), "state_rel": None}

json.dump(results, sys.stdout)
