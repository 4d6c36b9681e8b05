"""Gated delta rule with a dispatcher by device.

    o, state = gated_delta_rule(q, k, v, g, beta, *, scale=None, initial_state=None,
                                output_final_state=False, use_qk_l2norm=True, backend="auto")

q, k (B, T, H, K); v (B, T, H, V); g = log decay (<= 0) and beta in (0, 1), both (B, T, H);
initial_state and the returned state (B, H, K, V) float32; o (B, T, H, V) in v's dtype.
Computed in float32 (fla: inputs in their own dtype, float32 accumulation). backend="auto":
CUDA -> fla-core when installed, else the project's Triton kernel; CPU -> the chunked path.
Explicit: "naive" | "chunked" | "triton" | "fla".
"""
from __future__ import annotations

import torch

from kairos_ros.ops.gated_delta.chunked import gated_delta_chunked
from kairos_ros.ops.gated_delta.fla_adapter import fla_available, gated_delta_fla
from kairos_ros.ops.gated_delta.naive import gated_delta_naive

BACKENDS = ("auto", "naive", "chunked", "triton", "fla")


def select_backend(backend: str, is_cuda: bool, has_fla: bool | None = None) -> str:
    """The concrete backend that `backend` stands for on this device."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown gated delta rule backend '{backend}' (one of {list(BACKENDS)})")
    if backend != "auto":
        return backend
    if not is_cuda:
        return "chunked"
    return "fla" if (fla_available() if has_fla is None else has_fla) else "triton"


def _check_shapes(q, k, v, g, beta, initial_state) -> None:
    if q.dim() != 4 or k.shape != q.shape:
        raise ValueError(f"q and k must both be (B, T, H, K); got {tuple(q.shape)} and {tuple(k.shape)}")
    b, t, h, dk = q.shape
    if v.dim() != 4 or v.shape[:3] != (b, t, h):
        raise ValueError(f"v must be (B, T, H, V) = ({b}, {t}, {h}, V); got {tuple(v.shape)}")
    for name, x in (("g", g), ("beta", beta)):
        if x.shape != (b, t, h):
            raise ValueError(f"{name} must be (B, T, H) = ({b}, {t}, {h}); got {tuple(x.shape)}")
    if initial_state is not None and initial_state.shape != (b, h, dk, v.shape[-1]):
        raise ValueError(f"initial_state must be (B, H, K, V) = ({b}, {h}, {dk}, {v.shape[-1]}); "
                         f"got {tuple(initial_state.shape)}")


def gated_delta_rule(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor, *,
                     scale: float | None = None, initial_state: torch.Tensor | None = None,
                     output_final_state: bool = False, use_qk_l2norm: bool = True,
                     backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor | None]:
    backend = select_backend(backend, q.is_cuda)
    _check_shapes(q, k, v, g, beta, initial_state)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if backend == "triton":
        from kairos_ros.ops.gated_delta.triton_kernel import gated_delta_triton  # imports triton only here

        o, s = gated_delta_triton(q, k, v, g, beta, scale, initial_state, use_qk_l2norm, output_final_state)
    elif backend == "fla":
        o, s = gated_delta_fla(q, k, v, g, beta, scale, initial_state, use_qk_l2norm, output_final_state)
    elif backend == "naive":
        o, s = gated_delta_naive(q, k, v, g, beta, scale, initial_state, use_qk_l2norm)
    else:
        o, s = gated_delta_chunked(q, k, v, g, beta, scale, initial_state, use_qk_l2norm)
    return o.to(v.dtype), (s if output_final_state else None)


__all__ = ["gated_delta_rule", "select_backend", "BACKENDS"]
