"""The websocket transport of kairos-serve (docs/remote-protocol.md).

The opening handshake answers /healthz, checks the bearer token in constant time and refuses a
full server; then the first message must be a hello within hello_timeout. Each session gets a
worker task that runs its newest request on a bounded thread pool (inference never runs on the
event loop, so one slow model call does not stall the other robots' sockets). A message that
breaks the protocol is answered with an error code and a short message, never a traceback; the
traceback of an unexpected failure goes to the server's log only.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from kairos_ros.remote import protocol as p
from kairos_ros.remote.session import LatestSlot, Request, Session, SessionLimit, SessionManager

log = logging.getLogger("kairos-serve")


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None  # None: no authentication (kairos-serve --insecure-no-auth only)
    ssl: object = None  # an ssl.SSLContext: wss
    max_message_bytes: int = 8 * 2**20
    max_sessions: int = 16
    idle_timeout: float = 60.0
    hello_timeout: float = 5.0
    workers: int = 2
    max_errors: int = 16  # bad messages in a row before the session is closed
    ping_interval: float = 5.0


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000.0, 3)


class RemoteServer:
    def __init__(self, settings: ServerSettings, manager: SessionManager):
        self.s = settings
        self.manager = manager
        served = manager.served
        self.rule = p.FrameRule(served.image_width, served.image_height, min(settings.max_message_bytes, 3 * p.MAX_SIDE**2))
        self.pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="infer")
        self.port = None
        self.refused = {"unauthorized": 0, "busy": 0, "not_found": 0}

    # -- opening handshake ----------------------------------------------------------------------
    def _process_request(self, connection, request):
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            body = json.dumps({"status": "ok", "protocol": p.PROTOCOL, "sessions": self.manager.count,
                               "max_sessions": self.manager.max_sessions})
            response = connection.respond(200, body + "\n")
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            return response
        if path != "/":
            self.refused["not_found"] += 1
            return connection.respond(404, "not found\n")
        if self.s.token is not None:
            try:
                auth = request.headers.get("Authorization") or ""
            except Exception:  # several Authorization headers
                auth = ""
            given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            if not hmac.compare_digest(given.encode("utf-8", "replace"), self.s.token.encode("utf-8")):
                self.refused["unauthorized"] += 1
                return connection.respond(401, "unauthorized\n")
        if self.manager.full():
            self.refused["busy"] += 1
            return connection.respond(503, "busy: max_sessions sessions are open\n")
        return None

    # -- a connection ---------------------------------------------------------------------------
    async def _send(self, ws, msg: dict) -> None:
        await ws.send(p.pack(msg))

    async def _handler(self, ws) -> None:
        try:
            await self._connection(ws)
        except ConnectionClosed:
            pass  # the client went away (or broke the size cap: closed with 1009 by the websocket layer)

    async def _connection(self, ws) -> None:
        try:
            raw = await asyncio.wait_for(ws.recv(), self.s.hello_timeout)
        except asyncio.TimeoutError:
            await ws.close(p.CLOSE_NO_HELLO, "no hello")
            return
        t0 = time.perf_counter()
        try:
            hello = p.unpack(raw, self.s.max_message_bytes)
            client_max = self._check_hello(hello)
        except p.ProtocolError as exc:
            await self._send(ws, p.error(exc.code, str(exc), timing={"server_ms": _ms(t0)}))
            await ws.close(p.CLOSE_PROTOCOL, exc.code)
            return
        try:
            self.manager.reserve()
        except SessionLimit as exc:
            await self._send(ws, p.error(p.BUSY, str(exc), timing={"server_ms": _ms(t0)}))
            await ws.close(p.CLOSE_BUSY, p.BUSY)
            return
        try:
            session = await asyncio.get_running_loop().run_in_executor(self.pool, self.manager.open)
        except Exception:
            self.manager.release()
            log.exception("could not start a session")
            await self._send(ws, p.error(p.INTERNAL, "could not start a session", timing={"server_ms": _ms(t0)}))
            await ws.close(p.CLOSE_PROTOCOL, p.INTERNAL)
            return
        log.info("session %s opened (client %r, %d open)", session.id, hello.get("client", ""), self.manager.count)
        try:
            await self._send(ws, {"type": "welcome", "protocol": p.PROTOCOL, "session": session.id,
                                  **self.manager.served.metadata(), "max_message_bytes": self.s.max_message_bytes,
                                  "idle_timeout": self.s.idle_timeout, "timing": {"server_ms": _ms(t0)}})
            await self._serve_session(ws, session, client_max)
        finally:
            self.manager.close(session.id)
            log.info("session %s closed (%d open)", session.id, self.manager.count)

    def _check_hello(self, hello: dict) -> int:
        served = self.manager.served
        if hello["type"] != "hello":
            raise p.ProtocolError(p.NOT_READY, "the first message must be a hello")
        version = p.get_int(hello, "protocol", 0, 2**31)
        if version != p.PROTOCOL:
            raise p.ProtocolError(p.PROTOCOL_VERSION, f"protocol {version} not served (this server: {p.PROTOCOL})")
        embodiment = p.get_str(hello, "embodiment")
        slots = p.get_names(hello, "slot_names")
        if embodiment != served.embodiment or tuple(slots) != tuple(served.slot_names):
            raise p.ProtocolError(p.MISMATCH, f"this server serves embodiment '{served.embodiment}' with slots "
                                              f"{list(served.slot_names)}")
        p.get_str(hello, "client", default="")
        return p.get_int(hello, "max_message_bytes", 1024, 2**31, default=self.s.max_message_bytes)

    async def _serve_session(self, ws, session: Session, client_max: int) -> None:
        slot, wake, busy = LatestSlot(), asyncio.Event(), [False]
        worker = asyncio.create_task(self._worker(ws, session, slot, wake, busy, client_max))
        errors = 0
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(), self.s.idle_timeout)
                except asyncio.TimeoutError:
                    if busy[0]:
                        continue  # the robot waits for a slow prediction: not idle
                    await ws.close(p.CLOSE_IDLE, "idle timeout")
                    return
                t0 = time.perf_counter()
                session.touch()
                reply = self._handle(raw, session, slot, wake, t0)
                if reply is not None:
                    errors = errors + 1 if reply["type"] == "error" and reply["code"] != p.SUPERSEDED else 0
                    reply.setdefault("timing", {"server_ms": _ms(t0)})
                    await self._send(ws, reply)
                    if errors >= self.s.max_errors:
                        await ws.close(p.CLOSE_PROTOCOL, "too many bad messages")
                        return
                else:
                    errors = 0
        except ConnectionClosed:
            pass
        finally:
            worker.cancel()

    def _handle(self, raw, session: Session, slot: LatestSlot, wake: asyncio.Event, t0: float) -> dict | None:
        rid = None
        try:
            msg = p.unpack(raw, self.s.max_message_bytes)
            kind = msg["type"]
            if kind not in ("infer", "reset", "instruction", "ping", "hello"):
                raise p.ProtocolError(p.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}")
            rid = p.get_int(msg, "id", 0, p.MAX_ID - 1)
            if kind == "infer":
                return self._infer(msg, rid, session, slot, wake, t0)
            if kind == "reset":
                session.reset()
                return {"type": "reset_done", "id": rid}
            if kind == "instruction":
                session.set_instruction(p.get_instruction(msg, "text"))
                return {"type": "instruction_set", "id": rid}
            if kind == "ping":
                return {"type": "pong", "id": rid, "time": time.time()}
            raise p.ProtocolError(p.BAD_MESSAGE, "hello was sent already")
        except p.ProtocolError as exc:
            return p.error(exc.code, str(exc), rid)

    def _infer(self, msg: dict, rid: int, session: Session, slot: LatestSlot, wake: asyncio.Event, t0: float):
        if "instruction" in msg:
            session.set_instruction(p.get_instruction(msg))
        if p.get_bool(msg, "reset"):
            session.reset()
        items = msg.get("observations")
        if not isinstance(items, list) or not 1 <= len(items) <= p.MAX_OBSERVATIONS:
            raise p.ProtocolError(p.BAD_MESSAGE, f"'observations' must be a list of 1..{p.MAX_OBSERVATIONS}")
        observations = [p.observation_from_wire(o, self.rule) for o in items]
        try:
            session.observe(observations)
        except ValueError as exc:
            raise p.ProtocolError(p.BAD_OBSERVATION, str(exc)) from None
        replaced = slot.put(Request(rid, p.get_bool(msg, "frames"), t0))
        wake.set()
        if replaced is not None:
            return p.error(p.SUPERSEDED, "a newer observation replaced this request before it ran", replaced.id)
        return None

    # -- inference ------------------------------------------------------------------------------
    async def _worker(self, ws, session: Session, slot: LatestSlot, wake: asyncio.Event, busy: list,
                      client_max: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await wake.wait()
            wake.clear()
            req = slot.take()
            if req is None:
                continue
            busy[0] = True
            try:
                await self._run(ws, session, req, loop, client_max)
            except ConnectionClosed:
                return
            finally:
                busy[0] = False

    async def _run(self, ws, session: Session, req: Request, loop, client_max: int) -> None:
        started = time.perf_counter()
        follow = req.want_frames and session.served.num_predicted_frames > 0
        sent = []

        def timing() -> dict:
            return {"queue_ms": round((started - req.received) * 1000.0, 3), "infer_ms": _ms(started),
                    "server_ms": _ms(req.received)}

        def on_chunk(chunk) -> None:  # on the pool thread, as soon as the chunk exists
            msg = {"type": "result", "id": req.id, "stamp": float(chunk.stamp),
                   "chunk": p.array_to_wire(chunk.values.astype("float32")), "frames_follow": follow,
                   "world_state_frames": session.world_state_frames, "timing": timing()}
            sent.append(asyncio.run_coroutine_threadsafe(self._send(ws, msg), loop))

        try:
            pred = await loop.run_in_executor(self.pool, session.predict, on_chunk)
        except (ValueError, RuntimeError) as exc:
            await self._after_chunk(sent)
            await self._send(ws, p.error(p.BACKEND_ERROR, str(exc), req.id, timing=timing()))
            return
        except Exception:
            log.exception("session %s: inference failed", session.id)
            await self._after_chunk(sent)
            await self._send(ws, p.error(p.INTERNAL, "internal error", req.id, timing=timing()))
            return
        await self._after_chunk(sent)
        if not follow:
            return
        frames = [p.array_to_wire(f) for f in pred.frames[:p.MAX_FRAMES]]
        msg = {"type": "frames", "id": req.id, "stamp": float(pred.stamp), "frames": frames,
               "frame_times": [float(t) for t in pred.frame_times[:p.MAX_FRAMES]], "timing": timing()}
        data = p.pack(msg)
        if len(data) > client_max:
            msg = p.error(p.BACKEND_ERROR, f"predicted frames of {len(data)} bytes exceed the client's "
                                           f"max_message_bytes {client_max}", req.id, timing=timing())
            data = p.pack(msg)
        await ws.send(data)

    async def _after_chunk(self, sent: list) -> None:
        """Wait until the chunk (sent from the pool thread) is out, so what follows comes after it."""
        for future in sent:
            await asyncio.wrap_future(future)

    # -- running --------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, on_ready=None) -> None:
        s = self.s
        async with serve(self._handler, s.host, s.port, process_request=self._process_request, ssl=s.ssl,
                         compression=None, max_size=s.max_message_bytes, max_queue=4, write_limit=2**16,
                         open_timeout=s.hello_timeout, ping_interval=s.ping_interval, ping_timeout=s.ping_interval,
                         close_timeout=2.0, server_header=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            if on_ready is not None:
                on_ready(self.port)
            await stop.wait()
        self.pool.shutdown(wait=False, cancel_futures=True)
