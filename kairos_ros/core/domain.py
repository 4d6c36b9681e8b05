"""DDS domains on this host that no other kairos_ros run is using.

A graph replayed from a bag publishes /joint_states and camera topics; on a machine that also runs
a robot, sharing its DDS domain (0 by default, and LOCALHOST discovery still sees every local
participant) would hand that robot's nodes replayed data. Test runs and demos therefore take a
domain of their own: each candidate domain d has a lock file <tmp>/kairos_ros-domain-<d>.lock,
and a run holds an exclusive flock on its domain's file for as long as it lives (the kernel
drops it when the process ends, however it ends). Only kairos_ros runs take these locks; a
foreign graph on a domain is not detected, so the pool leaves 0 (the ROS default) out.
"""
from __future__ import annotations

import os
import tempfile

MAX_DOMAIN = 232  # the highest ROS_DOMAIN_ID whose Fast DDS / Cyclone ports stay below 65535
POOL = range(1, 201)


def parse_domain(value: str) -> int | None:
    """'auto' -> None (claim one); an integer 0..232 -> itself; anything else: ValueError naming it."""
    if value == "auto":
        return None
    try:
        domain = int(value)
    except ValueError:
        domain = -1
    if not 0 <= domain <= MAX_DOMAIN:
        raise ValueError(f"--domain '{value}' must be 'auto' or an integer in [0, {MAX_DOMAIN}] (ROS_DOMAIN_ID)")
    return domain


def claim_domain(pool=POOL, lock_dir: str | None = None, start: int | None = None):
    """(domain, handle): the first domain of `pool`, from a pid-dependent starting point, whose lock
    no other live process holds; the lock lasts while `handle` stays open (keep a reference).
    Without fcntl (not POSIX) or when every domain is taken: the pid-based domain, handle None."""
    pool = list(pool)
    first = (os.getpid() if start is None else start) % len(pool)
    order = pool[first:] + pool[:first]
    try:  # POSIX only
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return order[0], None
    lock_dir = lock_dir or tempfile.gettempdir()
    for domain in order:
        path = os.path.join(lock_dir, f"kairos_ros-domain-{domain}.lock")
        try:
            handle = open(path, "a+")
        except OSError:
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return domain, handle
    return order[0], None
