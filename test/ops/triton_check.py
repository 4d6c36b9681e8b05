"""Run by test_triton.py in a subprocess with TRITON_INTERPRET=1 set before triton is imported:
the project's Triton kernels against their naive references on small odd shapes."""
import json
import sys

import torch

from kairos_ros.ops.gated_delta import gated_delta_rule

results = {}
for t, dk, dv, with_h0 in ((1, 12, 20, False), (9, 16, 40, True), (23, 8, 33, True)):
    gen = torch.Generator().manual_seed(t)
    q, k = torch.randn(2, t, 2, dk, generator=gen), torch.randn(2, t, 2, dk, generator=gen)
    v = torch.randn(2, t, 2, dv, generator=gen)
    g, beta = -torch.rand(2, t, 2, generator=gen) * 0.5, torch.rand(2, t, 2, generator=gen)
    h0 = torch.randn(2, 2, dk, dv, generator=gen) if with_h0 else None
    ref, s_ref = gated_delta_rule(q, k, v, g, beta, initial_state=h0, output_final_state=True, backend="naive")
    out, s_out = gated_delta_rule(q, k, v, g, beta, initial_state=h0, output_final_state=True, backend="triton")
    results[f"T{t}_K{dk}_V{dv}"] = {
        "nan": bool(torch.isnan(out).any() or torch.isnan(s_out).any()),
        "out_rel": ((out - ref).abs().max() / ref.abs().max()).item(),
        "state_rel": ((s_out - s_ref).abs().max() / s_ref.abs().max()).item(),
    }

from kairos_ros.ops.frame_attention import frame_window_attention  # noqa: E402

for name, kw, fq, fk in (("swa", dict(window=3), 7, 7), ("dswa", dict(window=3, dilation=4), 11, 11),
                         ("causal_stream", dict(window=3, dilation=2, causal=True, q_start_frame=9, k_start_frame=4), 1, 6),
                         ("history", dict(window=2, num_history_frames=3), 6, 6)):
    gen = torch.Generator().manual_seed(len(name))
    p, d = 5, 12
    q = torch.randn(1, 2, fq * p, d, generator=gen)
    k = torch.randn(1, 2, fk * p, d, generator=gen)
    v = torch.randn(1, 2, fk * p, d, generator=gen)
    ref = frame_window_attention(q, k, v, tokens_per_frame=p, backend="naive", **kw)
    out = frame_window_attention(q, k, v, tokens_per_frame=p, backend="triton", **kw)
    results[f"frame_attention_{name}"] = {"nan": bool(torch.isnan(out).any()),
                                          "out_rel": ((out - ref).abs().max() / ref.abs().max()).item(),
                                          "state_rel": 0.0}
json.dump(results, sys.stdout)
