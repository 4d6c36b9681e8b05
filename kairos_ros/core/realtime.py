"""Process set-up that keeps message handling latency low: allocator, garbage collector, threads.

A 640x480 camera frame is about 1 MB. Every received or published frame allocates buffers of that
size (the middleware's C message, Python's copy of it, numpy arrays). glibc serves blocks of
128 KiB and more with fresh mmap() pages by default, and gives freed memory back to the kernel
eagerly. Each frame then page-faults its buffers in again: measured here, taking a 921 KB
sensor_msgs/Image cost 1.4 ms that way against 0.3 ms with the settings below. Keeping such
blocks in the heap (and the heap from shrinking) is the usual real-time practice; the price is that
a node keeps up to `trim_threshold` bytes of freed memory for reuse instead of returning it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
import threading

# mallopt() parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 1024 * 1024  # the ceiling of glibc's own dynamic threshold on 64-bit
TRIM_THRESHOLD = 256 * 1024 * 1024


def tune_allocator(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> dict:
    """Ask glibc to serve large blocks from the heap and keep freed memory for reuse.

    Returns what was applied, {setting: bool}; empty where the C library is not glibc (macOS,
    musl): the node then runs with that library's own behaviour, only with slower large messages.
    """
    for name, value in (("mmap_threshold", mmap_threshold), ("trim_threshold", trim_threshold)):
        if not 0 < int(value) < 2 ** 31:
            raise ValueError(f"{name} = {value} must be a positive C int (below 2**31)")
    if not sys.platform.startswith("linux"):
        return {}
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return {}
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return {"mmap_threshold": bool(mallopt(M_MMAP_THRESHOLD, int(mmap_threshold))),
            "trim_threshold": bool(mallopt(M_TRIM_THRESHOLD, int(trim_threshold)))}


def limit_torch_threads(threads: int = 1) -> bool:
    """Cap torch's intra-op threads in a node that only uses torch for small image kernels.

    On a machine shared with inference, a second OpenMP worker spinning after every resize took a
    quarter of a core in the perception node and delayed the other nodes. Returns False when
    torch is not installed (conversion then falls back to Pillow and needs no cap).
    """
    try:  # optional here: nodes without a torch backend run without it
        import torch
    except ImportError:
        return False
    torch.set_num_threads(max(1, int(threads)))
    return True


def freeze_startup_objects() -> None:
    """Move everything allocated so far out of the garbage collector's view.

    A node that has imported torch and built its model holds about 180,000 tracked objects; one
    full collection of them took 60-70 ms here, a pause that lands on whatever message is in
    flight. Objects made at start-up (modules, the model, parameter tables) live as long as the
    process, so scanning them again finds nothing. After gc.freeze() a full collection scans only
    what the node made since, and reference cycles created while running are still collected.
    """
    gc.collect()
    gc.freeze()


def thaw_objects() -> None:
    """Undo freeze_startup_objects() at shut-down and collect.

    Frozen objects in reference cycles are never freed. If the middleware's context is one of them,
    its DDS participant is not deleted at exit, and Fast DDS then leaves its shared-memory segment
    behind in /dev/shm (seen with the world model node: two segments per run, which add up in a
    RAM-backed filesystem).
    """
    gc.unfreeze()
    gc.collect()


def lower_thread_priority(nice: int) -> bool:
    """Give the calling thread (only it, on Linux) the nice value `nice`: a worker below control.
    Nice, not SCHED_IDLE: a thread starved while holding the GIL would stall control's thread too.
    Returns False where the platform does not allow it."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError):
        return False
    return True
