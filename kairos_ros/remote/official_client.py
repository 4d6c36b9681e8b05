"""Client of the official Kairos inference service (benchmarks/common/wam_service of the Kairos release).

The service is FastAPI: `GET /health`, and `POST /infer` whose request body is a pickled dict of
the keyword arguments of its engine's
`infer(robot_state, robot_action_horizon, input_image, prompt, wam_infer_mode, num_inference_steps)`,
and whose reply body is the pickled return value `(video_path, action)`: `action` a float32 array
(horizon, action_dim), `video_path` a path on the server's disk (or None in action mode).

Pickle from the network is remote code execution unless it is restricted, so this client:
- refuses to exist unless the caller opts in explicitly (`allow_pickle=True`; the backend's
  `official_allow_pickle: true`), saying why;
- decodes replies only with `safe_pickle.restricted_loads` (numpy arrays and plain builtins; any
  other global is refused by name before it is imported) and sends only what that unpickler admits;
- refuses a reply larger than `max_reply_bytes` from its Content-Length before reading it, and
  stops reading one without a Content-Length at the cap;
- bounds every connect, send and read by a timeout and the whole exchange by a deadline.
It cannot make the service safe: the service itself unpickles whatever any client sends it
(docs/remote-protocol.md, "Official Kairos client").
"""
from __future__ import annotations

import http.client
import math
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from kairos_ros.remote.safe_pickle import restricted_dumps, restricted_loads

PICKLE_REFUSAL = (
    "the official Kairos service speaks pickle, which runs code on whichever side unpickles untrusted bytes: "
    "this client decodes replies with a restricted unpickler (numpy arrays and plain builtins only), but the "
    "service unpickles every request it gets, from anyone who can reach it. Set official_allow_pickle: true "
    "to accept that, and keep the service on a private network (docs/remote-protocol.md)")
MODES = ("action", "video")
READ_PIECE = 64 * 1024


class OfficialServiceError(RuntimeError):
    """The service could not be reached, timed out, or answered something this client refuses."""


@dataclass(frozen=True)
class OfficialReply:
    action: np.ndarray  # (horizon, action_dim) float32
    video_path: str | None  # a path on the service's machine (not readable from here)
    latency: float  # seconds for the exchange


class OfficialClient:
    """Speaks the official service's /infer and /health (one request at a time per client)."""

    def __init__(self, url: str, allow_pickle: bool = False, timeout: float = 5.0,
                 max_reply_bytes: int = 16 * 1024 * 1024, ca_file: str = ""):
        if allow_pickle is not True:
            raise ValueError(f"refused to start: {PICKLE_REFUSAL}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"official service url {url!r} must be http://host:port or https://host:port")
        if parts.query or parts.fragment or parts.username:
            raise ValueError(f"official service url {url!r}: no query, fragment or credentials")
        if not (math.isfinite(timeout) and 0 < timeout <= 600):
            raise ValueError(f"timeout {timeout} must be in (0, 600] seconds")
        if not 1024 <= max_reply_bytes <= 1024 ** 3:
            raise ValueError(f"max_reply_bytes {max_reply_bytes} must be in [1 KiB, 1 GiB]")
        self.url = url
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base = parts.path.rstrip("/")
        self.timeout = float(timeout)
        self.max_reply_bytes = int(max_reply_bytes)
        self.ssl_context = ssl.create_default_context(cafile=ca_file or None) if parts.scheme == "https" else None

    # -- transport --------------------------------------------------------------------------------------
    def _connection(self):
        if self.ssl_context is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _exchange(self, method: str, path: str, body: bytes | None, content_type: str) -> tuple[int, bytes]:
        """(status, body) of one request; the body read only after its size is known to fit. A
        watchdog shuts the socket down at the deadline, so a service that trickles its headers or
        body a byte at a time cannot hold the exchange longer than self.timeout."""
        deadline = time.monotonic() + self.timeout
        conn = self._connection()
        expired = threading.Event()
        watchdog = None
        try:
            conn.connect()  # bounded by the connection's timeout
            sock = conn.sock  # the response may take it over (conn.sock = None on Connection: close)

            def expire():
                expired.set()
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
            watchdog.daemon = True
            watchdog.start()
            headers = {"Content-Type": content_type, "Accept": "application/octet-stream"} if body is not None else {}
            conn.request(method, self.base + path, body=body, headers=headers)
            resp = conn.getresponse()
            length = resp.getheader("Content-Length")
            if length is not None:
                if not length.strip().isdigit():
                    raise OfficialServiceError(f"{path}: bad Content-Length {length!r}")
                if int(length) > self.max_reply_bytes:
                    raise OfficialServiceError(f"{path}: reply of {int(length)} bytes exceeds max_reply_bytes "
                                               f"{self.max_reply_bytes}; not read")
            data = bytearray()
            while not expired.is_set():
                piece = resp.read1(min(READ_PIECE, self.max_reply_bytes + 1 - len(data)))
                if not piece:
                    break
                data += piece
                if len(data) > self.max_reply_bytes:
                    raise OfficialServiceError(f"{path}: reply exceeds max_reply_bytes {self.max_reply_bytes}; "
                                               "stopped reading")
            if expired.is_set():
                raise OfficialServiceError(f"{path}: no complete reply within {self.timeout} s")
            if length is not None and len(data) != int(length):
                raise OfficialServiceError(f"{path}: reply of {len(data)} bytes, Content-Length {int(length)}")
            return resp.status, bytes(data)
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set() or isinstance(exc, (socket.timeout, TimeoutError)):
                raise OfficialServiceError(f"{path}: no complete reply within {self.timeout} s") from None
            raise OfficialServiceError(f"{path}: {type(exc).__name__}: {exc}") from None
        finally:
            if watchdog is not None:
                watchdog.cancel()
            conn.close()

    # -- the protocol -----------------------------------------------------------------------------------
    def health(self) -> bool:
        """True when GET /health answers 200."""
        status, _ = self._exchange("GET", "/health", None, "")
        return status == 200

    def infer(self, robot_state: np.ndarray, horizon: int, input_image: np.ndarray, prompt: str,
              action_dim: int, num_inference_steps: int = 20, mode: str = "action") -> OfficialReply:
        """One /infer exchange; the reply's action checked to be (horizon, action_dim) float32, finite."""
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} must be one of {MODES}")
        state = np.ascontiguousarray(robot_state, dtype=np.float32)
        image = np.ascontiguousarray(input_image)
        if state.ndim != 1 or not np.all(np.isfinite(state)):
            raise ValueError(f"robot_state of shape {state.shape} must be 1-D and finite")
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"input_image {image.dtype} {image.shape} must be (H, W, 3) uint8 RGB")
        request = {"robot_state": state, "robot_action_horizon": int(horizon), "input_image": image,
                   "prompt": str(prompt), "wam_infer_mode": mode, "num_inference_steps": int(num_inference_steps)}
        body = restricted_dumps(request)
        start = time.monotonic()
        status, data = self._exchange("POST", "/infer", body, "application/octet-stream")
        latency = time.monotonic() - start
        if status != 200:
            raise OfficialServiceError(f"/infer answered HTTP {status} ({len(data)} bytes; body not decoded)")
        reply = restricted_loads(data)  # UnsafePickleError names a refused global
        return OfficialReply(*_parse_reply(reply, horizon, action_dim), latency)


def _parse_reply(reply, horizon: int, action_dim: int) -> tuple[np.ndarray, str | None]:
    """(action, video_path) from infer's return value (video_path, action), or a dict with those keys."""
    if isinstance(reply, dict):
        video_path, action = reply.get("video_path"), reply.get("action")
    elif isinstance(reply, (tuple, list)) and len(reply) == 2:
        video_path, action = reply
    else:
        raise OfficialServiceError(f"/infer reply of type {type(reply).__name__} is not (video_path, action)")
    if video_path is not None and not isinstance(video_path, str):
        raise OfficialServiceError(f"/infer reply: video_path of type {type(video_path).__name__}, not str or None")
    if not isinstance(action, np.ndarray):
        raise OfficialServiceError(f"/infer reply: action of type {type(action).__name__}, not a numpy array")
    if action.dtype != np.float32:
        raise OfficialServiceError(f"/infer reply: action dtype {action.dtype}, expected float32")
    if action.shape != (horizon, action_dim):
        raise OfficialServiceError(f"/infer reply: action of shape {action.shape}, expected ({horizon}, {action_dim})")
    if not np.all(np.isfinite(action)):
        raise OfficialServiceError("/infer reply: non-finite action values")
    return np.array(action, dtype=np.float32), video_path
