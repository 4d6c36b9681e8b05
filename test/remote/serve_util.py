"""A real kairos-serve process for tests, and small raw-protocol helpers."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import numpy as np

from kairos_ros.core.types import JointStateData, ObservationData
from waiting import wait_for as _wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, "config", "aloha.yaml")
TOKEN = "test-token-0123456789abcdef"


def wait_for(predicate, timeout: float, period: float = 0.02) -> bool:
    """waiting.wait_for, polled more often: the servers answer within milliseconds."""
    return _wait_for(predicate, timeout, period)


def self_signed_certificate(directory) -> tuple[str, str]:
    """(certificate, key) PEM files for 127.0.0.1 / localhost, valid for a day, made by openssl."""
    cert, key = os.path.join(str(directory), "cert.pem"), os.path.join(str(directory), "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    return cert, key


class ServeProcess:
    """kairos-serve on a free loopback port; `url`, `port` once it printed its address."""

    def __init__(self, *args: str, token: str | None = TOKEN, config: str = CONFIG, port: int = 0, wait: bool = True,
                 env: dict | None = None):
        self.dir = tempfile.mkdtemp(prefix="kairos-serve-")
        cmd = [sys.executable, "-m", "kairos_ros.serve.cli", "--config", config, "--port", str(port), *args]
        if token is not None:
            self.token_file = os.path.join(self.dir, "token")
            with open(os.open(self.token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(token + "\n")
            cmd += ["--token-file", self.token_file]
        self.log = open(os.path.join(self.dir, "serve.log"), "w+")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        full_env.pop("KAIROS_SERVE_TOKEN", None)
        full_env.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=full_env, start_new_session=True)
        self.port, self._final = None, ""
        self.url = ""
        if wait:
            assert wait_for(lambda: self._address() or self.proc.poll() is not None, 30.0, 0.05), self.output()
            assert self.port, f"kairos-serve did not start:\n{self.output()}"

    def _address(self) -> bool:
        m = re.search(r" on (wss?)://127\.0\.0\.1:(\d+) ", self.output())
        if m:
            self.port, self.url = int(m.group(2)), f"{m.group(1)}://127.0.0.1:{m.group(2)}"
        return bool(m)

    def output(self) -> str:
        if self.log.closed:
            return self._final
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._close()

    def _close(self) -> None:
        """Keep the output, remove the token and log files."""
        if not self.log.closed:
            self._final = self.output()
            self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()
        return self.proc.returncode


def observation(spec, stamp: float, size=(144, 128), offset: float = 0.0) -> ObservationData:
    """An ALOHA-sized observation: joints between their limits (shifted by `offset`), a grey frame."""
    q = (np.asarray(spec.lower) + np.asarray(spec.upper)) / 2 + offset
    frame = np.full((*size, 3), 100, np.uint8)
    return ObservationData(stamp, ["composed"], [frame], JointStateData(stamp, list(spec.joint_names), q), "",
                           frame)
