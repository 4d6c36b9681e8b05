"""Kernels. One folder per op: naive.py (the obviously correct reference), the fast CPU path, and
(to come) the Triton kernel; each op's __init__ dispatches by device."""
