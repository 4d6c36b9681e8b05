"""fla-core (flash-linear-attention) on CUDA, behind this package's argument conventions.

The optional `fla` package shares our layout and meaning, which is why it can stand in:
  - q, k (B, T, H, K), v (B, T, H, V): fla's default `[B, T, H, ...]` layout (no head_first);
  - g is the log decay as given (use_gate_in_kernel=False), beta already in (0, 1)
    (use_beta_sigmoid_in_kernel=False);
  - use_qk_l2norm -> use_qk_l2norm_in_kernel: x / sqrt(sum x^2 + 1e-6), then q * scale, as ours;
  - state (B, H, K, V) float32 in both directions (state_v_first left False);
  - scale passed explicitly (fla's default is the same K ** -0.5).
Like Kairos, the fused recurrent kernel serves T <= 64 and the chunked one (chunk 64) longer inputs.
fla keeps q/k/v in their own dtype and accumulates in float32; g is handed over in float32 so
its within-chunk cumulative sum is not rounded to bf16.
"""
from __future__ import annotations


FUSED_RECURRENT_MAX_T = 64


def fla_available() -> bool:
    try:  # flash-linear-attention is optional: checked here, imported where it is used
        import fla.ops.gated_delta_rule  # noqa: F401
    except ImportError:
        return False
    return True


def gated_delta_fla(q, k, v, g, beta, scale, initial_state=None, use_qk_l2norm=True, output_final_state=True):
    try:
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule, fused_recurrent_gated_delta_rule
    except ImportError as exc:
        raise ValueError("backend 'fla' needs the optional flash-linear-attention package "
                         "(pip install fla-core)") from exc
    if not q.is_cuda:
        raise ValueError(f"backend 'fla' needs CUDA tensors, got device {q.device}")
    dtype = v.dtype
    q, k = q.to(dtype).contiguous(), k.to(dtype).contiguous()  # fla wants one dtype for q, k, v
    h0 = None if initial_state is None else initial_state.float().contiguous()
    fn = fused_recurrent_gated_delta_rule if q.shape[1] <= FUSED_RECURRENT_MAX_T else chunk_gated_delta_rule
    o, final = fn(q, k, v.contiguous(), g=g.float().contiguous(), beta=beta.contiguous(), scale=float(scale),
                  initial_state=h0, output_final_state=output_final_state, use_qk_l2norm_in_kernel=use_qk_l2norm)
    return o, (final.float() if output_final_state else None)
