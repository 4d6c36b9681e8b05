"""python -m kairos_ros.bringup.child MODULE [ARGS...]: `python -m MODULE ARGS` that the kernel
sends SIGTERM when the process that started it dies (Linux, PR_SET_PDEATHSIG; it survives the
exec). The launch file runs the bag player through it: `ros2 launch` given SIGTERM exits without
stopping its processes (ros2/launch#666), and the player is no kairos_ros node with a parent watch
of its own (nodes.common.watch_parent). KAIROS_PARENT_WATCH=0 turns it off, as for the nodes.
The kernel acts when the parent's *thread* that started this process exits: launch starts its
processes from its main thread."""
from __future__ import annotations

import os
import sys

from kairos_ros.bringup.supervisor import _die_with_parent


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m kairos_ros.bringup.child MODULE [ARGS...]", file=sys.stderr)
        return 2
    parent = os.getppid()
    if os.environ.get("KAIROS_PARENT_WATCH", "1") != "0" and sys.platform.startswith("linux"):
        _die_with_parent()
        if os.getppid() != parent:  # the parent died before the request: nothing left to serve
            return 1
    os.execv(sys.executable, [sys.executable, "-m", *argv])
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
