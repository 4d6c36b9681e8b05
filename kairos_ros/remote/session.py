"""Robot sessions for remote inference, independent of the transport.

One Session per connected robot: its own backend instance (so the streaming world state of one
robot never sees another's frames), its own observation history, instruction and reset. A
SessionManager caps how many exist and finds the idle ones. LatestSlot is the backpressure: one
pending request per session, a newer one replaces it (newest observation wins), so nothing queues
up behind a slow model. The websocket server (remote/server.py) drives these; another transport can
drive the same objects.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from kairos_ros.core.observation import ObservationHistory
from kairos_ros.core.types import ActionChunkData, ObservationData, PredictionData


class SessionLimit(RuntimeError):
    """max_sessions sessions are open already."""


@dataclass(frozen=True)
class ServedModel:
    """What every session of a server runs: the backend factory and the settings sent at connect."""

    make_backend: Callable[[], object]
    embodiment: str
    slot_names: tuple
    horizon: int
    step_period: float
    history_length: int
    backend: str = ""
    model: str = ""
    temporal_mode: str = ""
    num_predicted_frames: int = 0
    image_width: int = 0
    image_height: int = 0

    def metadata(self) -> dict:
        return {"backend": self.backend, "model": self.model, "embodiment": self.embodiment,
                "slot_names": list(self.slot_names), "horizon": self.horizon, "step_period": self.step_period,
                "temporal_mode": self.temporal_mode, "history_length": self.history_length,
                "num_predicted_frames": self.num_predicted_frames,
                "image": [self.image_width, self.image_height] if self.image_width else None}


@dataclass
class Request:
    """One inference request waiting for its session's turn."""

    id: int
    want_frames: bool
    received: float = field(default_factory=time.perf_counter)


class LatestSlot:
    """At most one pending request: put() returns the one it replaced (to be answered 'superseded')."""

    def __init__(self):
        self._lock = threading.Lock()
        self._item: Request | None = None

    def put(self, item: Request) -> Request | None:
        with self._lock:
            old, self._item = self._item, item
            return old

    def take(self) -> Request | None:
        with self._lock:
            item, self._item = self._item, None
            return item


class Prebuilt:
    """A backend factory that keeps one instance built ahead: a robot's session starts without
    waiting for the model to load (kairos: its weights), and the next spare is built on a thread of
    its own. `first` (e.g. the instance built to check the settings at start-up) is the first spare."""

    def __init__(self, make: Callable[[], object], first=None):
        self.make = make
        self._spare = first
        self._lock = threading.Lock()
        self._building = False

    def __call__(self):
        with self._lock:
            backend, self._spare = self._spare, None
            start = not self._building
            self._building = True
        if start:
            threading.Thread(target=self._build, name="spare-backend", daemon=True).start()
        return backend if backend is not None else self.make()

    def _build(self) -> None:
        try:
            spare = self.make()
        except Exception:  # the caller's own make() will raise it again, with its message
            spare = None
        with self._lock:
            self._spare, self._building = spare, False


class Session:
    """One robot's world state. observe/reset/set_instruction may come from the transport's thread
    while predict runs on a worker thread; the lock guards the history and the flags, and predict is
    only ever called by one thread at a time (the transport's per-session worker)."""

    def __init__(self, sid: str, served: ServedModel, backend, clock: Callable[[], float] = time.monotonic):
        self.id = sid
        self.served = served
        self.backend = backend
        self.clock = clock
        self.history = ObservationHistory(served.history_length)
        self.instruction = ""
        self.last_active = clock()
        self.predictions = 0
        self._reset_pending = False
        self._lock = threading.Lock()

    def touch(self) -> None:
        self.last_active = self.clock()

    def set_instruction(self, text: str) -> None:
        with self._lock:
            self.instruction = text

    def reset(self) -> None:
        """History cleared now, the backend's world state before the next prediction."""
        with self._lock:
            self.history.clear()
            self._reset_pending = True

    def observe(self, observations: list[ObservationData]) -> None:
        """Add observations (oldest first); each backend check runs here, so a bad one is refused
        before it enters the history. A stamp that goes backwards resets the world state."""
        for obs in observations:
            self.backend.check_observation(obs)
        with self._lock:
            for obs in observations:
                obs.instruction = self.instruction
                if self.history.add(obs):
                    self._reset_pending = True

    def predict(self, on_chunk: Callable[[ActionChunkData], None] | None = None) -> PredictionData:
        """The newest observation's prediction (on_chunk gets the chunk before any frame is made).
        A backend failure resets the world state (as the node does) and is raised again."""
        with self._lock:
            history = self.history.snapshot()
            if not history:
                raise ValueError("no observation in this session (since its start or last reset)")
            reset, self._reset_pending = self._reset_pending, False
        if reset:
            self.backend.reset()
        s = self.served
        try:
            if on_chunk is None:
                pred = self.backend.predict(history, s.horizon, s.step_period)
            else:
                pred = self.backend.predict_staged(history, s.horizon, s.step_period, on_chunk)
        except (ValueError, RuntimeError):
            self.reset()
            raise
        self.predictions += 1
        return pred

    @property
    def world_state_frames(self) -> int:
        return int(getattr(self.backend, "world_state_frames", len(self.history)))


class SessionManager:
    """Opens sessions up to max_sessions and names the idle ones. Thread-safe."""

    def __init__(self, served: ServedModel, max_sessions: int, idle_timeout: float,
                 clock: Callable[[], float] = time.monotonic):
        if max_sessions < 1 or idle_timeout <= 0:
            raise ValueError(f"max_sessions {max_sessions} must be >= 1 and idle_timeout {idle_timeout} > 0")
        self.served = served
        self.max_sessions = max_sessions
        self.idle_timeout = idle_timeout
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        self.opened = 0
        self._reserved = 0
        self._lock = threading.Lock()

    def reserve(self) -> None:
        """Hold a place before the (possibly slow) backend is built; SessionLimit when full."""
        with self._lock:
            if len(self.sessions) + self._reserved >= self.max_sessions:
                raise SessionLimit(f"{self.max_sessions} sessions open (max_sessions)")
            self._reserved += 1

    def release(self) -> None:
        with self._lock:
            self._reserved = max(0, self._reserved - 1)

    def open(self, backend=None) -> Session:
        """A new session in a reserved place (reserve() first), with `backend` or a new one."""
        backend = self.served.make_backend() if backend is None else backend
        session = Session(secrets.token_hex(8), self.served, backend, self.clock)
        with self._lock:
            self._reserved = max(0, self._reserved - 1)
            self.sessions[session.id] = session
            self.opened += 1
        return session

    def close(self, sid: str) -> None:
        with self._lock:
            self.sessions.pop(sid, None)

    def idle(self) -> list[str]:
        now = self.clock()
        with self._lock:
            return [sid for sid, s in self.sessions.items() if now - s.last_active > self.idle_timeout]

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.sessions)

    def full(self) -> bool:
        with self._lock:
            return len(self.sessions) + self._reserved >= self.max_sessions
