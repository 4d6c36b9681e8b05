"""Runs each node of the graph as its own process and stops every one of them cleanly.

Children run in their own process session (a terminal's Ctrl-C reaches only the bringup, which
forwards it) and get SIGTERM from the kernel if the bringup itself dies (PR_SET_PDEATHSIG), so no
node outlives it.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from kairos_ros.bringup.graph import ProcessSpec

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def command_for(spec: ProcessSpec, python: str = sys.executable) -> list[str]:
    if spec.is_node:
        return [python, "-m", spec.module, *spec.ros_args()]
    return [python, "-m", spec.module, *spec.arguments]


@dataclass
class Child:
    spec: ProcessSpec
    proc: subprocess.Popen
    log_path: str | None


class Supervisor:
    def __init__(self, log_dir: str | None = None, env: dict | None = None):
        self.log_dir = log_dir
        self.env = dict(os.environ if env is None else env)
        self.children: dict[str, Child] = {}
        self.stopping = False

    def start(self, spec: ProcessSpec) -> Child:
        log_path = None
        if self.log_dir:
            os.makedirs(self.log_dir, exist_ok=True)
            log_path = os.path.join(self.log_dir, f"{spec.name}.log")
            out = open(log_path, "w", buffering=1)
        else:
            out = None
        env = dict(self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
        proc = subprocess.Popen(command_for(spec), stdout=out, stderr=subprocess.STDOUT if out else None,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                                preexec_fn=_die_with_parent)
        if out is not None:
            out.close()
        child = Child(spec, proc, log_path)
        self.children[spec.name] = child
        return child

    def exited(self) -> list[tuple[str, int]]:
        """(name, exit code) of every child that has exited."""
        return [(name, c.proc.returncode) for name, c in self.children.items() if c.proc.poll() is not None]

    def alive(self) -> list[str]:
        return [name for name, c in self.children.items() if c.proc.poll() is None]

    def stop_all(self, timeout: float = 5.0) -> dict[str, int]:
        """SIGINT every child, then SIGTERM, then SIGKILL; returns each child's exit code."""
        self.stopping = True
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            live = [c for c in self.children.values() if c.proc.poll() is None]
            if not live:
                break
            for c in live:
                try:
                    os.killpg(c.proc.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(c.proc.poll() is None for c in live):
                time.sleep(0.05)
        return {name: c.proc.wait() for name, c in self.children.items()}
