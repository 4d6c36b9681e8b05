"""The client side of the remote-inference link (docs/remote-protocol.md): one websocket to
kairos-serve, kept up by a background thread that reconnects with exponential backoff.

The caller (the remote backend's inference thread) sends a request and reads replies with a
deadline; any failure marks the link down at once, so a lost server costs one reply timeout at most
and the next calls fail fast until the link is back. The token goes into the handshake's
Authorization header only: it is never logged or put into an error message.
"""
from __future__ import annotations

import ipaddress
import os
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import connect

from kairos_ros.remote import protocol as p

TOKEN_ENV = "KAIROS_REMOTE_TOKEN"
CONNECTING, CONNECTED, DOWN, IDLE, REFUSED, CLOSED = "connecting", "connected", "down", "idle", "refused", "closed"


class LinkDown(RuntimeError):
    """The request could not be made or answered; the message says why (no secrets in it)."""


def read_token(path: str) -> str:
    """The token from `path`, else from $KAIROS_REMOTE_TOKEN, else '' (no Authorization header)."""
    if not path:
        return os.environ.get(TOKEN_ENV, "").strip()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(4096).strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"parameter 'remote_token_file' = '{path}': cannot read it ({exc.__class__.__name__})") from None


def check_url(url: str, allow_plaintext: bool) -> None:
    u = urlparse(url)
    if u.scheme not in ("ws", "wss") or not u.hostname:
        raise ValueError(f"parameter 'remote_url' = '{url}' must be ws://host:port or wss://host:port")
    if u.username or u.password:
        raise ValueError("parameter 'remote_url' must not hold credentials: use remote_token_file")
    if u.scheme == "ws" and not allow_plaintext:
        try:
            loopback = u.hostname == "localhost" or ipaddress.ip_address(u.hostname).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"parameter 'remote_url' = '{url}': plain ws:// to a host that is not loopback sends the "
                             "token and observations in clear; use wss:// (or remote_allow_plaintext)")


@dataclass
class LinkSettings:
    url: str
    hello: dict  # the hello message's fields (embodiment, slot_names, client, ...)
    token: str = ""
    ca_file: str = ""
    connect_timeout: float = 2.0
    backoff_initial: float = 0.1
    backoff_max: float = 5.0
    max_message_bytes: int = 16 * 2**20
    ping_interval: float = 5.0
    expect: dict = field(default_factory=dict)  # welcome fields that must equal these values


def _short(exc: BaseException) -> str:
    if isinstance(exc, InvalidStatus):
        return f"handshake refused: HTTP {exc.response.status_code}"
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text[:160]}"


class RemoteLink:
    def __init__(self, settings: LinkSettings):
        self.s = settings
        self.state = CONNECTING
        self.welcome: dict = {}
        self.session = ""
        self.connects = 0
        self.last_error = ""
        self._ws = None
        self._lock = threading.Lock()  # guards _ws and state changes
        self._wake = threading.Event()
        self._up = threading.Event()
        self._closing = False
        self._ssl = None
        if settings.url.startswith("wss://"):
            self._ssl = ssl.create_default_context(cafile=settings.ca_file or None)
        self._thread = threading.Thread(target=self._keep_up, name="remote-link", daemon=True)
        self._thread.start()

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)

    # -- the background thread ------------------------------------------------------------------
    def _keep_up(self) -> None:
        backoff = self.s.backoff_initial
        while not self._closing:
            if self.state in (CONNECTED, IDLE):
                self._wake.wait()
                self._wake.clear()
                continue
            try:
                self._connect()
                backoff = self.s.backoff_initial
            except (OSError, TimeoutError, WebSocketException, p.ProtocolError, LinkDown) as exc:
                with self._lock:
                    if self._closing:
                        return
                    self.state = REFUSED if isinstance(exc, (InvalidStatus, p.ProtocolError)) else DOWN
                    self.last_error = _short(exc)
                self._wake.wait(backoff)
                self._wake.clear()
                backoff = min(backoff * 2.0, self.s.backoff_max)

    def _connect(self) -> None:
        headers = {"Authorization": f"Bearer {self.s.token}"} if self.s.token else None
        ws = connect(self.s.url, ssl=self._ssl, additional_headers=headers, open_timeout=self.s.connect_timeout,
                     compression=None, proxy=None, legacy=True, max_size=self.s.max_message_bytes, max_queue=4,
                     ping_interval=self.s.ping_interval, ping_timeout=self.s.ping_interval, close_timeout=1.0)
        try:
            ws.send(p.pack({"type": "hello", "protocol": p.PROTOCOL, "max_message_bytes": self.s.max_message_bytes,
                            **self.s.hello}))
            welcome = p.unpack(ws.recv(timeout=self.s.connect_timeout), self.s.max_message_bytes)
            if welcome["type"] == "error":
                raise p.ProtocolError(str(welcome.get("code"))[:40], str(welcome.get("message"))[:300])
            if welcome["type"] != "welcome" or welcome.get("protocol") != p.PROTOCOL:
                raise p.ProtocolError(p.PROTOCOL_VERSION, "no welcome for this protocol version")
            for key, want in self.s.expect.items():
                got = welcome.get(key)
                same = abs(got - want) < 1e-9 if isinstance(want, float) and isinstance(got, (int, float)) \
                    else got == want
                if not same:
                    raise p.ProtocolError(p.MISMATCH, f"server has {key} = {str(got)[:200]}, this robot {want}")
        except BaseException:
            ws.close()
            raise
        with self._lock:
            if self._closing:
                ws.close()
                return
            self._ws, self.welcome, self.session = ws, welcome, str(welcome.get("session", ""))[:64]
            self.state, self.last_error = CONNECTED, ""
            self.connects += 1
            self._up.set()

    # -- the caller's side ----------------------------------------------------------------------
    def ensure(self, timeout: float) -> None:
        """Make sure a connection is wanted (after an idle close) and wait up to `timeout` for it."""
        with self._lock:
            if self.state == IDLE:
                self.state = CONNECTING
                self._wake.set()
        if not self._up.wait(timeout):
            raise LinkDown(f"remote link {self.state}: {self.last_error or 'not connected yet'}")

    def lost(self, why: str, idle: bool = False) -> None:
        with self._lock:
            ws, self._ws = self._ws, None
            self._up.clear()
            if not self._closing:
                self.state = IDLE if idle else DOWN
            self.last_error = why
            self._wake.set()
        if ws is not None:
            ws.close()

    def send(self, msg: dict) -> str:
        """Send on the current connection; returns its session id (changes after a reconnect)."""
        with self._lock:
            ws, session = self._ws, self.session
        if ws is None:
            raise LinkDown(f"remote link {self.state}: {self.last_error or 'not connected'}")
        try:
            ws.send(p.pack(msg))
        except (ConnectionClosed, OSError) as exc:
            self._closed(ws, exc)
        return session

    def recv(self, deadline: float) -> dict:
        """The next message before the monotonic `deadline`."""
        with self._lock:
            ws = self._ws
        if ws is None:
            raise LinkDown(f"remote link {self.state}: {self.last_error or 'not connected'}")
        try:
            raw = ws.recv(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise LinkDown("no reply within remote_reply_timeout") from None
        except (ConnectionClosed, OSError) as exc:
            self._closed(ws, exc)
        return p.unpack(raw, self.s.max_message_bytes)

    def _closed(self, ws, exc) -> None:
        rcvd = getattr(exc, "rcvd", None)
        idle = rcvd is not None and rcvd.code == p.CLOSE_IDLE
        why = f"closed by the server ({rcvd.code} {rcvd.reason[:80]})" if rcvd is not None else _short(exc)
        with self._lock:
            current = self._ws is ws
        if current:
            self.lost(why, idle)
        raise LinkDown(f"remote link lost: {why}")

    def close(self) -> None:
        with self._lock:
            self._closing = True
            self.state = CLOSED
            self._wake.set()
        self.lost("closed")
        self._thread.join(timeout=2.0)
