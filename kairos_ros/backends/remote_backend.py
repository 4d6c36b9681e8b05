"""The `remote` backend: the world model runs in kairos-serve, reached over a websocket.

Each call sends the observations the server has not seen yet in this session (all of the history
after a (re)connect or reset, else only the new ones) and reads the chunk back, then the predicted
frames when asked for. The chunk keeps the observation's own stamp, so the round trip is part of the
chunk's age exactly like in-process inference time: the node's latency figure and the adapter's
dropping of rows already in the past both include it. When the link is down a call fails at once
(RuntimeError): the node publishes no chunk, and the adapter's watchdog holds the robot.
"""
from __future__ import annotations

import itertools
import time
from typing import Callable, Sequence

import numpy as np

from kairos_ros.backends.base import Backend, _check_history
from kairos_ros.core.diagnostics import LatencyStats
from kairos_ros.core.types import ActionChunkData, ObservationData, PredictionData
from kairos_ros.remote import protocol as p
from kairos_ros.remote.client import IDLE, LinkDown, LinkSettings, RemoteLink, check_url, read_token


class RemoteBackend(Backend):
    name = "remote"
    model = "remote (not connected yet)"

    def __init__(self, spec, num_predicted_frames: int = 0, horizon: int = 32, step_period: float = 0.0,
                 publish_frames: bool = True, remote_url: str = "ws://127.0.0.1:8765", remote_token_file: str = "",
                 remote_ca_file: str = "", remote_allow_plaintext: bool = False, remote_connect_timeout: float = 2.0,
                 remote_reply_timeout: float = 1.0, remote_frames_timeout: float = 30.0,
                 remote_backoff_max: float = 5.0,
                 remote_image_encoding: str = "raw", remote_jpeg_quality: int = 90,
                 remote_max_message_bytes: int = 16 * 2**20):
        super().__init__(spec, num_predicted_frames)
        check_url(remote_url, remote_allow_plaintext)
        if remote_image_encoding not in p.ENCODINGS:
            raise ValueError(f"parameter 'remote_image_encoding' = '{remote_image_encoding}' must be one of "
                             f"{list(p.ENCODINGS)}")
        self.horizon = int(horizon)
        self.step_period = float(step_period or spec.default_step_period)
        self.want_frames = bool(publish_frames and num_predicted_frames > 0)
        self.encoding, self.quality = remote_image_encoding, int(remote_jpeg_quality)
        self.reply_timeout = float(remote_reply_timeout)
        self.frames_timeout = float(remote_frames_timeout)
        self.connect_timeout = float(remote_connect_timeout)
        self.url = remote_url
        settings = LinkSettings(
            remote_url, {"embodiment": spec.name, "slot_names": list(spec.slot_names), "client": "kairos_ros"},
            read_token(remote_token_file), remote_ca_file, remote_connect_timeout, 0.1, remote_backoff_max,
            int(remote_max_message_bytes),
            expect={"embodiment": spec.name, "slot_names": list(spec.slot_names), "horizon": self.horizon,
                    "step_period": self.step_period})
        self.link = RemoteLink(settings)
        self.ids = itertools.count(1)
        self.rtt = LatencyStats(500)
        self.server_ms = LatencyStats(500)
        self.failures = 0
        self._session = ""  # the server session that has seen self._sent_stamp
        self._sent_stamp: float | None = None
        self._sent_instruction: str | None = None
        self._reset_pending = False
        self._first = True

    # -- the backend interface ------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self._reset_pending = True
        self._sent_stamp = None

    def check_observation(self, obs: ObservationData) -> None:
        image = self.link.welcome.get("image") if self.link.welcome else None
        if image and obs.composed is not None and tuple(obs.composed.shape[1::-1]) != tuple(image):
            raise ValueError(f"composed image {obs.composed.shape[1]}x{obs.composed.shape[0]} (width x height) differs "
                             f"from the served model's {image[0]}x{image[1]}")

    def predict(self, history: Sequence[ObservationData], horizon: int, step_period: float) -> PredictionData:
        return self.predict_staged(history, horizon, step_period, lambda _chunk: None)

    def predict_staged(self, history: Sequence[ObservationData], horizon: int, step_period: float,
                       on_chunk: Callable[[ActionChunkData], None]) -> PredictionData:
        _check_history(history)
        if horizon != self.horizon or abs(step_period - self.step_period) > 1e-9:
            raise ValueError(f"horizon {horizon} / step_period {step_period}: this link was set up for "
                             f"{self.horizon} / {self.step_period}")
        try:
            return self._call(history, on_chunk)
        except LinkDown as exc:
            self.failures += 1
            raise RuntimeError(str(exc)) from None
        except p.ProtocolError as exc:  # the server's reply broke the protocol: start a fresh session
            self.failures += 1
            self.link.lost(f"bad reply: {exc}")
            raise RuntimeError(f"bad reply from the server ({exc.code}): {exc}") from None

    def imagine(self, history: Sequence[ObservationData], candidate: ActionChunkData) -> PredictionData:
        raise RuntimeError("Imagine is not served over the remote link")

    # -- one request ----------------------------------------------------------------------------
    def _message(self, history, session: str) -> dict:
        if session != self._session:  # a new server session (first call or reconnect): it has seen nothing
            self._sent_stamp, self._sent_instruction = None, None
        new = [o for o in history if self._sent_stamp is None or o.stamp > self._sent_stamp] or [history[-1]]
        msg = {"type": "infer", "id": next(self.ids) % p.MAX_ID, "frames": self.want_frames,
               "observations": [p.observation_to_wire(o, self.encoding, self.quality)
                                for o in new[-p.MAX_OBSERVATIONS:]]}
        if self._reset_pending:
            msg["reset"] = True
        instruction = history[-1].instruction or ""
        if instruction != self._sent_instruction:
            msg["instruction"] = instruction
        return msg

    def _send(self, history) -> tuple[dict, float]:
        """Send the request; after the server closed an idle session, reconnect once and resend."""
        for attempt in (0, 1):
            # Wait for a connection on first use and after an idle close (both expected to succeed
            # at once); a link that is down fails at once, so the node publishes nothing.
            self.link.ensure(self.connect_timeout if self._first or self.link.state == IDLE else 0.0)
            self._first = False
            msg = self._message(history, self.link.session)
            start = time.monotonic()
            try:
                self._session = self.link.send(msg)
                return msg, start
            except LinkDown:
                if attempt or self.link.state != IDLE:
                    raise
        raise AssertionError("unreachable")

    def _call(self, history, on_chunk) -> PredictionData:
        msg, start = self._send(history)
        deadline = start + self.reply_timeout
        self._reset_pending = False
        self._sent_stamp = history[-1].stamp
        self._sent_instruction = msg.get("instruction", self._sent_instruction)
        reply = self._reply(msg["id"], deadline, ("result",))
        self.rtt.add(time.monotonic() - start)
        timing = reply.get("timing")
        server_ms = timing.get("server_ms") if isinstance(timing, dict) else None
        if isinstance(server_ms, (int, float)) and not isinstance(server_ms, bool) and 0 <= server_ms <= 1e7:
            self.server_ms.add(float(server_ms) / 1000.0)  # bounded: NaN and absurd values are not figures
        chunk = self._chunk(reply, history[-1])
        self.world_state_frames = p.get_int(reply, "world_state_frames", 0, 2**31, default=0)
        on_chunk(chunk)
        frames, times = [], []
        if p.get_bool(reply, "frames_follow"):
            frames, times = self._frames(self._reply(msg["id"], time.monotonic() + self.frames_timeout, ("frames",)))
        return PredictionData(chunk.stamp, frames, times, chunk)

    def _reply(self, rid: int, deadline: float, kinds: tuple) -> dict:
        while True:
            reply = self.link.recv(deadline)
            if reply.get("id") != rid:
                continue  # a late reply to a request given up on
            if reply["type"] == "error":
                code, text = str(reply.get("code"))[:40], str(reply.get("message"))[:300]
                raise (ValueError if code in (p.BAD_OBSERVATION, p.BACKEND_ERROR) else RuntimeError)(
                    f"server refused the request ({code}): {text}")
            if reply["type"] not in kinds:
                raise p.ProtocolError(p.UNKNOWN_TYPE, f"unexpected {reply['type'][:40]!r} reply")
            return reply

    def _chunk(self, reply: dict, last: ObservationData) -> ActionChunkData:
        stamp = p.get_float(reply, "stamp", 0.0, 1e12)
        if stamp != last.stamp:
            raise p.ProtocolError(p.BAD_MESSAGE, f"chunk for stamp {stamp}, asked for {last.stamp}")
        values = p.finite(p.array_from_wire(reply.get("chunk"), "chunk", ("float32",),
                                            (self.horizon, len(self.spec.slot_names))), "chunk")
        model = self.link.welcome.get("model", "")
        self.model = f"remote:{str(model)[:120]}"
        # The observation's own stamp: the round trip counts into the chunk's age (see the docstring).
        return ActionChunkData(last.stamp, self.spec.name, list(self.spec.slot_names), np.array(values), self.step_period,
                               self.name, self.model)

    def _frames(self, reply: dict) -> tuple[list, list]:
        items, times = reply.get("frames"), reply.get("frame_times")
        if not isinstance(items, list) or not isinstance(times, list) or len(items) != len(times) \
                or len(items) > p.MAX_FRAMES:
            raise p.ProtocolError(p.BAD_MESSAGE, "'frames' and 'frame_times' must be lists of the same length")
        frames = [np.array(p.array_from_wire(f, "frames", ("uint8",), (None, None, 3))) for f in items]
        return frames, [p.get_float({"t": t}, "t", 0.0, 3600.0) for t in times]

    # -- diagnostics ----------------------------------------------------------------------------
    def diagnostics(self) -> dict:
        rtt, server = self.rtt.percentiles(), self.server_ms.percentiles()

        def ms(x):
            return f"{x * 1000:.2f}" if x is not None else "n/a"
        return {"remote.state": self.link.state, "remote.url": self.url, "remote.session": self.link.session,
                "remote.reconnects": self.link.reconnects, "remote.failures": self.failures,
                "remote.rtt_p50_ms": ms(rtt.get("p50")), "remote.rtt_p99_ms": ms(rtt.get("p99")),
                "remote.server_p50_ms": ms(server.get("p50")), "remote.last_error": self.link.last_error}

    def close(self) -> None:
        self.link.close()
