"""Remove the shared-memory files that Fast DDS processes leave behind when they die.

Each Fast DDS participant keeps a segment /dev/shm/fastdds_<id> (32 MB with the bundled
profile), and every listening port keeps /dev/shm/fastdds_port<N>. Next to each file is a lock
file <name>_el, which its users hold locked while they live. A process that exits cleanly removes
its files. A process that is killed (SIGKILL, a crash, the OOM killer) cannot, and /dev/shm is
RAM: the files stay until reboot. This is the check that `fastdds shm clean` makes on a ROS
install. A file is stale when nobody holds its lock file; it is removed only then, and only when
the lock file is older than `min_age` seconds, so a participant that is still starting up is left
alone.
"""
from __future__ import annotations

import fcntl
import os
import re
import time

SHM_DIR = "/dev/shm"
_LOCK_FILE = re.compile(r"^(fastdds_[A-Za-z0-9]+)_el$")


def clean_stale_fastdds(shm_dir: str = SHM_DIR, min_age: float = 10.0) -> list[str]:
    """Remove stale Fast DDS segment and port files from `shm_dir`; returns the names removed.

    Never raises for a file that vanished or cannot be opened meanwhile (another process cleaning
    at the same moment, or files of another user).
    """
    try:
        names = os.listdir(shm_dir)
    except OSError:  # no /dev/shm (not Linux) or not readable: nothing to clean
        return []
    removed = []
    now = time.time()
    for lock_name in sorted(names):
        match = _LOCK_FILE.match(lock_name)
        if not match:
            continue
        base = match.group(1)
        lock_path = os.path.join(shm_dir, lock_name)
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: its owner is alive
                continue
            try:
                if now - os.fstat(fd).st_mtime < min_age:
                    continue
            except OSError:
                continue
            for name in (base, f"sem.{base}_mutex", lock_name):  # the lock file last, still held
                try:
                    os.unlink(os.path.join(shm_dir, name))
                    removed.append(name)
                except FileNotFoundError:
                    pass
                except OSError:
                    break  # not ours to remove (another user's file): leave the rest in place
        finally:
            os.close(fd)
    return removed
