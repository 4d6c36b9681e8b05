"""Kernels. One folder per op: naive.py (the obviously correct reference), the fast CPU path and
the Triton kernel(s); each op's __init__ dispatches by device (CPU -> the PyTorch fast path,
CUDA -> Triton, or fla-core for the gated delta rule when installed).

    from kairos_ros.ops.gated_delta import gated_delta_rule
    from kairos_ros.ops.frame_attention import frame_window_attention, frame_window_mask
"""
