"""Gated delta rule with a dispatcher: CPU -> chunked PyTorch path; CUDA -> fla-core's Triton
kernels when the optional `fla` package is installed, else the project's own Triton kernel.

    o, state = gated_delta_rule(q, k, v, g, beta, scale=None, initial_state=None,
                                output_final_state=False, use_qk_l2norm=True, backend="auto")
q, k (B, T, H, K); v (B, T, H, V); g = log decay and beta (B, T, H); state (B, H, K, V) float32.
"""
from __future__ import annotations

from kairos_ros.ops.gated_delta.chunked import gated_delta_chunked
from kairos_ros.ops.gated_delta.naive import gated_delta_naive

BACKENDS = ("auto", "naive", "chunked", "triton", "fla")


def _fla(q, k, v, g, beta, scale, initial_state, use_qk_l2norm):
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule, fused_recurrent_gated_delta_rule

    fn = fused_recurrent_gated_delta_rule if q.shape[1] <= 64 else chunk_gated_delta_rule
    return fn(q, k, v, g=g, beta=beta, scale=scale, initial_state=initial_state, output_final_state=True,
              use_qk_l2norm_in_kernel=use_qk_l2norm)


def _fla_available() -> bool:
    try:
        import fla.ops.gated_delta_rule  # noqa: F401
    except ImportError:
        return False
    return True


def gated_delta_rule(q, k, v, g, beta, *, scale=None, initial_state=None, output_final_state=False,
                     use_qk_l2norm=True, backend="auto"):
    if backend not in BACKENDS:
        raise ValueError(f"unknown gated delta rule backend '{backend}' (one of {list(BACKENDS)})")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if backend == "auto":
        backend = ("fla" if _fla_available() else "triton") if q.is_cuda else "chunked"
    if backend == "triton":
        from kairos_ros.ops.gated_delta.triton_kernel import gated_delta_triton
        o, s = gated_delta_triton(q, k, v, g, beta, scale, initial_state, use_qk_l2norm)
    elif backend == "fla":
        o, s = _fla(q, k, v, g, beta, scale, initial_state, use_qk_l2norm)
    elif backend == "naive":
        o, s = gated_delta_naive(q, k, v, g, beta, scale, initial_state, use_qk_l2norm)
    else:
        o, s = gated_delta_chunked(q, k, v, g, beta, scale, initial_state, use_qk_l2norm)
    return o.to(v.dtype), (s if output_final_state else None)
