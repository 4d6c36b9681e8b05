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
json.dump(results, sys.stdout)
